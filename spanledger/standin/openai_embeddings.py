"""OpenAI embeddings: one deterministic vector per input, as floats or base64."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_shared import as_int
from spanledger.standin.replies import Call, JsonReply
from spanledger.standin.scenario import Scenario

DEFAULT_EMBEDDING_DIMENSIONS = 8
"""Vector length when the request does not ask for ``dimensions``."""


def embeddings(call: Call, s: Scenario) -> JsonReply:
    """``POST /v1/embeddings``: one deterministic vector per input, float or base64."""
    body = call.body
    inputs = tokens.embedding_inputs(body)
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = DEFAULT_EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt = tokens.embedding_tokens(inputs)
    usage = tokens.merge({"prompt_tokens": prompt, "total_tokens": prompt}, s.usage)
    if "total_tokens" not in (s.usage or {}):
        usage["total_tokens"] = as_int(usage.get("prompt_tokens"))
    if s.cost is not None:
        usage["cost"] = s.cost
    return JsonReply(
        {
            "object": "list",
            "data": data,
            "model": s.model or str(body.get("model", "")),
            "usage": usage,
        }
    )


def embedding_vector(item: Any, dimensions: int) -> list[float]:
    """The stand-in's vector for one input: multiples of 1/256 in [-1, 1), exact in float32."""
    seed = zlib.crc32(json.dumps(item).encode())
    return [(((seed >> (j % 24)) + 37 * j) % 512 - 256) / 256 for j in range(dimensions)]
