"""secretsd rotation/functions."""
