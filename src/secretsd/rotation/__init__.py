"""secretsd rotation."""
