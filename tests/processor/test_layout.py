"""The processor's folders are its layers: imports point down, and across a layer only to a
sibling's public module.

A *unit* is a top-level module or package of ``processor/`` (``sinks`` counts each of its
packages as a unit: metrics, ledger, budgets). Imports made only for type checking (under
``if TYPE_CHECKING:``) carry no dependency at run time and are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROCESSOR = Path(__file__).resolve().parents[2] / "processor"
PACKAGE = "spanledger.processor"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"service", "listeners", "config", "registry", "builtin_components"}),
    frozenset({"reconcile"}),
    frozenset({"report"}),
    frozenset(
        {"receivers", "intake", "pipeline", "exporters", "sinks.metrics", "sinks.ledger"}
        | {"sinks.budgets"}
    ),
    frozenset({"rollup"}),
    frozenset({"pricing"}),
    frozenset({"usage"}),
    frozenset(
        {"otlp", "components", "model", "config_schema", "redaction", "httpserver"}
        | {"record_files"}
    ),
)
"""From the top (the command line) down to what everything shares. A unit may import any unit
of a lower layer; within its own layer, only a sibling's public module (its package), never one
of the sibling's inner modules."""

LAYER_OF = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str | None:
    """The unit a ``spanledger.processor.*`` module belongs to (None: outside the processor)."""
    if not module.startswith(PACKAGE + "."):
        return None
    parts = module[len(PACKAGE) + 1 :].split(".")
    if parts[0] == "sinks" and len(parts) > 1:
        return f"sinks.{parts[1]}"
    return parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(PROCESSOR).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join((PACKAGE, *parts))


def runtime_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import outside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # ``from spanledger.processor import sinks``
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def public_module(imported: str, unit: str) -> bool:
    """Whether ``imported`` is ``unit``'s package (or a name in it), not an inner module."""
    package = f"{PACKAGE}.{unit}"
    if imported == package:
        return True
    inner = imported[len(package) + 1 :]
    folder = PROCESSOR / unit.replace(".", "/")
    return not ((folder / f"{inner.split('.')[0]}.py").exists() or (folder / inner).is_dir())


def violations() -> list[str]:
    found = []
    for path in sorted(PROCESSOR.rglob("*.py")):
        here = module_name(path)
        unit = unit_of(here)
        if unit is None or unit == "sinks":
            continue
        for line, imported in runtime_imports(ast.parse(path.read_text(), str(path))):
            target = unit_of(imported)
            if target is None or target in (unit, "sinks"):
                continue
            where = f"{path.relative_to(PROCESSOR.parent)}:{line} imports {imported}"
            if target not in LAYER_OF:
                if (PROCESSOR / target.replace(".", "/")).exists() or (
                    PROCESSOR / f"{target}.py"
                ).exists():
                    found.append(f"{where}: {target} is in no layer")
                continue
            if unit not in LAYER_OF:
                found.append(f"{path.relative_to(PROCESSOR.parent)}: {unit} is in no layer")
                continue
            if LAYER_OF[target] < LAYER_OF[unit]:
                found.append(f"{where}: an upward import ({unit} is below {target})")
            elif LAYER_OF[target] == LAYER_OF[unit] and not public_module(imported, target):
                found.append(f"{where}: an inner module of the sibling {target}")
    return found


def test_every_unit_is_in_a_layer() -> None:
    units = {
        path.stem if path.is_file() else path.name
        for path in PROCESSOR.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    units.discard("sinks")
    units |= {f"sinks.{p.name}" for p in (PROCESSOR / "sinks").iterdir() if p.is_dir()}
    units -= {"sinks.__pycache__"}
    assert units - set(LAYER_OF) == set()
    assert set(LAYER_OF) - units == set()


def test_imports_point_down_and_reach_siblings_only_through_their_public_module() -> None:
    assert violations() == []


def test_the_check_sees_an_upward_import_and_an_inner_sibling_module(tmp_path: Path) -> None:
    """The rules above would catch the two mistakes they exist for."""
    upward = ast.parse("from spanledger.processor.service import Service\n")
    inner = ast.parse("from spanledger.processor.exporters.disk_queue import DiskQueue\n")
    assert next(m for _, m in runtime_imports(upward)) == "spanledger.processor.service"
    assert LAYER_OF[unit_of("spanledger.processor.service")] < LAYER_OF["usage"]
    imported = next(m for _, m in runtime_imports(inner))
    assert not public_module(imported, "exporters")
    assert public_module("spanledger.processor.exporters", "exporters")
    assert public_module("spanledger.processor.exporters.DiskQueue", "exporters")
