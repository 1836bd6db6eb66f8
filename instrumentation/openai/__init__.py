"""Placeholder until the instrumentor lands."""
