"""Usage is read alike from every GenAI dialect, each with its own input-token rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.pipelines import SEPTEMBER_2025

from spanledger import semconv
from spanledger.processor.pricing.provider_ids import genai_prices_provider
from spanledger.processor.usage import INFERENCE_OPERATIONS, extract_usage


def test_current_semconv_span_as_this_project_writes_it():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.response.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 3510,
            "gen_ai.usage.output_tokens": 200,
            "gen_ai.usage.cache_read.input_tokens": 2000,
            "gen_ai.usage.cache_creation.input_tokens": 1500,
            "spanledger.usage.cache_creation_1h.input_tokens": 1000,
            "gen_ai.usage.reasoning.output_tokens": 120,
        },
        "chat claude-sonnet-4",
    )
    assert usage is not None
    assert (usage.operation, usage.provider, usage.model) == (
        "chat",
        "anthropic",
        "claude-sonnet-4-20250514",
    )
    assert (usage.input_tokens, usage.output_tokens) == (3510, 200)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (
        2000,
        500,
        1000,
    )
    assert usage.reasoning_tokens == 120
    assert usage.problems == []


def test_deprecated_semconv_without_operation_name_reads_the_span_name():
    usage = extract_usage(
        {
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 1000,
            "gen_ai.usage.completion_tokens": 200,
        },
        "chat gpt-4o-mini",
    )
    assert usage is not None
    assert (usage.operation, usage.provider) == ("chat", "azure.ai.openai")
    assert (usage.input_tokens, usage.output_tokens) == (1000, 200)


def test_openinference_llm_span_counts_cache_inside_the_prompt():
    usage = extract_usage(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 300,
            "llm.token_count.total": 1500,
            "llm.token_count.prompt_details.cache_read": 1000,
            "llm.token_count.prompt_details.audio": 20,
            "llm.token_count.completion_details.reasoning": 50,
        },
        "ChatCompletion",
    )
    assert usage is not None
    assert (usage.operation, usage.provider, usage.model) == (
        "chat",
        "openai",
        "gpt-4o-mini-2024-07-18",
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.input_audio_tokens) == (
        1200,
        1000,
        20,
    )
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 50)


def test_openinference_embedding_span_is_an_embeddings_operation():
    usage = extract_usage(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 40,
        }
    )
    assert usage is not None and usage.operation == "embeddings"


@pytest.mark.parametrize("kind", ["AGENT", "CHAIN", "TOOL", "RETRIEVER"])
def test_openinference_non_llm_spans_with_aggregated_tokens_are_not_priced(kind):
    attributes = {
        "openinference.span.kind": kind,
        "llm.token_count.prompt": 5000,
        "llm.token_count.completion": 900,
    }
    assert extract_usage(attributes, "agent run") is None


def test_openllmetry_anthropic_span_with_cache_attributes():
    usage = extract_usage(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "completion",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.response.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.input_tokens": 3510,
            "gen_ai.usage.output_tokens": 200,
            "llm.usage.total_tokens": 3710,
            "gen_ai.usage.cache_read_input_tokens": 2000,
            "gen_ai.usage.cache_creation_input_tokens": 1500,
        },
        "anthropic.chat",
    )
    assert usage is not None
    assert (usage.operation, usage.provider) == ("text_completion", "anthropic")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        3510,
        2000,
        1500,
    )


def test_older_openllmetry_prompt_and_completion_names():
    usage = extract_usage(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 700,
            "gen_ai.usage.completion_tokens": 70,
            "llm.usage.total_tokens": 770,
        },
        "openai.chat",
    )
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (700, 70)


@pytest.mark.parametrize("kind", ["workflow", "task", "agent", "tool"])
def test_openllmetry_framework_spans_are_not_priced(kind):
    attributes = {
        "traceloop.span.kind": kind,
        "gen_ai.usage.prompt_tokens": 700,
        "gen_ai.usage.completion_tokens": 70,
    }
    assert extract_usage(attributes, "my_workflow.task") is None


def test_openlit_anthropic_input_excludes_the_cache_and_its_own_cost_is_ignored():
    usage = extract_usage(
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 200,
            "gen_ai.usage.cache_read_input_tokens": 2000,
            "gen_ai.usage.cache_creation_input_tokens": 1500,
            "gen_ai.usage.cost": 0.5,
        },
        "chat claude-sonnet-4-20250514",
    )
    assert usage is not None
    assert usage.input_tokens == 3510
    assert usage.reported_cost is None
    assert usage.problems == []


def test_openlit_openai_input_includes_the_cache():
    usage = extract_usage(
        {
            "telemetry.sdk.name": "openlit",
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.cache_read_input_tokens": 600,
        }
    )
    assert usage is not None and (usage.input_tokens, usage.cache_read_tokens) == (1000, 600)


def test_anthropic_sdk_compaction_tokens_are_added():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "anthropic.usage.compaction.input_tokens": 5000,
            "anthropic.usage.compaction.output_tokens": 400,
        },
        "anthropic.messages.create",
    )
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (6000, 500)


def test_anthropic_cache_breakdown_without_a_total_sums_5m_and_1h():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.usage.input_tokens": 2000,
            "gen_ai.usage.output_tokens": 1,
            "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 300,
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 700,
        }
    )
    assert usage is not None
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (300, 700)


def test_numbers_sent_as_strings_are_read():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": "1000",
            "gen_ai.usage.output_tokens": " 200 ",
            "gen_ai.usage.cache_read.input_tokens": "6e2",
            "gen_ai.usage.reasoning.output_tokens": 50.0,
            "spanledger.cost.reported": "0.00042",
        }
    )
    assert usage is not None and usage.problems == []
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1000, 200, 600)
    assert usage.reasoning_tokens == 50
    assert usage.reported_cost == Decimal("0.00042")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (-5, "negative"),
        ("lots", "not a number"),
        (True, "not a number"),
        (12.5, "not a whole number"),
        (2_000_000_000, "more than 1,000,000,000"),
        (float("nan"), "not a whole number"),
        ([1, 2], "not a number"),
    ],
)
def test_an_unusable_detail_count_is_a_problem_and_is_not_used(value, why):
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": value,
        }
    )
    assert usage is not None
    assert usage.cache_read_tokens == 0 and usage.input_tokens == 1000
    [problem] = usage.problems
    assert problem.startswith("gen_ai.usage.cache_read.input_tokens: ") and why in problem


def test_an_unusable_total_falls_back_to_another_dialect_name():
    usage = extract_usage(
        {
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": "n/a",
            "gen_ai.usage.prompt_tokens": 80,
            "gen_ai.usage.output_tokens": 5,
        },
        "chat gpt-4o-mini",
    )
    assert usage is not None and usage.input_tokens == 80
    assert len(usage.problems) == 1


def test_an_unusable_total_makes_the_call_unpriced_never_zero(book):
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": -1,
            "gen_ai.usage.output_tokens": 10,
        }
    )
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_UNPRICED
    assert "openai/gpt-4o-mini" in cost.reason and "negative" in cost.reason


def test_cached_tokens_above_the_input_total_mean_an_exclusive_input():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 2000,
        }
    )
    assert usage is not None and usage.input_tokens == 2010
    assert "exceed input tokens" in usage.problems[0]


def test_reasoning_above_the_output_total_raises_the_output():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "o3-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.reasoning.output_tokens": 300,
        }
    )
    assert usage is not None and usage.output_tokens == 300 and usage.problems


@pytest.mark.parametrize("operation", ["invoke_agent", "create_agent", "execute_tool"])
def test_non_inference_operations_are_not_priced(operation):
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 9000,
        "gen_ai.usage.output_tokens": 900,
    }
    assert operation not in INFERENCE_OPERATIONS
    assert extract_usage(attributes, f"{operation} helper") is None


def test_spans_without_any_usage_signal_are_not_inference():
    assert extract_usage({"http.request.method": "POST"}, "POST /v1/chat/completions") is None
    # The span name alone does not make a call of a span that says nothing else.
    assert extract_usage({"gen_ai.request.model": "x"}, "chat x") is None
    assert extract_usage({"gen_ai.operation.name": "invoke_agent"}, "invoke_agent a") is None


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        (
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
            "usage missing: the span carries no token counts",
        ),
        (
            {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini"},
            "usage missing: the span carries no token counts",
        ),
        (
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "error.type": "APITimeoutError",
            },
            "usage missing: the call failed (APITimeoutError) and the span carries no token counts",
        ),
        (
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "spanledger.stream.completed": False,
            },
            "usage missing: the stream was closed before its final usage arrived",
        ),
    ],
)
def test_an_inference_span_without_token_counts_is_a_call_whose_usage_is_missing(attributes, why):
    usage = extract_usage(attributes, "whatever")
    assert usage is not None
    assert usage.missing == why
    assert usage.input_tokens == usage.output_tokens == 0


def test_a_stream_cut_short_with_input_but_no_output_count_has_its_usage_missing():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 1200,
            "spanledger.stream.completed": False,
            "spanledger.usage.estimate.output_tokens": 37,
        }
    )
    assert usage is not None
    assert usage.missing == (
        "usage missing: the stream was closed before its final usage arrived "
        "(1200 input tokens known, output tokens unknown)"
    )
    assert usage.output_tokens == 0  # the estimate is never read as a count


def test_a_call_stopped_by_the_budget_check_was_never_sent():
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "error.type": "BudgetExceededError",
    }
    assert extract_usage(attributes) is None


@pytest.mark.parametrize(
    ("cost", "tokens", "expected"),
    [
        (0.00168, (12000, 100), Decimal("0.00168")),
        ("0.00168", (12000, 100), Decimal("0.00168")),
        (0.0, (12000, 100), None),  # LiteLLM's $0 for a model its table lacks: no price
        (0.0, (0, 0), Decimal(0)),
        (-1.0, (10, 10), None),
    ],
)
def test_litellm_cost_is_read_as_a_peer_cost(cost, tokens, expected):
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            "gen_ai.cost.total_cost": cost,
        }
    )
    assert usage is not None
    assert usage.peer_cost == expected
    assert usage.reported_cost is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("azure.ai.openai", "azure"),
        ("azure.ai.inference", "azure"),
        ("aws.bedrock", "aws"),
        ("gcp.vertex_ai", "google"),
        ("gcp.gemini", "google"),
        ("gcp.gen_ai", "google"),
        ("x_ai", "x-ai"),
        ("mistral_ai", "mistral"),
        ("together_ai", "together"),
        ("groq", "groq"),
        ("deepseek", "deepseek"),
        ("openrouter", "openrouter"),
        ("ollama", None),
        ("ibm.watsonx.ai", None),
    ],
)
def test_semconv_provider_names_map_onto_genai_prices_ids(name, expected):
    assert genai_prices_provider(name) == expected


@pytest.mark.parametrize(
    ("system", "model"),
    [
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("gcp.vertex_ai", "gemini-2.5-flash"),
        ("x_ai", "grok-3"),
        ("mistral_ai", "mistral-large-latest"),
        ("az.ai.openai", "gpt-4o"),
        ("AWS", "amazon.nova-pro-v1:0"),
    ],
)
def test_calls_to_cloud_providers_find_their_prices(book, system, model):
    usage = extract_usage(
        {
            "gen_ai.system": system,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
        },
        f"chat {model}",
    )
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_PRICED, cost.reason
    assert cost.total > 0


def test_sentry_detail_names_are_subsets_of_the_totals():
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.input_tokens.cached": 600,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.output_tokens.reasoning": 100,
        }
    )
    assert usage is not None and usage.problems == []
    assert (usage.input_tokens, usage.cache_read_tokens) == (1000, 600)
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 100)


@pytest.mark.parametrize(
    ("attribute", "value", "tier"),
    [
        ("openai.response.service_tier", "flex", "flex"),
        ("gen_ai.openai.response.service_tier", "Priority", "priority"),
        ("anthropic.response.service_tier", "batch", "batch"),
        ("gen_ai.openai.request.service_tier", "auto", "auto"),
    ],
)
def test_the_service_tier_is_read(attribute, value, tier):
    usage = extract_usage(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.usage.input_tokens": 10,
            attribute: value,
        }
    )
    assert usage is not None and usage.service_tier == tier


def test_a_span_with_only_a_total_is_an_unpriced_call_not_a_silent_zero(book):
    usage = extract_usage(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "llm.usage.total_tokens": 1234,
        },
        "openai.chat",
    )
    assert usage is not None
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_UNPRICED
    assert "only a total token count" in cost.reason
