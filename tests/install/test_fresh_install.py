"""``pip install .`` works in a fresh virtualenv with the pip that comes with it, as a user would
run it: no pip upgrade, no constraints file, the dependency bounds of pyproject.toml alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spanledger import __version__

ROOT = Path(__file__).resolve().parents[2]
# What a clone holds: neither virtualenvs, nor caches, nor build output.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "*-venv",
    ".phoenix-data",
    ".ci",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
)


def run(*command: str | Path, timeout: float = 60) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pip_install_from_source_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "spanledger"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CLONE, symlinks=True)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    # The pip that ensurepip put there, whichever it is.
    pip = run(python, "-m", "pip", "--version")

    run(python, "-m", "pip", "install", "--disable-pip-version-check", source, timeout=840)

    installed = run(venv / "bin" / "spanledger", "--version")
    assert installed.strip() == f"spanledger {__version__}", pip
