"""Name providers the way the current GenAI semantic conventions do, whatever the dialect said.

Deprecated ``gen_ai.system`` values, OpenInference's ``llm.provider``/``llm.system`` and the
capitalised names of OpenLLMetry all land on one spelling, so that metrics and the ledger group
one provider under one name. Names no convention defines stay as given, in lower case.
"""

from __future__ import annotations

PROVIDER_ALIASES: dict[str, str] = {
    # Deprecated gen_ai.system values of earlier semantic-convention releases.
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    # OpenInference llm.provider / llm.system values.
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "google": "gcp.gen_ai",
    "vertexai": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    # OpenLLMetry and OpenLIT spellings.
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "amazon bedrock": "aws.bedrock",
    "azure_openai": "azure.ai.openai",
    "azure openai": "azure.ai.openai",
    "vertex ai": "gcp.vertex_ai",
    "google_ai_studio": "gcp.gemini",
    "x-ai": "x_ai",
    "together": "together_ai",
    "togetherai": "together_ai",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
}


def normalize_provider(name: object) -> str | None:
    """The semantic-convention provider name for ``name``; None when it is empty or not text."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if not key:
        return None
    return PROVIDER_ALIASES.get(key, key)
