"""Zero-code: ``opentelemetry-instrument`` loads the instrumentor through its entry point."""

from __future__ import annotations

import json
import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from support.processes import run_instrumented

from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.standin import Scenario, StandIn

APP = """
import anthropic
client = anthropic.Anthropic(max_retries=0)
message = client.messages.create(
    model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "Hello"}],
    extra_headers=%s,
)
print("usage", message.usage.input_tokens, message.usage.output_tokens, flush=True)
"""


def run_app(tmp_path: Path, llm: StandIn) -> tuple[str, list[dict]]:
    script = tmp_path / "app.py"
    header = Scenario(text="abcdefgh", usage={"input_tokens": 30}).to_header()
    script.write_text(APP % repr(header))
    output = run_instrumented(
        script,
        env={
            **os.environ,
            "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        },
        timeout=60,
    )
    first, _, rest = output.partition("\n")
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := rest.find("{", index)) >= 0:
        span, index = decoder.raw_decode(rest, start)
        spans.append(span)
    return first, spans


def test_entry_point_names_the_instrumentor() -> None:
    (entry,) = [
        e
        for e in entry_points(group="opentelemetry_instrumentor")
        if e.name == "spanledger_anthropic"
    ]
    assert entry.load() is AnthropicInstrumentor
    assert AnthropicInstrumentor().instrumentation_dependencies() == ("anthropic >= 2.0, < 3",)


@pytest.mark.slow
def test_opentelemetry_instrument_gives_one_span(tmp_path: Path, llm: StandIn) -> None:
    printed, spans = run_app(tmp_path, llm)
    assert printed == "usage 30 2"
    # Other instrumentations may add HTTP spans; the inference spans are ours alone.
    inference = [span for span in spans if "gen_ai.operation.name" in span["attributes"]]
    assert [span["name"] for span in inference] == ["chat claude-haiku-4-5"]
    assert "anthropic.messages.create" not in [span["name"] for span in spans]
    attributes = inference[0]["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == 30
    assert attributes["gen_ai.usage.output_tokens"] == 2
