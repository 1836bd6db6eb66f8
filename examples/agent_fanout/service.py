"""The review sub-service: an HTTP service the agent calls, with its own LLM call.

A WSGI app behind the OpenTelemetry WSGI middleware, which continues the caller's trace and
baggage, so the review's LLM span is billed to the caller's customer and feature. Run under
``opentelemetry-instrument``; it prints ``READY <url>`` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import anthropic
from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

import spanledger

claude = anthropic.Anthropic(max_retries=0)


def review(environ: dict, start_response) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    draft = json.loads(environ["wsgi.input"].read(length) or b"{}").get("draft", "")
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=[{"role": "user", "content": f"Review this draft: {draft}"}],
    )
    body = json.dumps({"review": message.id, "tags": spanledger.current_tags()}).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = make_server(
        "127.0.0.1", 0, OpenTelemetryMiddleware(review), handler_class=QuietHandler
    )
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        trace.get_tracer_provider().shutdown()


if __name__ == "__main__":
    main()
