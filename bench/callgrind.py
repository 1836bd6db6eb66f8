"""Instruction counts by valgrind's callgrind, for comparisons the machine's load does not move.

The script run under callgrind does the work to count inside ``functools.reduce`` calls; only
those are counted (``--toggle-collect``), so interpreter start-up, imports and warm-up are not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def count_in_reduce(
    script: str, args: Sequence[str], *, each_call: bool = False
) -> tuple[list[int], str]:
    """Run ``python script *args`` under callgrind; return the instructions counted and its stdout.

    One count for all ``functools.reduce`` calls together, or with ``each_call`` one per call
    (in order; calls that counted nothing are left out).
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        child = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                *(["--dump-after=functools_reduce"] if each_call else []),
                f"--callgrind-out-file={out}",
                sys.executable,
                script,
                *args,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            timeout=3600,
            check=True,
        )
        if each_call:
            dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
        else:
            dumps = [out]
        counts = [count for count in map(_counted, dumps) if count > 0]
    return counts, child.stdout


def _counted(dump: Path) -> int:
    for line in dump.read_text(encoding="utf-8").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0
