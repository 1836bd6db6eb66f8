"""Helpers the whole test suite shares, one copy each.

- ``ports``: free loopback ports.
- ``otlp``: OTLP trace requests built span by span, and read back as Python values.
- ``sinks``: ends that keep what they are sent: a pipeline exporter or receiver consumer, a call
  sink, and real OTLP/HTTP and OTLP/gRPC backends.
- ``waiting``: polling with a bound.
- ``processes``: apps run under ``opentelemetry-instrument``, server processes stopped again.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so a test imports them as
``from support.ports import free_port``.
"""
