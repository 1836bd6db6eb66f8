"""Attribute names shared by the instrumentation and the processor.

GenAI names follow the OpenTelemetry GenAI semantic conventions; ``spanledger.*`` names are this
project's contract (see DESIGN.md).
"""

# GenAI semantic conventions (current).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST = "gen_ai.usage.cost"

# Instrumentation (written by the SDK patches).
COST_REPORTED = "spanledger.cost.reported"
STREAM_COMPLETED = "spanledger.stream.completed"
STREAM_CHUNKS = "spanledger.stream.chunks"
USAGE_ESTIMATE_OUTPUT_TOKENS = "spanledger.usage.estimate.output_tokens"
TAGS_TRUNCATED = "spanledger.tags.truncated"
USAGE_CACHE_CREATION_1H_INPUT_TOKENS = "spanledger.usage.cache_creation_1h.input_tokens"
USAGE_SEARCH_UNITS = "spanledger.usage.search_units"
"""Search units a rerank call was billed (Cohere); the price table has no price for them."""
ANTHROPIC_USAGE_COMPACTION_INPUT_TOKENS = "anthropic.usage.compaction.input_tokens"
ANTHROPIC_USAGE_COMPACTION_OUTPUT_TOKENS = "anthropic.usage.compaction.output_tokens"

# Processor, per counted inference span.
COST_INPUT = "spanledger.cost.input"
COST_OUTPUT = "spanledger.cost.output"
COST_CACHE_READ = "spanledger.cost.cache_read"
COST_CACHE_WRITE = "spanledger.cost.cache_write"
COST_BILLABLE = "spanledger.cost.billable"
COST_SOURCE = "spanledger.cost.source"
COST_STATUS = "spanledger.cost.status"
COST_UNPRICED_REASON = "spanledger.cost.unpriced_reason"
COST_NOT_COUNTED_REASON = "spanledger.cost.not_counted_reason"
COST_COUNTED_SPAN_ID = "spanledger.cost.counted_span_id"
FOREIGN_PREFIX = "spanledger.foreign."
"""Other tools' cost attributes on spans this processor does not price move under this prefix."""
PRICING_MODEL = "spanledger.pricing.model"
LLM_COST_TOTAL = "llm.cost.total"
LLM_COST_PROMPT = "llm.cost.prompt"
LLM_COST_COMPLETION = "llm.cost.completion"

# Processor, rollups.
SUBTREE_COST = "spanledger.subtree.cost"
TRACE_COST = "spanledger.trace.cost"
TRACE_LLM_CALLS = "spanledger.trace.llm_calls"
TRACE_INPUT_TOKENS = "spanledger.trace.input_tokens"
TRACE_OUTPUT_TOKENS = "spanledger.trace.output_tokens"
TRACE_UNPRICED_CALLS = "spanledger.trace.unpriced_calls"
TRACE_PARTIAL = "spanledger.trace.partial"
TRACE_ROOT_MISSING = "spanledger.trace.root_missing"
ROLLUP_LATE = "spanledger.rollup.late"

# Values.
STATUS_PRICED = "priced"
STATUS_UNPRICED = "unpriced"
STATUS_NOT_COUNTED = "not_counted"
SOURCE_PRICE_TABLE = "price_table"
SOURCE_PROVIDER_REPORTED = "provider_reported"
SOURCE_OVERRIDE = "override"
SOURCE_PEER_REPORTED = "peer_reported"

# Why an inference span is ``not_counted`` (values of ``spanledger.cost.not_counted_reason``).
NOT_COUNTED_ENCLOSES = "encloses_counted_call"
NOT_COUNTED_INSIDE = "inside_counted_call"
NOT_COUNTED_SAME_RESPONSE_ID = "same_response_id"
NOT_COUNTED_SAME_CALL = "same_call"
NOT_COUNTED_NO_USAGE_NESTED = "usage_missing_enclosing_span_counted"

DEFAULT_TAG_KEYS = ("customer", "feature", "team", "env")
UNTAGGED = "(none)"
OVERFLOW = "(other)"
