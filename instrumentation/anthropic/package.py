"""The SDK versions this instrumentation supports."""

_instruments = ("anthropic >= 2.0, < 3",)
