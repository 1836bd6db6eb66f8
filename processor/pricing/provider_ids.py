"""Map semantic-convention provider names onto genai-prices provider ids."""

from __future__ import annotations

from functools import cache

from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

GENAI_PRICES_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "together_ai": "together",
    "moonshot": "moonshotai",
    "zhipu": "zhipuai",
}
"""Names whose genai-prices id differs from the name; the rest are tried as they are."""

NOT_IN_TABLE: frozenset[str] = frozenset({"ollama", "lm_studio", "vllm", "llama.cpp", "localai"})
"""Self-hosted servers: their models have no public price, only an override can price them."""


@cache
def genai_prices_provider(name: str | None) -> str | None:
    """The genai-prices provider id for a (normalised) provider name; None when it has none."""
    if not name or name in NOT_IN_TABLE:
        return None
    if name in GENAI_PRICES_IDS:
        return GENAI_PRICES_IDS[name]
    providers = get_snapshot().providers
    for candidate in (name, name.replace("_", "-"), name.replace(".", "-")):
        provider = find_provider_by_id(providers, candidate)
        if provider is not None:
            return provider.id
    return None
