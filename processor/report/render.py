"""Print report rows as a terminal table, a JSON array or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

from spanledger.processor.report.rows import Row

FORMATS = ("table", "json", "csv")

_HEADINGS = {
    "cost_usd": "cost $",
    "share_pct": "share",
    "calls": "calls",
    "unpriced_calls": "unpriced",
    "input_tokens": "input tok",
    "output_tokens": "output tok",
    "avg_input_tokens": "avg in/call",
    "previous_cost_usd": "prev cost $",
    "change_usd": "change $",
    "change_pct": "change",
    "previous_calls": "prev calls",
    "previous_avg_input_tokens": "prev avg in",
    "avg_input_tokens_change_pct": "avg in change",
    "cost_per_call_usd": "$/call",
    "cost_per_call_change_pct": "$/call change",
}
_PERCENT = {"share_pct", "change_pct", "avg_input_tokens_change_pct", "cost_per_call_change_pct"}
_MONEY = {"cost_usd", "previous_cost_usd", "change_usd"}
_TABLE_MONEY_PLACES = Decimal("0.000001")


def render(
    rows: Sequence[Row],
    columns: Sequence[str],
    fmt: str,
    footer: Sequence[str] = (),
    *,
    headings: Mapping[str, str] | None = None,
    money: Collection[str] = (),
    percent: Collection[str] = (),
) -> str:
    """``rows`` in format ``fmt``; ``footer`` lines (the total, notes) appear in tables only.

    ``headings`` adds table headings for further numeric columns; ``money`` and ``percent``
    name further columns shown as dollars and as percentages.
    """
    if fmt == "json":
        return _json(rows, columns)
    if fmt == "csv":
        return _csv(rows, columns)
    return _table(rows, columns, footer, _Style(headings or {}, money, percent))


class _Style:
    """How table cells are headed and written: the report's own columns plus any extra."""

    def __init__(
        self, headings: Mapping[str, str], money: Collection[str], percent: Collection[str]
    ) -> None:
        self.headings = {**_HEADINGS, **headings}
        self.money = _MONEY | set(money)
        self.percent = _PERCENT | set(percent)


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text if "." not in text else text.rstrip("0").rstrip(".") or "0"
    return json.dumps(value)


def _json(rows: Sequence[Row], columns: Sequence[str]) -> str:
    # Written by hand so that decimal amounts stay exact JSON numbers (json cannot dump Decimal).
    lines = []
    for row in rows:
        members = ", ".join(f"{json.dumps(c)}: {_json_value(row.get(c))}" for c in columns)
        lines.append("  {" + members + "}")
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def _csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_csv_value(row.get(c)) for c in columns)
    return out.getvalue()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _cell(column: str, value: object, style: _Style) -> str:
    if value is None:
        return "new" if column in ("change_pct", "avg_input_tokens_change_pct") else "-"
    if column in style.percent and isinstance(value, Decimal):
        sign = "+" if column.endswith("change_pct") and value > 0 else ""
        return f"{sign}{value}%"
    if column in style.money and isinstance(value, Decimal):
        return format(value.quantize(_TABLE_MONEY_PLACES), ",f")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(
    rows: Sequence[Row], columns: Sequence[str], footer: Sequence[str], style: _Style
) -> str:
    headings = [style.headings.get(c, c) for c in columns]
    cells = [[_cell(c, row.get(c), style) for c in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headings)]
    numeric = [c in style.headings for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headings), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    if not rows:
        out.append("(no calls in this period)")
    out += ["", *footer] if footer else []
    return "\n".join(out) + "\n"
