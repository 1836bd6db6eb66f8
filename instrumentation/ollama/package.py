"""The SDK versions this instrumentation supports."""

_instruments = ("ollama >= 0.4.0, < 1",)
