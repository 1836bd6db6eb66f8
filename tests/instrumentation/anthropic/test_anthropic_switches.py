"""The instrumentation stays out of the way when told to: suppressed, or not sampled."""

from __future__ import annotations

import anthropic
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.standin import Scenario, StandIn

KWARGS = {
    "model": "claude-haiku-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hello"}],
    "extra_headers": Scenario(text="abcdefgh").to_header(),
}


def test_suppressed_calls_get_no_span_of_ours(client: anthropic.Anthropic, span_exporter) -> None:
    with suppress_instrumentation():
        message = client.messages.create(**KWARGS)
    assert message.usage.output_tokens == 2
    scopes = [span.instrumentation_scope.name for span in span_exporter.get_finished_spans()]
    assert "spanledger.instrumentation.anthropic" not in scopes


def test_unsampled_calls_work_and_export_nothing(llm: StandIn) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with anthropic.Anthropic(
            base_url=llm.anthropic_base_url,
            api_key="test-key",
            max_retries=0,
            open_telemetry={"tracer_provider": provider},
        ) as client:
            assert client.messages.create(**KWARGS).usage.output_tokens == 2
            stream = client.messages.create(stream=True, **KWARGS)
            assert type(stream) is anthropic.Stream
            assert [event.type for event in stream][-1] == "message_stop"
            with client.messages.stream(**KWARGS) as helper:
                assert helper.get_final_text() == "abcdefgh"
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert exporter.get_finished_spans() == ()
