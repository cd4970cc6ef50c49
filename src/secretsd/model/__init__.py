"""Secrets Manager semantics as pure code: no I/O, no clock, no randomness of its own."""
