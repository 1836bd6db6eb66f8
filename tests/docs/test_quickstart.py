"""docs/quickstart.md, run step by step as written: serve, stand-in, the app under
``opentelemetry-instrument``, report.

The only change to the page's commands is the ports: the processor and the stand-in take free
ports (machines running this suite run other processors), and the page's ports in the app's
environment are replaced by those.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from .support import block_with, shell, user_env

PAGE = "docs/quickstart.md"
ROW = re.compile(r"^acme\s+summarizer\s+(\d+\.\d+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", re.M)


def command(needle: str) -> str:
    """The page's one-line bash block that contains ``needle``."""
    text = block_with(PAGE, "bash", needle).text.strip()
    assert "\n" not in text, f"{needle}: one command expected, got {text!r}"
    return text


@contextmanager
def running(args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """Run a shell command line in the background; SIGINT (Ctrl-C) when done."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {args}"],
        cwd=cwd,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def read_until(process: subprocess.Popen[str], pattern: str) -> tuple[re.Match[str], str]:
    """Read the process's output until a line matches; the match and everything read."""
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        found = re.search(pattern, line)
        if found:
            return found, seen
    raise AssertionError(f"{pattern!r} never printed; output:\n{seen}")


def drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    threading.Thread(target=process.stdout.read, daemon=True).start()


@pytest.mark.slow
def test_quickstart_as_written_reports_the_cost(tmp_path: Path) -> None:
    serve, standin = command("spanledger serve"), command("spanledger standin")
    assert (serve, standin) == ("spanledger serve", "spanledger standin")
    (tmp_path / "ports.yaml").write_text(
        "receivers: {otlp: {grpc: {endpoint: 127.0.0.1:0}, http: {endpoint: 127.0.0.1:0}}}\n"
        "metrics: {prometheus: {endpoint: 127.0.0.1:0}}\n",
        encoding="utf-8",
    )
    with (
        running(f"{serve} --config ports.yaml", tmp_path) as processor,
        running(f"{standin} --port 0", tmp_path) as llm,
    ):
        grpc_port = read_until(processor, r"listening: OTLP/gRPC 127\.0\.0\.1:(\d+)")[0].group(1)
        drain(processor)
        stop_line = "Stop it with Ctrl-C (SIGINT) or SIGTERM."
        _, printed = read_until(llm, re.escape(stop_line))
        drain(llm)
        llm_port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", printed).group(1)
        # The page shows what the stand-in prints, at the default port.
        sample = block_with(PAGE, "", "OPENAI_BASE_URL=").text
        assert printed.replace(f":{llm_port}", ":8765") == sample

        (tmp_path / "app.py").write_text(
            block_with(PAGE, "python", "spanledger.tags").text, encoding="utf-8"
        )
        script = block_with(PAGE, "bash", "opentelemetry-instrument").text
        for page_url, url in [
            ("http://127.0.0.1:4317\n", f"http://127.0.0.1:{grpc_port}\n"),
            ("http://127.0.0.1:8765/v1\n", f"http://127.0.0.1:{llm_port}/v1\n"),
        ]:
            assert script.count(page_url) == 1, page_url
            script = script.replace(page_url, url)
        app = shell(script, tmp_path)
        assert app.returncode == 0, app.stderr
        assert app.stdout.strip() == "Hello from the spanledger stand-in."

        report = command("spanledger report")
        deadline = time.monotonic() + 30
        while True:
            shown = shell(report, tmp_path)
            row = ROW.search(shown.stdout)
            if row or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert shown.returncode == 0, shown.stderr
    assert row, f"no cost for acme/summarizer in 30 s:\n{shown.stdout}{shown.stderr}"
    cost, calls, unpriced, input_tokens, output_tokens = row.groups()
    assert Decimal(cost) > 0
    assert (calls, unpriced) == ("1", "0")
    # The page's sample report shows the same call.
    page_row = ROW.search(block_with(PAGE, "", "acme      summarizer").text)
    assert page_row is not None
    assert (input_tokens, output_tokens) == page_row.group(4, 5)
    assert "total $" in shown.stdout and shown.stderr == ""
