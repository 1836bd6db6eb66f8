"""Checks the cost invariant in every processor the tests start (see ``cost_invariant``).

The test session puts this folder on ``PYTHONPATH`` and names a folder in
``SPANLEDGER_COST_INVARIANT_DIR``. In a process that imports the rollup, each trace that breaks
the invariant appends a line to ``<pid>.txt`` there; the session fails the test that was running.
Other processes are untouched: nothing is imported until the rollup is.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_TARGET = "spanledger.processor.rollup.annotate"


class _WhenImported(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            execute(module)
            _check(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _check(module) -> None:  # type: ignore[no-untyped-def]
    import cost_invariant

    path = os.path.join(os.environ["SPANLEDGER_COST_INVARIANT_DIR"], f"{os.getpid()}.txt")

    def report(line: str) -> None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    cost_invariant.install(module.TraceAnnotator, report)


def _chain() -> None:
    """Run the ``sitecustomize`` this one hides, if there is one further on the path."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_hidden_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


if os.environ.get("SPANLEDGER_COST_INVARIANT_DIR") and _TARGET not in sys.modules:
    sys.meta_path.insert(0, _WhenImported())
_chain()
