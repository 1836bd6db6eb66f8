"""Running what the docs say: their code blocks, and a shell like a new user's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its text and the prose just before it."""

    lang: str
    text: str
    before: str


def blocks(relative: str) -> list[Block]:
    """Every fenced code block of the Markdown file at ``relative`` (from the repository root)."""
    text = (ROOT / relative).read_text(encoding="utf-8")
    found, end = [], 0
    for match in _FENCE.finditer(text):
        found.append(Block(match.group(1), match.group(2), text[end : match.start()]))
        end = match.end()
    return found


def block_with(relative: str, lang: str, needle: str) -> Block:
    """The one ``lang`` block of ``relative`` that contains ``needle``."""
    matching = [b for b in blocks(relative) if b.lang == lang and needle in b.text]
    assert len(matching) == 1, f"{relative}: {len(matching)} {lang} blocks contain {needle!r}"
    return matching[0]


def user_env() -> dict[str, str]:
    """A new user's shell: this Python's ``bin`` first on PATH (``spanledger``, ``python``,
    ``opentelemetry-instrument``), none of the variables the docs have them set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_")) and k != "BACKEND_AUTH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shell(script: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash (stopping at the first failing command) in ``cwd``."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=user_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
