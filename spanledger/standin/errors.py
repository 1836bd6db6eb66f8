"""Error responses with each provider's real error body."""

from __future__ import annotations

from spanledger.standin.replies import JsonReply

_OPENAI = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def openai_error(
    status: int,
    message: str | None = None,
    retry_after: float | None = None,
    param: str | None = None,
) -> JsonReply:
    """``{"error": {"message", "type", "param", "code"}}`` with ``status``."""
    kind, code, default = _OPENAI.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    body = {"error": {"message": message or default, "type": kind, "param": param, "code": code}}
    return JsonReply(body, status, _retry_headers(retry_after))


def anthropic_error(
    status: int, message: str | None = None, retry_after: float | None = None, request_id: str = ""
) -> JsonReply:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}`` with ``status``."""
    kind, default = _ANTHROPIC.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
    )
    body = {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": request_id,
    }
    return JsonReply(body, status, _retry_headers(retry_after))


def _retry_headers(retry_after: float | None) -> dict[str, str]:
    if retry_after is None:
        return {}
    seconds = f"{retry_after:g}" if retry_after != int(retry_after) else str(int(retry_after))
    return {"retry-after": seconds}
