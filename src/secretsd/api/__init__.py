"""secretsd api."""
