"""`spanledger demo`, README's first command, run as users run it."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest


def spanledger(*args: str) -> str:
    """Run the ``spanledger`` command; its output, once it exited 0 without a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "spanledger.processor.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.mark.slow
def test_demo_prints_reports_and_a_cost_tree() -> None:
    out = spanledger("demo")
    for name in ("summarizer", "search", "support", "acme", "globex", "initech"):
        assert re.search(rf"^{name}\s+\d+\.\d+", out, re.MULTILINE), name
    totals = re.findall(r"total \$(\d+\.\d+) over (\d+) calls", out)
    assert len(totals) == 2, out
    # Both groupings cover the same 36 calls (12 per customer, one Gemini and one Bedrock call
    # among them) and the same dollars.
    assert totals[0] == totals[1]
    assert totals[0][1] == "36"
    assert Decimal(totals[0][0]) > 0
    tree = out.split("One trace, each span with the cost of its subtree:", 1)[1]
    assert "[agent]" in tree and "[triage]" in tree
    assert re.search(r"trace \$\d+\.\d+ in \d+ calls", tree)
    assert "subtree $" in tree and "call $" in tree
    # The stand-in bills the in-house fine-tune above the demo's override: a price gap.
    bill = out.split("The provider's bill against the ledger", 1)[1]
    assert re.search(r"openai\s+acme-support-ft-2 .* price$", bill, re.MULTILINE), bill
    assert "the price table is off for this model" in bill
    invoice = re.search(r"settled total \$(\d+\.\d\d) \(the providers' invoices", out)
    assert invoice and Decimal(invoice[1]) > 0

    # The ledger the reports name is a temporary one, and the demo says so and how to keep it.
    announced = re.search(r"ledger (\S+spanledger\.db) \(temporary: (.+)\)", out)
    assert announced, out
    assert "--keep DIR keeps it" in announced.group(2)
    ledger = announced.group(1)
    assert f"ledger {ledger}, start .. now UTC" in out
    assert f"{ledger} is removed as the demo ends" in out
    assert "spanledger demo --keep DIR" in out
    assert not Path(ledger).exists()


@pytest.mark.slow
def test_demo_keep_leaves_a_ledger_that_report_reads(tmp_path: Path) -> None:
    out = spanledger("demo", "--keep", str(tmp_path))
    ledger = tmp_path / "spanledger.db"
    assert f"ledger {ledger} (kept)" in out
    assert f"Ledger kept at {ledger}" in out
    assert f"spanledger report --ledger {ledger} --by customer --by feature" in out
    demo_total = re.findall(r"total \$(\d+\.\d+) over 36 calls", out)[0]
    report = spanledger("report", "--ledger", str(ledger), "--by", "customer", "--by", "feature")
    assert f"total ${demo_total} over 36 calls" in report
    assert re.search(r"^acme\s+summarizer\s+\d+\.\d+", report, re.MULTILINE)
