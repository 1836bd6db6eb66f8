"""The SDK versions this instrumentation supports."""

_instruments = ("cohere >= 5.13.0, < 8",)
