"""A downstream HTTP service for the HTTP-hop tests, run under ``opentelemetry-instrument``.

A WSGI app behind the contrib WSGI middleware (which continues the caller's trace and baggage),
served on 127.0.0.1 at a free port that it prints as ``READY <url>``. ``POST /ask`` asks the LLM
stand-in (``ANTHROPIC_BASE_URL``) one question and answers with what the service saw.

With ``REVALIDATE_CUSTOMERS=a,b`` it shows the re-validation pattern of a trust boundary that
runs with ``SPANLEDGER_INBOUND_TAGS=drop``: a ``customer`` claimed by the caller is applied again
only when it is one of those.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import anthropic
from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

import spanledger

client = anthropic.Anthropic(api_key="test-key", max_retries=0)


def ask(prompt: str) -> str:
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": prompt}],
    )
    return message.id


def trusted_tags() -> dict[str, str]:
    allowed = {c for c in os.environ.get("REVALIDATE_CUSTOMERS", "").split(",") if c}
    claimed = spanledger.inbound_tags().get("customer")
    return {"customer": claimed} if claimed in allowed else {}


def app(environ: dict, start_response) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
    with spanledger.tags(**trusted_tags()):
        message_id = ask(request.get("prompt", "hello"))
        seen = {
            "message_id": message_id,
            "current_tags": spanledger.current_tags(),
            "inbound_tags": spanledger.inbound_tags(),
            "trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x"),
        }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = make_server("127.0.0.1", 0, OpenTelemetryMiddleware(app), handler_class=QuietHandler)
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        trace.get_tracer_provider().shutdown()


if __name__ == "__main__":
    sys.exit(main())
