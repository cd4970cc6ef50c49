"""secretsd agent."""
