"""The library versions this instrumentation supports."""

_instruments = ("litellm >= 1.108.0, < 2",)
