"""secretsd store."""
