"""Programs the tests start: apps under ``opentelemetry-instrument``, servers they stop again."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

INSTRUMENT = Path(sysconfig.get_path("scripts")) / "opentelemetry-instrument"
"""The zero-code launcher installed beside this interpreter."""


def instrumented(script: Path, *args: str) -> list[str]:
    """The command running ``script`` with this interpreter under ``opentelemetry-instrument``."""
    return [str(INSTRUMENT), sys.executable, str(script), *args]


def run_instrumented(
    script: Path, *args: str, env: Mapping[str, str], timeout: float = 90.0
) -> str:
    """Run ``script`` under ``opentelemetry-instrument`` as users do and return what it printed.

    Fails, showing what it wrote to stderr, when it exits with an error.
    """
    completed = subprocess.run(
        instrumented(script, *args),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def stop_process(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL if the process has not exited ``grace`` seconds later."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
