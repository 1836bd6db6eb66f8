"""Run every benchmark, one after another, each in its own Python process.

    python bench/run_all.py            # full runs (about 20 minutes on 2 CPUs); pricing and
                                       # instrumentation overhead update bench/RESULTS.md
    python bench/run_all.py --quick    # tiny runs that only prove each benchmark still works
    python bench/run_all.py --only memory growth

Each benchmark stops by itself; this runner gives each at most ``--timeout`` seconds and exits
non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    # name: (full arguments, quick arguments)
    "pricing": ([], ["--calls", "200", "--rounds", "1", "--no-write"]),
    "rollup": ([], ["--traces", "100", "--rounds", "1"]),
    "span_floor": ([], ["--traces", "50", "--rounds", "1", "--no-write"]),
    "instrumentation_overhead": (
        [],
        ["--rounds", "1", "--calls", "5", "--streams", "1", "--chunks", "20", "--no-write"],
    ),
    # Runs in bench/.compare-venv (bash bench/setup_compare_venv.sh); --quick skips without it
    # and counts no instructions under callgrind.
    "instrumentation_compare": (
        [],
        [
            "--rounds=1",
            "--calls=5",
            "--streams=1",
            "--chunks=20",
            "--no-write",
            "--if-available",
            "--no-instructions",
        ],
    ),
    "processor_throughput": ([], ["--rounds", "1", "--copies", "1", "--traces", "100"]),
    "memory": (
        [],
        ["--rounds", "1", "--steps", "2", "--step-traces", "100", "--steady-seconds", "2"],
    ),
    "growth": ([], ["--rounds", "1", "--spans", "2000", "--traces-for-tags", "50"]),
    "soak": ([], ["--seconds", "3", "--rate", "1000", "--sample", "1"]),
    # Starts its own PostgreSQL (scripts/postgres/install.sh); the full run loads 10M rows.
    "ledger_write": (
        [],
        ["--rows", "2000", "--rounds", "1", "--report-rows", "20000", "--no-write"],
    ),
    "otlp_http_servers": ([], ["--rounds", "1", "--requests", "100"]),
    "overload": ([], ["--seconds", "3", "--stall", "2", "--small"]),
    "otlp_edges": ([], ["--seconds", "0.5", "--clients", "2"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs, seconds each")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per benchmark")
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or BENCHMARKS:
        full, quick = BENCHMARKS[name]
        command = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run(command, timeout=args.timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            code = "timed out"
        print(
            f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
