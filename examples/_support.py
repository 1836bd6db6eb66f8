"""Pieces the multi-process examples share.

The example runners start WSGI services under ``opentelemetry-instrument``; these helpers give
each child process its environment, start a service and wait for its ``READY <url>`` line, and
serve a WSGI app on a free 127.0.0.1 port. Example scripts put this folder on ``sys.path``
before importing it, since they run as ``python examples/<name>/run.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace

INSTRUMENT = str(Path(sysconfig.get_path("scripts")) / "opentelemetry-instrument")


def instrumented_environment(
    openai_base_url: str, anthropic_base_url: str, service: str, **settings: str
) -> dict[str, str]:
    """This process's environment without OTel/spanledger settings, plus an OTLP/HTTP exporter
    setup for ``service``, the LLM stand-in's URLs, and ``settings`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))}
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OPENAI_BASE_URL=openai_base_url,
        OPENAI_API_KEY="example-key",
        ANTHROPIC_BASE_URL=anthropic_base_url,
        ANTHROPIC_API_KEY="example-key",
    )
    env.update(settings)
    return env


@contextmanager
def instrumented_service(script: Path, env: dict[str, str], name: str) -> Iterator[str]:
    """Run ``script`` under ``opentelemetry-instrument``; yield the URL it reports, then stop it."""
    process = subprocess.Popen(
        [INSTRUMENT, sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        if ready[:1] != ["READY"]:
            raise RuntimeError(f"the {name} did not start")
        yield ready[1]
    finally:
        process.terminate()
        process.wait(timeout=15)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(app: Any) -> None:
    """Serve ``app`` on a free 127.0.0.1 port, print ``READY <url>``, run until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
