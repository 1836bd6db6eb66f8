"""The examples run with the one command their README names, against the stand-in, and pass
their own checks. Both run at once, each in its own processes, to keep the suite short."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("custom_prices", "multi_service")


@pytest.mark.slow
def test_examples_run_and_pass_their_checks() -> None:
    for name in EXAMPLES:
        readme = (ROOT / "examples" / name / "README.md").read_text(encoding="utf-8")
        assert f"run: `python examples/{name}/run.py`" in readme
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / name / "run.py")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in EXAMPLES
    }
    outputs = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=150)
        assert process.returncode == 0, f"{name}:\n{stdout}\n{stderr}"
        assert "PROBLEM" not in stdout + stderr
        outputs[name] = stdout

    prices = outputs["custom_prices"]
    assert re.search(r"^llama-3\.1-8b-instruct\s+override\s", prices, re.MULTILINE)
    assert re.search(r"^gpt-4o-mini\s+price_table\s", prices, re.MULTILINE)
    assert re.search(r"^acme-experimental-7b\s+-\s.*unpriced$", prices, re.MULTILINE)

    services = outputs["multi_service"]
    for customer in ("acme", "globex"):
        assert re.search(rf"^{customer}\s+retriever\s+retrieval\s+2\s", services, re.MULTILINE)
        assert re.search(
            rf"^{customer}\s+support-app\s+ticket-answer\s+2\s", services, re.MULTILINE
        )
        assert re.search(rf"\({customer}\): spanledger\.trace\.cost = 0\.\d+ USD", services)
