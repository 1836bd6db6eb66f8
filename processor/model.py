"""The processor's internal records: what a span says about one LLM call, and what it cost.

``Usage`` is filled by ``spanledger.processor.usage`` from any GenAI dialect; ``Cost`` by
``spanledger.processor.pricing``; ``CountedCall`` is what the rollup hands to metrics, the
ledger and budgets once a trace is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
BEDROCK = "aws.bedrock"

USAGE_MISSING = "usage missing:"
"""Prefix of the problem of an inference span that carries no usable token counts."""


@dataclass(slots=True)
class Usage:
    """Token usage of one inference span, normalised across instrumentation dialects.

    ``input_tokens`` counts ALL input tokens (cached and cache-written included);
    ``output_tokens`` counts ALL output tokens (reasoning included). The detail fields are
    subsets of those totals.
    """

    operation: str
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    """Cache writes at the default (5-minute) lifetime, plus any of unknown lifetime."""
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    reported_cost: Decimal | None = None
    problems: list[str] = field(default_factory=list)
    """Values that were present but unusable (negative, non-numeric, absurd), as readable text."""
    service_tier: str | None = None
    """The provider's service tier for the call (``flex``, ``priority``, ``batch``...), if said."""
    peer_cost: Decimal | None = None
    """Another tool's own estimate of the call's cost (LiteLLM's ``gen_ai.cost.total_cost``)."""
    cache_reported: bool = False
    """Whether the span says how many input tokens were cache reads or writes (even 0)."""

    @property
    def missing(self) -> str | None:
        """Why the span has no usable token counts (``usage missing: ...``), None if it has."""
        for problem in self.problems:
            if problem.startswith(USAGE_MISSING):
                return problem
        return None

    @property
    def model(self) -> str | None:
        """The model to price: the response model, else the request model.

        Amazon Bedrock calls are the exception: the model id they were made with says the
        region scope, which sets the price, and an answer's body names only the model (see
        ``spanledger.processor.pricing.model_ids``).
        """
        if self.provider == BEDROCK:
            return self.request_model or self.response_model
        return self.response_model or self.request_model


@dataclass(slots=True)
class Cost:
    """What one counted call cost, in USD, or why it could not be priced."""

    status: str
    """``priced`` or ``unpriced`` (see ``spanledger.semconv``)."""
    source: str | None = None
    """``price_table``, ``provider_reported``, ``peer_reported`` or ``override``; None when
    unpriced."""
    total: Decimal = ZERO
    input: Decimal = ZERO
    output: Decimal = ZERO
    cache_read: Decimal = ZERO
    cache_write: Decimal = ZERO
    billable: Decimal | None = None
    """``total`` with ``pricing.markup_percent`` applied; None when no markup is set."""
    pricing_model: str | None = None
    """The price-table entry used, as ``provider/model-id``."""
    reason: str | None = None
    """Why the call is unpriced."""


@dataclass(slots=True)
class CountedCall:
    """One counted inference call, as metrics, the ledger and budgets see it."""

    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits."""
    start_time_unix_nano: int
    tags: dict[str, str]
    """Every configured tag key, ``(none)`` when the span did not carry it."""
    usage: Usage
    cost: Cost
