"""The SDK versions this instrumentation supports."""

_instruments = ("openai >= 3.0, < 4",)
