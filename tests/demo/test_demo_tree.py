"""The demo's cost tree, drawn from what the real pipeline forwards (the fast part of the demo)."""

from __future__ import annotations

from support.otlp import Service, chat, request, span

from spanledger.demo.tree import RecordingExporter, render_cost_tree
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig

FRONTEND = Service("frontend")
TRIAGE = Service("triage")


def test_the_trace_across_most_services_is_drawn_with_its_costs() -> None:
    recorder = RecordingExporter()
    pipeline = Pipeline(
        RollupConfig(trace_idle=60, root_grace=60),
        [],
        PriceBook(PricingConfig()),
        FanOut([recorder], []),
    )
    frontend = [
        span(1, 1, None, "agent run", start=0.0),
        chat(1, 2, 1, "gpt-4o-mini", 1000, 200, start=0.1),
        span(1, 3, 1, "POST /triage", start=0.2),
        span(2, 11, None, "health check"),
        chat(2, 12, 11, "gpt-4o-mini", 10, 1),
    ]
    sonnet_call = chat(1, 4, 3, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic")
    pipeline.consume(request((FRONTEND, frontend), (TRIAGE, [sonnet_call])))
    pipeline.flush_all()

    # 1,000 x $0.15 + 200 x $0.60 per million; 2,000 x $3 + 300 x $15 per million.
    mini, sonnet = 0.00027, 0.0105
    total = mini + sonnet
    assert render_cost_tree(recorder.trace_with_most_services()).splitlines() == [
        f"agent run [frontend]  subtree ${total:.6f}  trace ${total:.6f} in 2 calls",
        f"├─ chat gpt-4o-mini [frontend]  subtree ${mini:.6f}  call ${mini:.6f}",
        f"└─ POST /triage [frontend]  subtree ${sonnet:.6f}",
        f"   └─ chat claude-sonnet-4-20250514 [triage]  subtree ${sonnet:.6f}  call ${sonnet:.6f}",
    ]
    assert render_cost_tree([]) == "(no trace recorded)"
