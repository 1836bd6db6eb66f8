"""The providers' CSV exports, for teams that do not hand an admin key to a tool.

Recognised by their header row (every column must be known, so a changed export is noticed):

- OpenAI cost export (Usage page, Export, *Cost data*, grouped by line item, daily):
  ``start_time, end_time, amount_value, amount_currency, line_item, project_id, …``
- OpenAI activity export (*Activity data*, grouped by model, daily): the Usage API's result
  fields as columns: ``start_time, model, input_tokens, output_tokens, input_cached_tokens,
  num_model_requests, project_id, …``
- Anthropic usage export (Console, Usage, Export): ``usage_date_utc, model_version, workspace,
  usage_input_tokens_no_cache, usage_input_tokens_cache_write_5m,
  usage_input_tokens_cache_write_1h, usage_input_tokens_cache_read, usage_output_tokens, …``
- Anthropic cost export (Console, Cost, Export): ``usage_date_utc, model, workspace,
  token_type, cost_usd, …`` (the model is a display name such as ``Claude Haiku 4.5``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from spanledger.processor.reconcile import anthropic_pages, fields, openai_pages
from spanledger.processor.reconcile.bill import (
    COST,
    USAGE,
    BillError,
    BillLine,
    Tokens,
    day_of_text,
    day_of_unix,
)

Row = dict[str, str]


@dataclass(frozen=True)
class ExportFormat:
    """One provider export: how to know it, which columns it may have, how to read a row."""

    name: str
    provider: str
    marker: frozenset[str]
    """Columns that, all present, identify the export."""
    required: frozenset[str]
    known: frozenset[str]
    read: Callable[[Row, str], BillLine]


def _int(row: Row, column: str, where: str) -> int:
    raw = (row.get(column) or "").strip().replace(",", "")
    if not raw:
        return 0
    if not raw.isdigit():
        raise BillError(f"{where}: {column} is {raw!r}; expected a whole number >= 0")
    return int(raw)


def _required(row: Row, column: str, where: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise BillError(f"{where}: {column} is empty")
    return value


def _openai_day(row: Row, where: str) -> date:
    start = (row.get("start_time") or "").strip()
    if start:
        if not start.lstrip("-").isdigit():
            raise BillError(f"{where}: start_time {start!r} is not a Unix time")
        return day_of_unix(int(start), f"{where}: start_time")
    return day_of_text(_required(row, "start_time_iso", where), f"{where}: start_time_iso")


def _openai_cost(row: Row, where: str) -> BillLine:
    fields.usd(row.get("amount_currency"), f"{where}: amount_currency")
    line_item = _required(row, "line_item", where)
    return BillLine(
        kind=COST,
        source="costs",
        day=_openai_day(row, where),
        provider=openai_pages.PROVIDER,
        model=openai_pages.line_item_model(line_item),
        project=(row.get("project_id") or "").strip() or None,
        where=where,
        cost=fields.amount(_required(row, "amount_value", where), f"{where}: amount_value"),
    )


def _openai_activity(row: Row, where: str) -> BillLine:
    model = _required(row, "model", where)
    embeddings = "embedding" in model
    return BillLine(
        kind=USAGE,
        source="completions",
        day=_openai_day(row, where),
        provider=openai_pages.PROVIDER,
        model=model,
        project=(row.get("project_id") or "").strip() or None,
        where=where,
        operation="embeddings" if embeddings else "chat",
        tokens=Tokens(
            input=_int(row, "input_tokens", where),
            output=_int(row, "output_tokens", where),
            cache_read=_int(row, "input_cached_tokens", where),
            cache_write=_int(row, "input_cache_write_tokens", where),
            cache_write_1h=0,
        ),
        requests=_int(row, "num_model_requests", where),
    )


def _anthropic_usage(row: Row, where: str) -> BillLine:
    uncached = _int(row, "usage_input_tokens_no_cache", where)
    read = _int(row, "usage_input_tokens_cache_read", where)
    write_5m = _int(row, "usage_input_tokens_cache_write_5m", where) + _int(
        row, "usage_input_tokens_cache_write", where
    )
    write_1h = _int(row, "usage_input_tokens_cache_write_1h", where)
    return BillLine(
        kind=USAGE,
        source=anthropic_pages.USAGE_SOURCE,
        day=day_of_text(_required(row, "usage_date_utc", where), f"{where}: usage_date_utc"),
        provider=anthropic_pages.PROVIDER,
        model=_required(row, "model_version", where),
        project=(row.get("workspace") or "").strip() or None,
        where=where,
        tokens=Tokens(
            input=uncached + read + write_5m + write_1h,
            output=_int(row, "usage_output_tokens", where),
            cache_read=read,
            cache_write=write_5m,
            cache_write_1h=write_1h,
        ),
    )


def _anthropic_cost(row: Row, where: str) -> BillLine:
    return BillLine(
        kind=COST,
        source=anthropic_pages.COST_SOURCE,
        day=day_of_text(_required(row, "usage_date_utc", where), f"{where}: usage_date_utc"),
        provider=anthropic_pages.PROVIDER,
        model=_required(row, "model", where),
        project=(row.get("workspace") or "").strip() or None,
        where=where,
        cost=fields.amount(_required(row, "cost_usd", where), f"{where}: cost_usd"),
    )


_OPENAI_COMMON = {
    "start_time",
    "end_time",
    "start_time_iso",
    "end_time_iso",
    "project_id",
    "project_name",
    "organization_id",
    "organization_name",
    "api_key_id",
    "api_key_name",
    "user_id",
    "user_email",
}
_ANTHROPIC_COMMON = {
    "usage_date_utc",
    "api_key",
    "workspace",
    "usage_type",
    "context_window",
    "inference_geo",
    "speed",
}

FORMATS = (
    ExportFormat(
        "OpenAI cost export",
        openai_pages.PROVIDER,
        frozenset({"amount_value", "line_item"}),
        frozenset({"amount_value", "amount_currency", "line_item"}),
        frozenset({*_OPENAI_COMMON, "amount_value", "amount_currency", "line_item", "quantity"}),
        _openai_cost,
    ),
    ExportFormat(
        "OpenAI activity export",
        openai_pages.PROVIDER,
        frozenset({"num_model_requests", "input_tokens"}),
        frozenset({"model", "input_tokens", "output_tokens", "num_model_requests"}),
        frozenset(
            {
                *_OPENAI_COMMON,
                "model",
                "batch",
                "service_tier",
                "api_source",
                "input_tokens",
                "output_tokens",
                "input_cached_tokens",
                "input_uncached_tokens",
                "input_cache_write_tokens",
                "input_text_tokens",
                "input_image_tokens",
                "input_audio_tokens",
                "input_cached_text_tokens",
                "input_cached_image_tokens",
                "input_cached_audio_tokens",
                "output_text_tokens",
                "output_image_tokens",
                "output_audio_tokens",
                "num_model_requests",
            }
        ),
        _openai_activity,
    ),
    ExportFormat(
        "Anthropic usage export",
        anthropic_pages.PROVIDER,
        frozenset({"usage_date_utc", "usage_input_tokens_no_cache"}),
        frozenset({"usage_date_utc", "model_version", "usage_input_tokens_no_cache"}),
        frozenset(
            {
                *_ANTHROPIC_COMMON,
                "model_version",
                "usage_input_tokens_no_cache",
                "usage_input_tokens_cache_write",
                "usage_input_tokens_cache_write_5m",
                "usage_input_tokens_cache_write_1h",
                "usage_input_tokens_cache_read",
                "usage_output_tokens",
                "web_search_count",
            }
        ),
        _anthropic_usage,
    ),
    ExportFormat(
        "Anthropic cost export",
        anthropic_pages.PROVIDER,
        frozenset({"usage_date_utc", "cost_usd"}),
        frozenset({"usage_date_utc", "model", "cost_usd"}),
        frozenset(
            {
                *_ANTHROPIC_COMMON,
                "model",
                "token_type",
                "cost_usd",
                "list_price_usd",
                "cost_type",
                "description",
            }
        ),
        _anthropic_cost,
    ),
)


def read_export(path: Path) -> tuple[ExportFormat, list[BillLine]]:
    """Every line of the CSV export at ``path``; raises ``BillError`` naming the line."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BillError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BillError(f"{path}:1: not a CSV file: {exc}") from None
        if not header:
            raise BillError(f"{path}: the file is empty; expected a provider's CSV export")
        columns = [c.strip() for c in header]
        export = _format_of(path, columns)
        return export, list(_rows(path, reader, columns, export))


def _format_of(path: Path, columns: list[str]) -> ExportFormat:
    names = set(columns)
    for export in FORMATS:
        if export.marker <= names:
            unknown = [c for c in columns if c not in export.known]
            if unknown:
                raise BillError(
                    f"{path}:1: unknown column {unknown[0]!r} in an {export.name} (known "
                    f"columns: {', '.join(sorted(export.known))})"
                )
            missing = sorted(export.required - names)
            if missing:
                raise BillError(f"{path}:1: the {export.name} lacks column {missing[0]!r}")
            if len(names) != len(columns):
                raise BillError(f"{path}:1: a column is named twice")
            return export
    raise BillError(
        f"{path}:1: not a CSV export spanledger knows (header {', '.join(columns[:6])}…); "
        f"expected one of: {', '.join(e.name for e in FORMATS)}"
    )


def _rows(
    path: Path, reader: Iterator[list[str]], columns: list[str], export: ExportFormat
) -> Iterator[BillLine]:
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BillError(f"{path}:{line + 1}: unreadable CSV: {exc}") from None
        line = getattr(reader, "line_num", line + 1)
        if not cells or all(not c.strip() for c in cells):
            continue
        where = f"{path}:{line}"
        if len(cells) != len(columns):
            raise BillError(
                f"{where}: {len(cells)} fields where the header has {len(columns)} "
                "(a cut or edited file?)"
            )
        yield export.read(dict(zip(columns, cells, strict=True)), where)
