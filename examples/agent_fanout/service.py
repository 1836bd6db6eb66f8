"""The review sub-service: an HTTP service the agent calls, with its own LLM call.

A WSGI app behind the OpenTelemetry WSGI middleware, which continues the caller's trace and
baggage, so the review's LLM span is billed to the caller's customer and feature. Run under
``opentelemetry-instrument``; it prints ``READY <url>`` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anthropic
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

import spanledger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import serve

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


def main() -> None:
    serve(OpenTelemetryMiddleware(review))


if __name__ == "__main__":
    main()
