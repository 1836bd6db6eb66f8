"""`spanledger demo`, README's first command, run as users run it."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest


@pytest.mark.slow
def test_demo_prints_reports_and_a_cost_tree() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spanledger.processor.cli", "demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for name in ("summarizer", "search", "support", "acme", "globex", "initech"):
        assert re.search(rf"^{name}\s+\d+\.\d+", out, re.MULTILINE), name
    totals = re.findall(r"total \$(\d+\.\d+) over (\d+) calls", out)
    assert len(totals) == 2, out
    # Both groupings cover the same 30 calls (10 per customer) and the same dollars.
    assert totals[0] == totals[1]
    assert totals[0][1] == "30"
    assert Decimal(totals[0][0]) > 0
    tree = out.split("One trace, each span with the cost of its subtree:", 1)[1]
    assert "[agent]" in tree and "[triage]" in tree
    assert re.search(r"trace \$\d+\.\d+ in \d+ calls", tree)
    assert "subtree $" in tree and "call $" in tree
    assert "Traceback" not in result.stderr
