"""The retriever service: embeds the question and reranks passages, with its own LLM calls.

A WSGI app behind the OpenTelemetry WSGI middleware, which continues the caller's trace and
W3C baggage, so these calls are billed to the caller's customer although this service never
names one. It adds its own ``feature=retrieval`` for the work it does. Run under
``opentelemetry-instrument``; prints ``READY <url>`` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import openai
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

import spanledger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import serve

client = openai.OpenAI(max_retries=0)


def search(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    question = json.loads(environ["wsgi.input"].read(length) or b"{}").get("question", "")
    with spanledger.tags(feature="retrieval"):
        client.embeddings.create(model="text-embedding-3-small", input=[question])
        reranked = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Rank these passages for: {question}"}],
        )
    body = json.dumps({"passages": [reranked.choices[0].message.content]}).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def main() -> None:
    serve(OpenTelemetryMiddleware(search))


if __name__ == "__main__":
    main()
