"""Where the bill comes from: the admin APIs, files saved from them, and CSV exports."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from spanledger.processor.reconcile import anthropic_pages, openai_pages
from spanledger.processor.reconcile.admin_api import KEY_VARIABLES, AdminApi, endpoints
from spanledger.processor.reconcile.bill import Bill, BillError, BillLine
from spanledger.processor.reconcile.csv_exports import read_export

_PAGES = {
    openai_pages.PROVIDER: openai_pages,
    anthropic_pages.PROVIDER: anthropic_pages,
}


def read_files(bill: Bill, paths: Sequence[str | Path]) -> None:
    """Add every file to ``bill``: JSON pages saved from an admin API (one page, or every page
    of one request as an array, in order) or a provider's CSV export."""
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() == ".csv":
            export, lines = read_export(path)
            bill.add(lines, export.provider, f"{path} ({export.name})")
        else:
            provider, source, lines = read_saved_pages(path)
            bill.add(lines, provider, f"{path} ({provider} {source or 'records'})")


def read_saved_pages(path: Path) -> tuple[str, str | None, list[BillLine]]:
    """The provider, record and lines of a JSON file of saved pages."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BillError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BillError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise BillError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    pages = data if isinstance(data, list) else [data]
    if not pages:
        raise BillError(f"{path}: an empty array; expected the pages of an admin API answer")
    provider = None
    sources: set[str] = set()
    lines: list[BillLine] = []
    for number, page in enumerate(pages, 1):
        where = f"{path}: page {number}" if len(pages) > 1 else str(path)
        kind = _provider_of(page)
        if kind is None:
            raise BillError(
                f"{where}: not a page of OpenAI's Usage or Costs API or of Anthropic's usage or "
                "cost report (expected data: [buckets], has_more, next_page)"
            )
        if provider is not None and kind != provider:
            raise BillError(f"{where}: a {kind} page among {provider} pages; one request a file")
        provider = kind
        module = _PAGES[kind]
        source = module.page_source(page)
        if source is not None:
            sources.add(source)
        if len(sources) > 1:
            raise BillError(
                f"{where}: pages of {' and '.join(sorted(sources))} in one file; save each "
                "request's pages in a file of its own"
            )
        last = number == len(pages)
        has_more = page.get("has_more")
        if has_more is True and last:
            raise BillError(
                f"{where}: has_more is true but no page follows (next_page "
                f"{page.get('next_page')!r}): a page is missing; save every page of the request, "
                "in order, as one JSON array"
            )
        if has_more is False and not last:
            raise BillError(
                f"{where}: has_more is false but {len(pages) - number} page(s) follow it: the "
                "pages are out of order or from different requests"
            )
        lines.extend(module.page_lines(page, where))
    assert provider is not None
    return provider, next(iter(sources), None), lines


def _provider_of(page: object) -> str | None:
    for name, module in _PAGES.items():
        if module.is_page(page):
            return name
    return None


def fetch_bill(
    bill: Bill,
    providers: Sequence[str],
    *,
    by_project: bool,
    urls: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    save: Path | None = None,
    page_limit: int | None = None,
    sleep: Callable[[float], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Read the usage and cost records of ``providers`` over the bill's period from their
    admin APIs into ``bill``; with ``save``, also write each request's pages there as JSON."""
    environ = os.environ if environ is None else environ
    keys = {}
    for provider in providers:
        variable = KEY_VARIABLES.get(provider)
        if variable is None:
            raise ValueError(f"no admin API for provider {provider!r} (known: openai, anthropic)")
        key = environ.get(variable, "").strip()
        if not key:
            raise ValueError(
                f"set {variable} to an admin key of the {provider} organization to read its bill "
                "from the admin API (or pass the saved records with --file)"
            )
        keys[provider] = key
    saved: list[tuple[str, list[dict[str, Any]]]] = []
    for provider in providers:
        options: dict[str, Any] = {"page_limit": page_limit, "transport": transport}
        if sleep is not None:
            options["sleep"] = sleep
        with AdminApi(provider, keys[provider], (urls or {}).get(provider), **options) as api:
            for endpoint in endpoints(provider, bill.period, by_project):
                pages = api.pages(endpoint, len(bill.period.days))
                module = _PAGES[provider]
                lines = [line for where, page in pages for line in module.page_lines(page, where)]
                origin = f"{provider} admin API {endpoint.path}"
                bill.add(lines, provider, origin)
                name = f"{provider}-{endpoint.source}-{bill.period.since}-{bill.period.until}.json"
                saved.append((name, [page for _where, page in pages]))
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for name, pages in saved:
            (save / name).write_text(json.dumps(pages, indent=1, default=_decimal) + "\n")


def _decimal(value: object) -> Any:
    if isinstance(value, Decimal):
        # JSON numbers were read as Decimal from a double's text; as a float they write back
        # the same value.
        return float(value)
    raise TypeError(f"cannot save {type(value).__name__}")
