"""The budgets example runs with the command its README names and passes its own checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.slow
def test_budgets_example_stops_the_fifth_call_after_three_signed_alerts() -> None:
    readme = (ROOT / "examples" / "budgets" / "README.md").read_text(encoding="utf-8")
    assert "run: `python examples/budgets/run.py`" in readme
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "budgets" / "run.py")],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BLOCKED 5" in done.stdout
    assert done.stdout.count("(signed)") == 3
    assert "customer=acme  monthly" in done.stdout
