"""Name the GenAI provider behind a base URL.

Names follow the ``gen_ai.provider.name`` values of the GenAI semantic conventions where one is
defined (``openai``, ``azure.ai.openai``, ``groq``, ``deepseek``, ``x_ai``, ``mistral_ai``,
``cohere``, ``perplexity``, ``gcp.gemini``, ``anthropic``, ``aws.bedrock``). Services the
conventions do not list get a plain lower-case name (``openrouter``, ``together_ai``,
``fireworks``, ``cerebras``, ``ollama``).
OpenAI-compatible servers on the local machine or a private address are named by their well-known
port where it is unambiguous (Ollama 11434 → ``ollama``, LM Studio 1234 → ``lm_studio``); other
local servers (vLLM, llama.cpp, a LiteLLM proxy, a test stand-in) keep the SDK's own provider name
(the ``default`` argument), so that the processor can still price the model they report. Any other
host also keeps the default.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# Suffix of the host name → provider name.
HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("api.openai.com", "openai"),
    ("openrouter.ai", "openrouter"),
    ("groq.com", "groq"),
    ("deepseek.com", "deepseek"),
    ("together.xyz", "together_ai"),
    ("together.ai", "together_ai"),
    ("x.ai", "x_ai"),
    ("mistral.ai", "mistral_ai"),
    ("cohere.com", "cohere"),
    ("cohere.ai", "cohere"),
    ("ollama.com", "ollama"),
    ("perplexity.ai", "perplexity"),
    ("fireworks.ai", "fireworks"),
    ("cerebras.ai", "cerebras"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("anthropic.com", "anthropic"),
    ("amazonaws.com", "aws.bedrock"),
)

LOCAL_PORTS = {11434: "ollama", 1234: "lm_studio"}


def _is_local(host: str) -> bool:
    if host in {"localhost", "host.docker.internal"} or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def provider_from_url(base_url: object, default: str = "openai") -> str:
    """Return the ``gen_ai.provider.name`` for an SDK base URL (string or httpx URL)."""
    parts = urlsplit(str(base_url))
    host = (parts.hostname or "").lower()
    for suffix, name in HOST_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return name
    if _is_local(host):
        try:
            port = parts.port
        except ValueError:
            port = None
        return LOCAL_PORTS.get(port, default) if port is not None else default
    return default


def server_address_port(base_url: object) -> tuple[str | None, int | None]:
    """Return ``(server.address, server.port)`` for a base URL; port defaults by scheme."""
    parts = urlsplit(str(base_url))
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname, port


Endpoint = tuple[str, str | None, int | None]
"""``(gen_ai.provider.name, server.address, server.port)`` of one base URL."""

_ENDPOINTS_KEPT = 64
# id(base URL) -> (that base URL, default provider, endpoint). SDK clients replace their base URL
# object when it is set, never change it in place, so the same object means the same endpoint;
# the objects are held, so their ids cannot be reused while they are here.
_endpoints: dict[int, tuple[object, str, Endpoint]] = {}


def endpoint_of(base_url: object, default: str) -> Endpoint:
    """:func:`provider_from_url` and :func:`server_address_port` of ``base_url``, remembered.

    Called for every inference call; parsing the URL each time would cost more than the rest of
    starting the span, so the answer is kept for the same (immutable) base URL object.
    """
    cached = _endpoints.get(id(base_url))
    if cached is not None and cached[0] is base_url and cached[1] == default:
        return cached[2]
    text = str(base_url)
    endpoint = (provider_from_url(text, default), *server_address_port(text))
    if len(_endpoints) >= _ENDPOINTS_KEPT:
        _endpoints.clear()
    _endpoints[id(base_url)] = (base_url, default, endpoint)
    return endpoint
