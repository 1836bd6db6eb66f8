"""The ``Mistral`` client class, wherever the installed SDK keeps it, and what that SDK keeps of
a response's usage."""

from __future__ import annotations

try:  # mistralai 2.x and later
    from mistralai.client import Mistral
    from mistralai.client.models import UsageInfo
except ImportError:  # mistralai 1.x
    from mistralai import Mistral
    from mistralai.models import UsageInfo

KEEPS_CACHED_TOKENS = UsageInfo.model_config.get("extra") == "allow"
"""Whether ``usage.prompt_tokens_details`` reaches the caller (mistralai 1.9 and later)."""


def cached(tokens: int) -> int | None:
    """What a span records of ``tokens`` cached prompt tokens reported by Mistral."""
    return tokens if KEEPS_CACHED_TOKENS else None


__all__ = ["KEEPS_CACHED_TOKENS", "Mistral", "cached"]
