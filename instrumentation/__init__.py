"""LLM SDK instrumentation, cost tags and the baggage-to-attribute span processor."""
