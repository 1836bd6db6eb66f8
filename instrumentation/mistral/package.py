"""The SDK versions this instrumentation supports."""

_instruments = ("mistralai >= 1.2.0, < 4",)
