"""Pricing benchmark: the price table and book against ``genai_prices.calc_price``, in one run.

Directional only: compare runs on the same machine. Two workloads are built before timing,
with random usages: "typical", calls of the last 7 days spread over 40 models sampled from
the whole genai-prices snapshot (a processor prices recent calls, concentrated on a few
models), and "whole snapshot", every call a model drawn from all of it, started any time in
2024-2026. The three paths are warmed over a workload once, as a long-running processor is; then
rounds alternate between the paths and each round's cost per call, in process CPU time
(other work on a shared machine does not count), is kept. Reported: the median per call with
the range over rounds, and the ratio of medians, with the load average before and after. Every
call's total and output cost are also checked equal between the paths.

genai-prices is given the smallest usage it accepts (only the counts that are not zero),
its fastest form.

    python bench/pricing.py                   # 4000 calls, 9 rounds, writes bench/RESULTS.md
    python bench/pricing.py --calls 20000 --rounds 15 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import genai_prices
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot

from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook, PriceTable
from spanledger.processor.pricing.price_set import genai_usage
from spanledger.processor.pricing.table import timestamp

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- pricing:begin -->", "<!-- pricing:end -->"


def workload(
    calls: int, seed: int, models: int | None, recent: bool
) -> list[tuple[str, str, Usage, int]]:
    """``calls`` (provider id, model, usage, start ns) that genai-prices can price.

    ``models``: how many models (sampled from the whole snapshot) the calls are spread over;
    None for a new draw from the whole snapshot on every call. ``recent``: start times in the
    last 7 days (what a processor prices), else anywhere in 2024-2026.
    """
    rng = random.Random(seed)
    every = [(p.id, m.id) for p in get_snapshot().providers for m in p.models]
    pool = every if models is None else []
    while models is not None and len(pool) < models:
        provider_id, model = rng.choice(every)
        if (provider_id, model) not in pool and _prices(provider_id, model, _usage(rng, model)):
            pool.append((provider_id, model))
    end = int(time.time())
    start = end - 7 * 86_400
    if not recent:
        start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
        end = int(datetime(2026, 12, 31, tzinfo=UTC).timestamp())
    chosen = []
    while len(chosen) < calls:
        provider_id, model = rng.choice(pool)
        usage = _usage(rng, model)
        start_ns = rng.randint(start, end) * 1_000_000_000
        if _prices(provider_id, model, usage, start_ns):
            chosen.append((provider_id, model, usage, start_ns))
    return chosen


def _usage(rng: random.Random, model: str) -> Usage:
    cached = rng.choice([0, 0, rng.randint(0, 50_000)])
    written = rng.choice([0, 0, 0, rng.randint(0, 10_000)])
    return Usage(
        operation="chat",
        request_model=model,
        input_tokens=rng.randint(1, 300_000) + cached + written,
        output_tokens=rng.randint(0, 8_000),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


def _prices(provider_id: str, model: str, usage: Usage, start_ns: int = 0) -> bool:
    moment = timestamp(start_ns) if start_ns else None
    try:
        calc_price(
            genai_usage(usage), model, provider_id=provider_id, genai_request_timestamp=moment
        )
    except (LookupError, ValueError):
        return False
    return True


def run_table(table: PriceTable, calls, repeat: int = 1) -> float:
    begin = time.process_time()
    for _ in range(repeat):
        for provider_id, model, usage, start_ns in calls:
            table.price(table.lookup(provider_id, model), usage, start_ns)
    return (time.process_time() - begin) / repeat


def run_book(book: PriceBook, calls, repeat: int = 1) -> float:
    begin = time.process_time()
    for _ in range(repeat):
        for _, _, usage, start_ns in calls:
            book.price(usage, start_ns)
    return (time.process_time() - begin) / repeat


def run_reference(prepared) -> float:
    begin = time.process_time()
    for provider_id, model, usage, moment in prepared:
        calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=moment)
    return time.process_time() - begin


def mismatches(table: PriceTable, calls, prepared) -> int:
    """How many calls the table prices differently from ``calc_price`` (total or output)."""
    wrong = 0
    for (provider_id, model, usage, start_ns), reference in zip(calls, prepared, strict=True):
        expected = calc_price(
            reference[2], model, provider_id=provider_id, genai_request_timestamp=reference[3]
        )
        got = table.price(table.lookup(provider_id, model), usage, start_ns)
        wrong += got.total != expected.total_price or got.output != expected.output_price
    return wrong


def summary(seconds: list[float], calls: int) -> tuple[float, float, float]:
    per_call = [s / calls * 1e6 for s in seconds]
    return statistics.median(per_call), min(per_call), max(per_call)


def measure(calls, rounds: int) -> dict[str, object]:
    """Time the three paths over ``calls``; medians and ranges per call, ratios.

    Each round times every path for about as long as ``calc_price`` takes over the workload
    (the faster paths repeat the workload), so that all see the same load on the machine;
    the per-round ratio compares paths timed back to back.
    """
    prepared = [(p, m, genai_usage(u), timestamp(s)) for p, m, u, s in calls]
    cold = run_table(PriceTable(), calls)
    table = PriceTable()
    book = PriceBook(table=PriceTable())
    book_calls = [(p, m, replace_provider(u, p), s) for p, m, u, s in calls]
    warm = run_table(table, calls), run_book(book, book_calls), run_reference(prepared)
    table_repeat = max(1, round(warm[2] / warm[0]))
    book_repeat = max(1, round(warm[2] / warm[1]))
    table_times, public, reference, ratios = [], [], [], []
    for round_index in range(rounds):
        if round_index % 2:
            ref = run_reference(prepared)
            timed = run_table(table, calls, table_repeat)
        else:
            timed = run_table(table, calls, table_repeat)
            ref = run_reference(prepared)
        public.append(run_book(book, book_calls, book_repeat))
        table_times.append(timed)
        reference.append(ref)
        ratios.append(ref / timed)
    n = len(calls)
    return {
        "table": summary(table_times, n),
        "public": summary(public, n),
        "reference": summary(reference, n),
        "ratio": statistics.median(reference) / statistics.median(table_times),
        "paired": statistics.median(ratios),
        "best": min(reference) / min(table_times),
        "ratios": (min(ratios), max(ratios)),
        "book_ratio": statistics.median(reference) / statistics.median(public),
        "cold": cold / n * 1e6,
        "wrong": mismatches(table, calls, prepared),
        "models": len({(p, m) for p, m, _, _ in calls}),
    }


def replace_provider(usage: Usage, provider_id: str) -> Usage:
    """A copy of ``usage`` naming the provider, as the price book reads it from a span."""
    copy = Usage(**{name: getattr(usage, name) for name in Usage.__dataclass_fields__})
    copy.provider = provider_id
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    options = parser.parse_args()
    warnings.simplefilter("ignore")

    lines = [
        "## Pricing (`bench/pricing.py`)",
        "",
        f"{options.calls} calls per workload, random usages (cache reads/writes on some), "
        f"genai-prices {genai_prices.__version__}; {options.rounds} "
        f"alternating rounds after one warm-up pass; µs of process CPU time per call (the "
        f"machine is shared), median (min-max over rounds). "
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, load average "
        f"{os.getloadavg()[0]:.1f} at start.",
    ]
    workloads = (
        ("typical: 40 models, calls of the last 7 days", 40, True),
        ("whole snapshot, start times 2024-2026", None, False),
    )
    for title, models, recent in workloads:
        calls = workload(options.calls, options.seed, models, recent)
        result = measure(calls, options.rounds)
        rows = [
            ("table (`PriceTable.lookup` and `PriceTable.price`)", result["table"]),
            ("public path (`PriceBook.price`, returns `Cost`)", result["public"]),
            ("`genai_prices.calc_price`", result["reference"]),
        ]
        low, high = result["ratios"]
        lines += [
            "",
            f"### {title} ({result['models']} distinct models)",
            "",
            "| path | median µs/call | range |",
            "|---|---:|---:|",
            *(f"| {name} | {med:.2f} | {lo:.2f}-{hi:.2f} |" for name, (med, lo, hi) in rows),
            "",
            f"- table vs `calc_price`: **{result['ratio']:.0f}x** faster (ratio of medians; "
            f"median of per-round ratios {result['paired']:.0f}x, range {low:.0f}x-{high:.0f}x; "
            f"best round against best round {result['best']:.0f}x)",
            f"- public `PriceBook.price` vs `calc_price`: {result['book_ratio']:.0f}x faster",
            f"- cold first pass (empty caches: lookups and price sets built): "
            f"{result['cold']:.2f} µs/call",
            f"- totals differing from `calc_price`: {result['wrong']} of {len(calls)}",
            f"- load average after this workload: {os.getloadavg()[0]:.1f}",
        ]
        print("\n".join(lines[-13:]), flush=True)
    text = "\n".join(lines)
    if not options.no_write:
        write_section(text)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md, leaving the others as they are."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        updated = f"{head}{block}{tail}"
    else:
        updated = f"{current.rstrip()}\n\n{block}\n"
    RESULTS.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
