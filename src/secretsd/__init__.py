"""secretsd: keep, rotate and serve application secrets."""

__version__ = "0.1.0"
