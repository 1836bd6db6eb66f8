"""The demo's triage sub-service: an HTTP service that answers with an in-house model.

It continues the caller's trace and tags from the request headers (W3C ``traceparent`` and
``baggage``), so its LLM spans are billed to the customer and feature that called it.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind

from spanledger.demo.agent import IN_HOUSE_MODEL, scenario

tracer = trace.get_tracer("spanledger.demo.triage")
client = openai.OpenAI()


class TriageHandler(BaseHTTPRequestHandler):
    """POST /triage {"ticket": "..."} → {"queue": "..."}."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        token = context.attach(propagate.extract(dict(self.headers.items())))
        try:
            with tracer.start_as_current_span("POST /triage", kind=SpanKind.SERVER):
                answer = client.chat.completions.create(
                    model=IN_HOUSE_MODEL,
                    messages=[{"role": "user", "content": f"Queue for: {body.get('ticket')}"}],
                    extra_headers=scenario(usage={"prompt_tokens": 900, "completion_tokens": 12}),
                )
        finally:
            context.detach(token)
        payload = json.dumps({"queue": (answer.choices[0].message.content or "")[:16]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints its own progress."""


def main() -> None:
    port = int(os.environ.get("SPANLEDGER_DEMO_TRIAGE_PORT", "0"))
    server = ThreadingHTTPServer(("127.0.0.1", port), TriageHandler)
    print(f"triage listening on http://127.0.0.1:{server.server_address[1]}/triage", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
