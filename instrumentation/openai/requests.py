"""Recognise the inference requests among everything the OpenAI client sends.

The client funnels every API call through one ``request(cast_to, options, stream=...)`` method;
``options`` (a ``FinalRequestOptions``) carries the method, the path and the JSON body. Only POSTs
to the inference paths below become spans; anything else (files, batches, retrievals) passes by.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
)

CHAT_COMPLETIONS = "/chat/completions"
RESPONSES = "/responses"
EMBEDDINGS = "/embeddings"
COMPLETIONS = "/completions"

# Checked in order: "/chat/completions" must win over "/completions".
ROUTES: tuple[tuple[str, str], ...] = (
    (CHAT_COMPLETIONS, OPERATION_CHAT),
    (RESPONSES, OPERATION_CHAT),
    (EMBEDDINGS, OPERATION_EMBEDDINGS),
    (COMPLETIONS, OPERATION_TEXT_COMPLETION),
)

# Paths whose streams report usage only when ``stream_options.include_usage`` is set.
USAGE_OPT_IN_PATHS = frozenset({CHAT_COMPLETIONS, COMPLETIONS})


@dataclass(slots=True)
class InferenceRequest:
    """What the instrumentation needs to know about one inference request."""

    path: str
    operation: str
    model: str | None
    streamed: bool
    body: dict[str, Any]


def route_of(options: Any) -> tuple[str, str] | None:
    """``(path, operation)`` for an inference POST, else ``None``."""
    return _route(str(getattr(options, "method", "")), str(getattr(options, "url", "")))


@lru_cache(maxsize=256)
def _route(method: str, url: str) -> tuple[str, str] | None:
    if method.lower() != "post":
        return None
    path = url.split("?", 1)[0].rstrip("/")
    for suffix, operation in ROUTES:
        if path.endswith(suffix):
            return suffix, operation
    return None


def _json_mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_request(options: Any, stream: bool) -> InferenceRequest | None:
    """Describe ``options`` if it is an inference request; ``None`` otherwise."""
    route = route_of(options)
    if route is None:
        return None
    path, operation = route
    body = _json_mapping(options.json_data)
    extra = options.extra_json
    if extra:
        body = {**body, **_json_mapping(extra)}
    model = body.get("model")
    if not isinstance(model, str):
        model = None
    streamed = bool(stream or body.get("stream"))
    # Positional: calling a class with keywords builds a dict of them on every call.
    return InferenceRequest(path, operation, model, streamed, body)


def asked_for_usage(request: InferenceRequest) -> bool:
    """True unless this is a stream that will not report usage without being asked."""
    if not request.streamed or request.path not in USAGE_OPT_IN_PATHS:
        return True
    stream_options = request.body.get("stream_options")
    return isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))


def with_usage_requested(options: Any) -> Any:
    """A copy of ``options`` whose stream asks for a final usage chunk; ``options`` is untouched.

    ``stream_options`` is set where the caller put theirs (``extra_body`` wins over the typed
    argument when the client merges them), keeping any other stream option they chose.
    """
    copy = options.model_copy()
    extra = _json_mapping(options.extra_json)
    if "stream_options" in extra:
        copy.extra_json = {**extra, "stream_options": _include_usage(extra["stream_options"])}
    else:
        body = _json_mapping(options.json_data)
        copy.json_data = {**body, "stream_options": _include_usage(body.get("stream_options"))}
    return copy


def _include_usage(stream_options: Any) -> dict[str, Any]:
    return {**_json_mapping(stream_options), "include_usage": True}
