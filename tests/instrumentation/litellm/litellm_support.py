"""The stand-in's endpoints as LiteLLM arguments, for each provider protocol it speaks."""

from __future__ import annotations

from typing import Any

from spanledger.standin import StandIn

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def openai_route(llm: StandIn, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """LiteLLM to the stand-in's OpenAI API: through the ``openai`` SDK."""
    return {"model": f"openai/{model}", "api_base": llm.openai_base_url, "api_key": "test-key"}


def anthropic_route(llm: StandIn, model: str = "claude-haiku-4-5") -> dict[str, Any]:
    """LiteLLM to the stand-in's Anthropic API: through LiteLLM's own HTTP client."""
    return {
        "model": f"anthropic/{model}",
        "api_base": llm.anthropic_base_url,
        "api_key": "test-key",
        "max_tokens": 64,
    }


def ollama_route(llm: StandIn, model: str = "llama3.2") -> dict[str, Any]:
    """LiteLLM to the stand-in's Ollama API: through LiteLLM's own HTTP client."""
    return {"model": f"ollama_chat/{model}", "api_base": llm.url}
