"""Model ids as Bedrock, Gemini and Vertex AI calls carry them resolve to the right genai-prices
entry, priced as ``calc_price`` prices it, or come out unpriced with a reason naming the id;
Gemini's long-context tier applies past its threshold."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price

from spanledger import semconv
from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook, PricingConfig

from .conftest import SEPTEMBER_2025

MOMENT = datetime.fromtimestamp(SEPTEMBER_2025 / 1e9, tz=UTC)
COUNTS = {
    "input_tokens": 120_000,
    "output_tokens": 3_000,
    "cache_read_tokens": 80_000,
    "cache_write_tokens": 10_000,
}
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
CUSTOM_MODEL = (
    "arn:aws:bedrock:us-east-1:123456789012:custom-model/"
    "anthropic.claude-3-haiku-20240307-v1:0:200k/abc"
)


def call(provider: str, model: str, response_model: str | None = None, **counts: int) -> Usage:
    return Usage(
        operation="chat",
        provider=provider,
        request_model=model,
        response_model=response_model,
        **(counts or COUNTS),
    )


def calc_price_total(provider_id: str, model: str, **counts: int) -> Decimal:
    counts = counts or COUNTS
    usage = PricesUsage(
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cache_read_tokens=counts.get("cache_read_tokens"),
        cache_write_tokens=counts.get("cache_write_tokens"),
    )
    return calc_price(
        usage, model, provider_id=provider_id, genai_request_timestamp=MOMENT
    ).total_price


@pytest.mark.parametrize(
    ("model_id", "entry"),
    [
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "regional.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "apac.anthropic.claude-3-haiku-20240307-v1:0",
            "regional.anthropic.claude-3-haiku-20240307-v1:0",
        ),
        ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("apac.amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0"),
        ("us.meta.llama3-3-70b-instruct-v1:0", "meta.llama3-3-70b-instruct-v1:0"),
        ("mistral.mistral-large-2402-v1:0", "mistral.mistral-large-2402-v1:0"),
        (
            PROFILE + "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        ),
        (
            PROFILE + "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
        ),
        (
            "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-8b-instruct-v1:0",
            "meta.llama3-8b-instruct-v1:0",
        ),
    ],
)
def test_bedrock_model_ids_resolve_to_their_entry(book, model_id, entry):
    cost = book.price(call("aws.bedrock", model_id), SEPTEMBER_2025)

    assert cost.status == semconv.STATUS_PRICED, cost.reason
    assert cost.pricing_model == f"aws/{entry}"
    assert cost.total == calc_price_total("aws", model_id.rsplit("/", 1)[-1])


def test_a_global_profile_costs_less_than_a_regional_one(book):
    regional = book.price(
        call("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"), SEPTEMBER_2025
    )
    global_ = book.price(
        call("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"), SEPTEMBER_2025
    )

    assert global_.total < regional.total


def test_bedrock_calls_are_priced_by_the_id_they_were_made_with(book):
    """An answer body names the Claude model, not the region scope the call was priced at."""
    usage = call(
        "aws.bedrock",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        response_model="claude-haiku-4-5-20251001",
    )

    cost = book.price(usage, SEPTEMBER_2025)

    assert usage.model == "global.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert cost.pricing_model == "aws/global.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.mark.parametrize(
    "model_id",
    [
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x1y2z3",
        CUSTOM_MODEL,
        "arn:aws:bedrock:us-east-1:123456789012:imported-model/m1n2o3",
        "anthropic.claude-v2:1",
    ],
)
def test_bedrock_ids_without_a_public_price_are_unpriced_naming_the_id(book, model_id):
    cost = book.price(call("aws.bedrock", model_id), SEPTEMBER_2025)

    assert cost.status == semconv.STATUS_UNPRICED
    assert model_id in cost.reason
    assert type(cost.reason) is str  # it becomes a span attribute
    assert cost.total == 0


def test_a_custom_model_arn_is_not_priced_as_the_model_its_name_contains(book):
    # genai-prices alone matches the base model's name inside the ARN.
    assert calc_price_total("aws", CUSTOM_MODEL) > 0

    assert book.price(call("aws.bedrock", CUSTOM_MODEL), SEPTEMBER_2025).status == (
        semconv.STATUS_UNPRICED
    )


def test_an_override_prices_an_application_inference_profile_by_its_arn(tmp_path):
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(
        textwrap.dedent(
            f"""
            models:
              - model: "{arn}"
                provider: aws.bedrock
                input_mtok: 3
                output_mtok: 15
            """
        )
    )
    book = PriceBook(PricingConfig(overrides=str(overrides)))

    cost = book.price(
        call("aws.bedrock", arn, input_tokens=1_000_000, output_tokens=0), SEPTEMBER_2025
    )

    assert (cost.status, cost.source, cost.total) == (
        semconv.STATUS_PRICED,
        semconv.SOURCE_OVERRIDE,
        3,
    )


@pytest.mark.parametrize(
    "model_id",
    [
        "gemini-2.5-flash",
        "models/gemini-2.5-flash",
        "publishers/google/models/gemini-2.5-flash",
        "projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash",
        "google/gemini-2.5-flash",
    ],
)
@pytest.mark.parametrize("provider", ["gcp.gemini", "gcp.vertex_ai"])
def test_gemini_and_vertex_resource_names_resolve_to_the_model(book, model_id, provider):
    counts = {"input_tokens": 10_000, "output_tokens": 500, "cache_read_tokens": 4_000}

    cost = book.price(call(provider, model_id, **counts), SEPTEMBER_2025)

    assert cost.pricing_model == "google/gemini-2.5-flash"
    assert cost.total == calc_price_total("google", "gemini-2.5-flash", **counts)


def test_tuned_gemini_models_and_endpoints_are_unpriced(book):
    for model_id in ("tunedModels/support-bot-1234", "projects/p/locations/l/endpoints/987"):
        cost = book.price(call("gcp.vertex_ai", model_id), SEPTEMBER_2025)
        assert cost.status == semconv.STATUS_UNPRICED
        assert model_id in cost.reason


def test_claude_on_vertex_ai_is_priced_from_google_s_list(book):
    cost = book.price(call("gcp.vertex_ai", "claude-sonnet-4-5@20250929"), SEPTEMBER_2025)

    assert cost.pricing_model == "google/claude-sonnet-4-5"
    assert cost.total == calc_price_total("google", "claude-sonnet-4-5@20250929")


@pytest.mark.parametrize("model_id", ["gemini-2.5-pro", "gemini-3-pro-preview"])
@pytest.mark.parametrize("input_tokens", [199_999, 200_000, 200_001, 1_000_000])
def test_gemini_long_context_tier_agrees_with_calc_price(book, model_id, input_tokens):
    counts = {"input_tokens": input_tokens, "output_tokens": 8_000, "cache_read_tokens": 50_000}

    cost = book.price(call("gcp.gemini", model_id, **counts), SEPTEMBER_2025)

    assert cost.status == semconv.STATUS_PRICED, cost.reason
    assert cost.total == calc_price_total("google", model_id, **counts)


def test_the_tier_takes_every_token_past_the_threshold(book):
    below = book.price(
        call("gcp.gemini", "gemini-2.5-pro", input_tokens=200_000, output_tokens=0), SEPTEMBER_2025
    )
    above = book.price(
        call("gcp.gemini", "gemini-2.5-pro", input_tokens=200_001, output_tokens=0), SEPTEMBER_2025
    )

    # $1.25 per million input tokens up to 200k; $2.50 for all of them beyond.
    assert below.input == Decimal("0.25")
    assert above.input == Decimal("200001") * Decimal("2.5") / 1_000_000
