"""secretsd client."""
