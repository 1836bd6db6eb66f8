"""Outbound guards: baggage leaves the process only for allow-listed hosts.

Each guard wraps the point where an HTTP client sends one request (one hop: redirects are sent
again). For a request that may not carry baggage it removes a ``baggage`` header already set
(the anthropic SDK writes its trace headers before sending) and marks the send, so that HTTP
instrumentation injecting below it leaves baggage out (see ``GuardedPropagator``).

A request may not carry baggage when its host is not in the allow-list, or when an LLM SDK sent
it. openai and anthropic mark every request with ``X-Stainless-Lang``; cohere with
``X-Fern-SDK-Name: cohere``; mistralai, cohere (7.x), ollama and LiteLLM's own HTTP client name
themselves in ``User-Agent``. Such a request goes to a model
endpoint, which has no use for the application's tags, whatever its host (a self-hosted Ollama on
a private address included).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from spanledger.instrumentation.baggage.hosts import HostAllowList
from spanledger.instrumentation.baggage.propagator import withholding_baggage

_logger = logging.getLogger(__name__)

BAGGAGE_HEADER = "baggage"
LLM_SDK_MARKER_HEADER = "x-stainless-lang"
LLM_SDK_HEADER_VALUES = {"x-fern-sdk-name": "cohere"}
"""Headers whose value names an LLM SDK (lower case): Fern-generated SDKs name themselves."""
USER_AGENT_HEADER = "user-agent"
LLM_SDK_USER_AGENTS = ("mistral-client-python/", "cohere/", "ollama-python/", "litellm/")
"""``User-Agent`` prefixes of LLM SDKs (lower case)."""

Headers = Iterable[tuple[str, Any]]
"""A request's headers as ``(name, value)`` pairs."""


def llm_sdk_request(headers: Headers) -> bool:
    """Whether these headers mark a request an LLM SDK sent."""
    for name, value in headers:
        key = name.lower() if isinstance(name, str) else ""
        if key == LLM_SDK_MARKER_HEADER:
            return True
        if not isinstance(value, str):
            continue
        if key == USER_AGENT_HEADER and value.lower().startswith(LLM_SDK_USER_AGENTS):
            return True
        if LLM_SDK_HEADER_VALUES.get(key) == value.strip().lower():
            return True
    return False


class BaggagePolicy:
    """Decides, per request, whether baggage may go with it."""

    def __init__(self, hosts: HostAllowList) -> None:
        self.hosts = hosts

    def allows(self, host: str | None, headers: Headers) -> bool:
        """Whether a request to ``host`` with these headers may carry baggage."""
        if llm_sdk_request(headers):
            return False
        return self.hosts.allows(host)


def _pairs(*mappings: Any) -> list[tuple[str, Any]]:
    """The ``(name, value)`` pairs of header mappings, in order."""
    return [pair for mapping in mappings for pair in mapping.items()]


def _strip_baggage(headers: MutableMapping[str, Any]) -> None:
    for name in [name for name in headers if name.lower() == BAGGAGE_HEADER]:
        del headers[name]


def _httpx_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``Client._send_single_request`` of httpx and httpx2 (one hop, sync)."""

    def wrapper(wrapped: Callable[..., Any], _instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        allowed = _httpx_request_allowed(policy, request)
        with withholding_baggage(not allowed):
            return wrapped(*args, **kwargs)

    return wrapper


def _httpx_async_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``AsyncClient._send_single_request`` of httpx and httpx2 (one hop, async)."""

    async def wrapper(
        wrapped: Callable[..., Any], _instance: Any, args: tuple, kwargs: dict
    ) -> Any:
        request = args[0] if args else kwargs.get("request")
        allowed = _httpx_request_allowed(policy, request)
        with withholding_baggage(not allowed):
            return await wrapped(*args, **kwargs)

    return wrapper


def _httpx_request_allowed(policy: BaggagePolicy, request: Any) -> bool:
    try:
        allowed = policy.allows(request.url.host, request.headers.items())
        if not allowed and BAGGAGE_HEADER in request.headers:
            del request.headers[BAGGAGE_HEADER]
        return allowed
    except Exception:
        _logger.debug("Could not inspect an outgoing httpx request", exc_info=True)
        return False


def _requests_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``requests.Session.send`` (one hop: redirects call it again)."""

    def wrapper(wrapped: Callable[..., Any], _instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        try:
            allowed = policy.allows(urlsplit(request.url).hostname, request.headers.items())
            if not allowed:
                _strip_baggage(request.headers)
        except Exception:
            _logger.debug("Could not inspect an outgoing requests request", exc_info=True)
            allowed = False
        with withholding_baggage(not allowed):
            return wrapped(*args, **kwargs)

    return wrapper


def _aiohttp_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``aiohttp.ClientSession._request``; the host is that of the first hop."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            url = instance._build_url(args[1] if len(args) > 1 else kwargs["str_or_url"])
            headers = dict(kwargs.get("headers") or {})
            allowed = policy.allows(url.host, _pairs(headers, instance.headers))
            if not allowed and kwargs.get("headers"):
                _strip_baggage(headers)
                kwargs = {**kwargs, "headers": headers}
        except Exception:
            _logger.debug("Could not inspect an outgoing aiohttp request", exc_info=True)
            allowed = False

        async def guarded() -> Any:
            with withholding_baggage(not allowed):
                return await wrapped(*args, **kwargs)

        return guarded()

    return wrapper


def _urllib3_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``urllib3.HTTPConnectionPool.urlopen`` (one hop: redirects call it again)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            headers = kwargs.get("headers", args[3] if len(args) > 3 else None) or {}
            allowed = policy.allows(instance.host, list(headers.items()))
            if not allowed and any(name.lower() == BAGGAGE_HEADER for name in headers):
                headers = {k: v for k, v in headers.items() if k.lower() != BAGGAGE_HEADER}
                if len(args) > 3:
                    args = (*args[:3], headers, *args[4:])
                else:
                    kwargs = {**kwargs, "headers": headers}
        except Exception:
            _logger.debug("Could not inspect an outgoing urllib3 request", exc_info=True)
            allowed = False
        with withholding_baggage(not allowed):
            return wrapped(*args, **kwargs)

    return wrapper


def _urllib_wrapper(policy: BaggagePolicy) -> Callable[..., Any]:
    """Wraps ``urllib.request.OpenerDirector._open`` (one hop: redirects open again)."""

    def wrapper(wrapped: Callable[..., Any], _instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("req")
        try:
            names = [*request.headers, *request.unredirected_hdrs]
            headers = _pairs(request.headers, request.unredirected_hdrs)
            allowed = policy.allows(urlsplit(request.full_url).hostname, headers)
            if not allowed:
                for name in names:
                    if name.lower() == BAGGAGE_HEADER:
                        request.remove_header(name)
        except Exception:
            _logger.debug("Could not inspect an outgoing urllib request", exc_info=True)
            allowed = False
        with withholding_baggage(not allowed):
            return wrapped(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class _Patch:
    module: str
    target: str
    factory: Callable[[BaggagePolicy], Callable[..., Any]]


_PATCHES = (
    _Patch("httpx2", "Client._send_single_request", _httpx_wrapper),
    _Patch("httpx2", "AsyncClient._send_single_request", _httpx_async_wrapper),
    _Patch("httpx", "Client._send_single_request", _httpx_wrapper),
    _Patch("httpx", "AsyncClient._send_single_request", _httpx_async_wrapper),
    _Patch("requests", "Session.send", _requests_wrapper),
    _Patch("aiohttp", "ClientSession._request", _aiohttp_wrapper),
    _Patch("urllib3.connectionpool", "HTTPConnectionPool.urlopen", _urllib3_wrapper),
    _Patch("urllib.request", "OpenerDirector._open", _urllib_wrapper),
)


class OutboundGuards:
    """Installs and removes the guards on whichever HTTP clients are installed."""

    def __init__(self) -> None:
        self._applied: list[_Patch] = []

    @property
    def clients(self) -> list[str]:
        """The ``module.target`` names currently guarded."""
        return [f"{patch.module}.{patch.target}" for patch in self._applied]

    def install(self, policy: BaggagePolicy) -> None:
        for patch in _PATCHES:
            try:
                module = importlib.import_module(patch.module)
            except ImportError:
                continue
            try:
                wrap_function_wrapper(module, patch.target, patch.factory(policy))
            except Exception:
                _logger.warning(
                    "Could not guard %s.%s: baggage may reach any host through it",
                    patch.module,
                    patch.target,
                    exc_info=True,
                )
                continue
            self._applied.append(patch)

    def uninstall(self) -> None:
        while self._applied:
            patch = self._applied.pop()
            owner_name, _, attribute = patch.target.rpartition(".")
            owner = getattr(importlib.import_module(patch.module), owner_name)
            unwrap(owner, attribute)
