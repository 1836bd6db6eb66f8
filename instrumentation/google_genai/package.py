"""The SDK versions this instrumentation supports."""

_instruments = ("google-genai >= 1.0.0, < 4",)
