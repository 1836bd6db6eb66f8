"""Which spans the pipeline reads: those carrying a key of some dialect, whatever its prefix."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from support.otlp import Service, request, span
from support.pipelines import TAG_KEYS, FakeClock
from support.sinks import RecordingSink, TraceRecorder

from spanledger import semconv
from spanledger.processor.model import Usage
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import (
    CALL_KEYS,
    candidate_check,
    candidate_markers,
    extract_usage,
    is_candidate,
)

APP = Service("app")

ACME_KEYS = {
    "acme.tokens.input": semconv.GEN_AI_USAGE_INPUT_TOKENS,
    "acme.tokens.output": semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "acme.model": semconv.GEN_AI_REQUEST_MODEL,
    "acme.vendor": semconv.GEN_AI_PROVIDER_NAME,
}
"""A dialect under a prefix no built-in dialect uses, and the keys it stands for."""


def read_acme(attributes: Mapping[str, object], span_name: str = "") -> Usage | None:
    """The built-in reader, taught the acme dialect."""
    translated = dict(attributes)
    for acme, standard in ACME_KEYS.items():
        if acme in attributes:
            translated[standard] = attributes[acme]
    return extract_usage(translated, span_name)


def acme_call(trace: int, number: int, parent: int | None) -> object:
    return span(
        trace,
        number,
        parent,
        "chat gpt-4o-mini",
        {
            "acme.tokens.input": 1000,
            "acme.tokens.output": 200,
            "acme.model": "gpt-4o-mini",
            "acme.vendor": "openai",
        },
        start=1.0,
    )


@pytest.mark.parametrize("key", sorted(CALL_KEYS))
def test_a_span_carrying_any_key_that_can_make_a_call_is_read(key):
    data = span(1, 1, None, "call", {key: 1}).SerializeToString()
    assert is_candidate(data), f"{key} is not covered by {candidate_markers()}"


def test_a_span_carrying_no_such_key_is_not_read_and_is_no_call():
    attributes = {"http.request.method": "POST", "url.full": "https://example.com/v1/chat"}
    data = span(1, 1, None, "POST", attributes).SerializeToString()
    assert not is_candidate(data)
    assert extract_usage(attributes, "POST") is None


def test_only_attribute_keys_count_not_text_that_mentions_a_prefix():
    mentions = {"url.full": "https://example.com/gen_ai.usage.input_tokens", "note": "on llm."}
    assert not is_candidate(span(1, 1, None, "gen_ai.chat", mentions).SerializeToString())
    among_others = {"http.request.method": "POST", **mentions, "llm.token_count.prompt": 3}
    assert is_candidate(span(1, 1, None, "call", among_others).SerializeToString())


def test_keys_of_128_bytes_and_more_are_found_too():
    long_key = "acme." + "x" * 200
    check = candidate_check([long_key])
    assert check(span(1, 1, None, "call", {long_key: 1}).SerializeToString())
    assert not check(span(1, 1, None, "call", {"gen_ai.usage.input_tokens": 1}).SerializeToString())


def test_the_markers_are_the_prefixes_of_the_dialect_keys():
    prefixes = {key.split(".", 1)[0] + "." for key in CALL_KEYS}
    assert {marker.decode() for marker in candidate_markers()} == prefixes
    assert candidate_markers()[:2] == (b"gen_ai.", b"llm."), "the most shared come first"


def run_pipeline(is_candidate=None) -> tuple[TraceRecorder, RecordingSink]:
    exporter, sink, clock = TraceRecorder(), RecordingSink(), FakeClock()
    pipeline = Pipeline(
        RollupConfig(),
        TAG_KEYS,
        PriceBook(PricingConfig()),
        FanOut([exporter], [sink]),
        clock=clock,
        extract_usage=read_acme,
        is_candidate=is_candidate,
    )
    pipeline.consume(request((APP, [span(2, 1, None, "run"), acme_call(2, 2, 1)])))
    clock.advance(1.0)
    pipeline.flush_due()
    pipeline.shutdown(1.0)
    return exporter, sink


def test_a_dialect_under_a_new_prefix_is_priced_once_its_keys_select_the_spans():
    exporter, sink = run_pipeline(candidate_check(CALL_KEYS | ACME_KEYS.keys()))
    call = exporter.by_span()[2].attributes
    assert call[semconv.COST_STATUS] == semconv.STATUS_PRICED
    assert exporter.by_span()[1].attributes[semconv.TRACE_LLM_CALLS] == 1
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in sink.calls] == [(1000, 200)]


def test_without_its_keys_in_the_selection_the_new_dialect_is_never_read():
    exporter, sink = run_pipeline()
    assert semconv.COST_STATUS not in exporter.by_span()[2].attributes
    assert sink.calls == []
