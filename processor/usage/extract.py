"""Read one inference call's token usage from a span of any GenAI instrumentation dialect.

Each quantity has a list of attribute names, most authoritative first; the first usable value
wins, and each unusable one is recorded as a problem. Dialects disagree on whether the input
total includes cached tokens: current semantic conventions, this project's spans, the anthropic
SDK's own spans, OpenInference and OpenLLMetry include them; OpenLIT's Anthropic spans carry
Anthropic's raw ``input_tokens``, which excludes them. docs/pricing.md has each rule and its source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from spanledger import semconv
from spanledger.processor.model import USAGE_MISSING, Usage
from spanledger.processor.usage.counts import Unusable, token_count, usd_amount
from spanledger.processor.usage.operations import OPERATION_KEYS, resolve_operation
from spanledger.processor.usage.provider_names import normalize_provider

INPUT_TOTAL = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOTAL = (
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
CACHE_READ = (
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "llm.token_count.prompt_details.cache_input",
    "gen_ai.usage.input_tokens.cached",
    "gen_ai.usage.cache_read_tokens",
)
CACHE_WRITE = (
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.input_tokens.cache_write",
    "gen_ai.usage.cache_write_tokens",
)
CACHE_WRITE_5M = ("anthropic.usage.cache_creation.ephemeral_5m_input_tokens",)
CACHE_WRITE_1H = (
    semconv.USAGE_CACHE_CREATION_1H_INPUT_TOKENS,
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
)
REASONING = (
    semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.output_tokens.reasoning",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
)
INPUT_AUDIO = ("llm.token_count.prompt_details.audio",)
OUTPUT_AUDIO = ("llm.token_count.completion_details.audio",)
COMPACTION_INPUT = ("anthropic.usage.compaction.input_tokens",)
COMPACTION_OUTPUT = ("anthropic.usage.compaction.output_tokens",)
TOTAL_ONLY = ("llm.usage.total_tokens", "llm.token_count.total", "gen_ai.usage.total_tokens")
SEARCH_UNITS = (semconv.USAGE_SEARCH_UNITS,)
"""Billed in search units, not tokens (Cohere rerank): a call the table cannot price."""

PROVIDER = (semconv.GEN_AI_PROVIDER_NAME, "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL = (semconv.GEN_AI_REQUEST_MODEL, "llm.request.model")
RESPONSE_MODEL = (semconv.GEN_AI_RESPONSE_MODEL, "llm.response.model", "llm.model_name")
REPORTED_COST = (semconv.COST_REPORTED,)
PEER_COST = ("gen_ai.cost.total_cost",)
"""Costs another tool estimated itself (LiteLLM), read as ``peer_reported``."""
ERROR_TYPE = "error.type"
NOT_SENT_ERRORS = frozenset({"BudgetExceededError", "BudgetStatusUnavailable"})
"""``error.type`` of this project's budget check: the call was stopped before it was sent."""
OUTPUT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
"""Operations whose calls produce output tokens."""
SERVICE_TIER = (
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "anthropic.response.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
"""The tier that served the call (the response's, else the one asked for)."""

TELEMETRY_SDK_NAME = "telemetry.sdk.name"
ANTHROPIC_EXCLUSIVE_INPUT = frozenset({"anthropic"})
"""Providers whose raw ``input_tokens`` excludes cache reads and writes."""

INCOMPLETE = "usage incomplete:"
"""Prefix of the problem that makes a call impossible to price from its tokens."""

_COUNT_KEYS = (
    INPUT_TOTAL
    + OUTPUT_TOTAL
    + CACHE_READ
    + CACHE_WRITE
    + CACHE_WRITE_5M
    + CACHE_WRITE_1H
    + TOTAL_ONLY
    + SEARCH_UNITS
)
_COUNT_KEY_SET = frozenset(_COUNT_KEYS)
_COST_KEY_SET = frozenset(REPORTED_COST + PEER_COST)
CALL_KEYS: frozenset[str] = _COUNT_KEY_SET | _COST_KEY_SET | frozenset(OPERATION_KEYS)
"""Every attribute whose presence can make a span an inference call: token counts, costs and the
attributes naming an operation. A span carrying none of them is never one (``extract_usage``
returns None), so the pipeline reads only spans that carry one (``usage.candidates``)."""
_CACHE_KEY_SET = frozenset(CACHE_READ + CACHE_WRITE + CACHE_WRITE_5M + CACHE_WRITE_1H)
_DETAIL_KEY_SET = frozenset(
    CACHE_READ
    + CACHE_WRITE
    + CACHE_WRITE_5M
    + CACHE_WRITE_1H
    + REASONING
    + INPUT_AUDIO
    + OUTPUT_AUDIO
    + COMPACTION_INPUT
    + COMPACTION_OUTPUT
    + TOTAL_ONLY
)
"""Every count besides the input and output totals: most spans carry none of them."""


def extract_usage(attributes: Mapping[str, object], span_name: str = "") -> Usage | None:
    """The usage of the inference call the span records; None when it is not one to price.

    ``attributes`` are the span's attributes as plain Python values. A span is priced when it
    carries token counts or a cost and names an inference operation (or names none, as old
    conventions did); agent, tool and workflow spans are not. A span that names an inference
    operation in its attributes but carries no usable token counts is still a call: its usage
    has a ``usage missing:`` problem (see ``Usage.missing``), so it is counted as unpriced.
    """
    present = attributes.keys()
    no_counts = present.isdisjoint(_COUNT_KEY_SET)
    if no_counts and present.isdisjoint(_COST_KEY_SET):
        return _without_counts(attributes)
    operation = resolve_operation(attributes, span_name)
    if operation == "":
        return None
    reader = _Reader(attributes)
    usage = Usage(
        operation=operation or "chat",
        provider=normalize_provider(reader.text(PROVIDER)),
        request_model=reader.text(REQUEST_MODEL),
        response_model=reader.text(RESPONSE_MODEL),
    )
    _read_counts(reader, usage, attributes)
    if not present.isdisjoint(SEARCH_UNITS) and present.isdisjoint(INPUT_TOTAL + OUTPUT_TOTAL):
        units = attributes.get(semconv.USAGE_SEARCH_UNITS)
        reader.problems.append(
            f"{INCOMPLETE} billed in search units ({units}), not tokens; the price table has "
            "no price per search unit"
        )
    usage.reported_cost = reader.cost(REPORTED_COST)
    if not present.isdisjoint(PEER_COST):
        usage.peer_cost = _peer_cost(reader, usage, not no_counts)
    tier = reader.text(SERVICE_TIER)
    usage.service_tier = tier.lower() if tier else None
    if no_counts:
        reader.problems.append(_missing_reason(attributes, "carries a cost but no token counts"))
    elif (
        attributes.get(semconv.STREAM_COMPLETED) is False
        and usage.operation in OUTPUT_OPERATIONS
        and present.isdisjoint(OUTPUT_TOTAL)
    ):
        reader.problems.append(
            f"{USAGE_MISSING} the stream was closed before its final usage arrived "
            f"({usage.input_tokens} input tokens known, output tokens unknown)"
        )
    usage.problems = reader.problems
    return usage


def _without_counts(attributes: Mapping[str, object]) -> Usage | None:
    """A call with usage missing, when the attributes name an inference operation; else None."""
    operation = resolve_operation(attributes, "")
    if not operation or attributes.get(ERROR_TYPE) in NOT_SENT_ERRORS:
        return None
    reader = _Reader(attributes)
    usage = Usage(
        operation=operation,
        provider=normalize_provider(reader.text(PROVIDER)),
        request_model=reader.text(REQUEST_MODEL),
        response_model=reader.text(RESPONSE_MODEL),
    )
    usage.problems = [_missing_reason(attributes, "carries no token counts")]
    return usage


def _missing_reason(attributes: Mapping[str, object], what: str) -> str:
    if attributes.get(semconv.STREAM_COMPLETED) is False:
        return f"{USAGE_MISSING} the stream was closed before its final usage arrived"
    error = attributes.get(ERROR_TYPE)
    if isinstance(error, str) and error:
        return f"{USAGE_MISSING} the call failed ({error}) and the span {what}"
    return f"{USAGE_MISSING} the span {what}"


def _peer_cost(reader: _Reader, usage: Usage, counted: bool) -> Decimal | None:
    """Another tool's cost estimate. $0 is a price only for a call that says it used no tokens:
    for a call that used some, or whose tokens are unknown, it means the tool had no price."""
    cost = reader.cost(PEER_COST)
    if cost is not None and not cost and (usage.input_tokens or usage.output_tokens or not counted):
        return None
    return cost


def has_incomplete_totals(usage: Usage) -> bool:
    """Whether the input or output total could not be read, so tokens cannot be priced."""
    return any(problem.startswith(INCOMPLETE) for problem in usage.problems)


def has_unusable_counts(usage: Usage) -> bool:
    """Whether the call's tokens cannot be priced: missing, or present but unreadable."""
    return any(
        problem.startswith(INCOMPLETE) or problem.startswith(USAGE_MISSING)
        for problem in usage.problems
    )


def _read_counts(reader: _Reader, usage: Usage, attributes: Mapping[str, object]) -> None:
    input_total = reader.count(INPUT_TOTAL)
    output_total = reader.count(OUTPUT_TOTAL)
    for name, total, keys in (
        ("input", input_total, INPUT_TOTAL),
        ("output", output_total, OUTPUT_TOTAL),
    ):
        if total is None and not attributes.keys().isdisjoint(keys):
            reader.problems.append(f"{INCOMPLETE} no usable {name} token count")
    if attributes.keys().isdisjoint(_DETAIL_KEY_SET):
        # Totals alone: every detail stays 0 and no rule below can apply.
        usage.input_tokens = input_total or 0
        usage.output_tokens = output_total or 0
        return
    usage.cache_reported = not attributes.keys().isdisjoint(_CACHE_KEY_SET)
    if (
        input_total is None
        and output_total is None
        and not attributes.keys().isdisjoint(TOTAL_ONLY)
    ):
        reader.problems.append(f"{INCOMPLETE} only a total token count, no input/output split")
    cache_read = reader.count(CACHE_READ) or 0
    write_5m = reader.count(CACHE_WRITE_5M)
    write_1h = reader.count(CACHE_WRITE_1H) or 0
    cache_write = reader.count(CACHE_WRITE)
    if cache_write is None:
        cache_write = (write_5m or 0) + write_1h
    if write_1h > cache_write:
        reader.problems.append(
            f"1-hour cache writes ({write_1h}) exceed all cache writes ({cache_write}); "
            f"cache writes taken as {write_1h}"
        )
        cache_write = write_1h
    input_tokens = input_total or 0
    cached = cache_read + cache_write
    if cached and _input_excludes_cache(attributes, usage.provider):
        input_tokens += cached
    elif cached > input_tokens:
        reader.problems.append(
            f"cached input tokens ({cached}) exceed input tokens ({input_tokens}); "
            f"input taken as excluding them: {input_tokens + cached}"
        )
        input_tokens += cached
    input_tokens += reader.count(COMPACTION_INPUT) or 0
    input_audio = reader.count(INPUT_AUDIO) or 0
    if cached + input_audio > input_tokens:
        reader.problems.append(
            f"audio input tokens ({input_audio}) do not fit in input tokens ({input_tokens}) "
            f"beside {cached} cached; input taken as {cached + input_audio}"
        )
        input_tokens = cached + input_audio
    output_tokens = (output_total or 0) + (reader.count(COMPACTION_OUTPUT) or 0)
    reasoning = reader.count(REASONING) or 0
    output_audio = reader.count(OUTPUT_AUDIO) or 0
    if reasoning + output_audio > output_tokens:
        reader.problems.append(
            f"reasoning ({reasoning}) and audio ({output_audio}) output tokens exceed output "
            f"tokens ({output_tokens}); output taken as {reasoning + output_audio}"
        )
        output_tokens = reasoning + output_audio
    usage.input_tokens = input_tokens
    usage.output_tokens = output_tokens
    usage.cache_read_tokens = cache_read
    usage.cache_write_tokens = cache_write - write_1h
    usage.cache_write_1h_tokens = write_1h
    usage.reasoning_tokens = reasoning
    usage.input_audio_tokens = input_audio
    usage.output_audio_tokens = output_audio


def _input_excludes_cache(attributes: Mapping[str, object], provider: str | None) -> bool:
    """OpenLIT's Anthropic spans report Anthropic's ``input_tokens``, which leaves out the cache."""
    return attributes.get(TELEMETRY_SDK_NAME) == "openlit" and provider in ANTHROPIC_EXCLUSIVE_INPUT


class _Reader:
    """Reads attributes by priority list, collecting a problem for each unusable value."""

    def __init__(self, attributes: Mapping[str, object]) -> None:
        self.attributes = attributes
        self.problems: list[str] = []

    def count(self, keys: Sequence[str]) -> int | None:
        attributes = self.attributes
        if attributes.keys().isdisjoint(keys):
            return None
        for key in keys:
            value = attributes.get(key)
            if value is None:
                continue
            try:
                return token_count(value)
            except Unusable as exc:
                self.problems.append(f"{key}: {exc}; not used")
        return None

    def cost(self, keys: Sequence[str]) -> Decimal | None:
        if self.attributes.keys().isdisjoint(keys):
            return None
        for key in keys:
            value = self.attributes.get(key)
            if value is None:
                continue
            try:
                return usd_amount(value)
            except Unusable as exc:
                self.problems.append(f"{key}: {exc}; not used")
        return None

    def text(self, keys: Sequence[str]) -> str | None:
        if self.attributes.keys().isdisjoint(keys):
            return None
        for key in keys:
            value = self.attributes.get(key)
            if isinstance(value, str):
                value = value.strip()
                if value:
                    return value
        return None
