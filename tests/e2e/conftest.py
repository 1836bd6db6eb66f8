"""Fixtures for the end-to-end tests: Arize Phoenix as the tracing backend."""
