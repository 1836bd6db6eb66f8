"""Pages of Anthropic's Usage and Cost Admin API, read into bill lines.

Usage report (``GET /v1/organizations/usage_report/messages``, ``group_by[]=model``, daily)::

    {"has_more": false, "next_page": null, "data": [
      {"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [
        {"model": "claude-sonnet-4-20250514", "uncached_input_tokens": 1500,
         "cache_read_input_tokens": 200,
         "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
         "output_tokens": 500, "workspace_id": "wrkspc_…", ...}]}]}

All input is ``uncached + cache read + cache creation``, the ledger's ``input_tokens``. The
report has no request counts.

Cost report (``GET /v1/organizations/cost_report``, ``group_by[]=description``)::

    {"currency": "USD", "amount": "123.78912", "model": "claude-sonnet-4-20250514",
     "cost_type": "tokens", "token_type": "uncached_input_tokens", "workspace_id": "wrkspc_…",
     "description": "Claude Sonnet 4 Usage - Input Tokens", ...}

``amount`` is decimal text in the currency's lowest unit, cents: ``"123.78912"`` is $1.2378912.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from spanledger.processor.reconcile import fields
from spanledger.processor.reconcile.bill import (
    COST,
    USAGE,
    BillError,
    BillLine,
    Tokens,
    day_of_text,
)

PROVIDER = "anthropic"
USAGE_SOURCE = "usage_report"
COST_SOURCE = "cost_report"
_CENTS = Decimal(100)


def page_source(page: Mapping[str, Any]) -> str | None:
    """``usage_report`` or ``cost_report`` from the results' fields; None without results."""
    for bucket in page.get("data") or []:
        for result in (bucket or {}).get("results") or []:
            if isinstance(result, Mapping):
                if "amount" in result:
                    return COST_SOURCE
                if "uncached_input_tokens" in result or "output_tokens" in result:
                    return USAGE_SOURCE
    return None


def is_page(page: object) -> bool:
    """Whether ``page`` looks like a page of these reports (buckets with ``starting_at``)."""
    if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
        return False
    return "has_more" in page and all(
        isinstance(b, Mapping) and "starting_at" in b for b in page["data"]
    )


def page_lines(page: Mapping[str, Any], where: str) -> Iterator[BillLine]:
    """Every usage or cost line of one page; ``where`` names the page for errors."""
    for index, raw in enumerate(fields.items(page.get("data"), f"{where}: data")):
        place = f"{where}: data[{index}]"
        bucket = fields.mapping(raw, place)
        day = day_of_text(bucket.get("starting_at"), f"{place}.starting_at")
        ending = bucket.get("ending_at")
        if ending is not None and (day_of_text(ending, f"{place}.ending_at") - day).days != 1:
            raise BillError(f"{place}: the bucket is not one day long; ask for bucket_width=1d")
        for number, result in enumerate(fields.items(bucket.get("results"), f"{place}.results")):
            at = f"{place}.results[{number}]"
            yield _line(fields.mapping(result, at), day, at)


def _line(result: Mapping[str, Any], day: Any, where: str) -> BillLine:
    workspace = fields.text(result, "workspace_id", where)
    if "amount" in result:
        fields.usd(result.get("currency"), f"{where}.currency")
        cents = fields.amount(result.get("amount"), f"{where}.amount")
        model = fields.text(result, "model", where)
        if model is None:
            model = fields.text(result, "description", where) or fields.text(
                result, "cost_type", where
            )
        if model is None:
            raise BillError(
                f"{where}: no model; ask the cost report for group_by[]=description, which "
                "names the model of each charge"
            )
        return BillLine(
            kind=COST,
            source=COST_SOURCE,
            day=day,
            provider=PROVIDER,
            model=model,
            project=workspace,
            where=where,
            cost=cents / _CENTS,
        )
    model = fields.text(result, "model", where)
    if model is None:
        raise BillError(f"{where}: no model; ask the usage report for group_by[]=model")
    uncached = fields.count(result, "uncached_input_tokens", where) or 0
    cache_read = fields.count(result, "cache_read_input_tokens", where, required=False) or 0
    creation = result.get("cache_creation")
    if creation is None:
        # Some saved reports flatten the cache-creation figures.
        creation = {
            "ephemeral_5m_input_tokens": result.get("cache_creation_5m_input_tokens", 0),
            "ephemeral_1h_input_tokens": result.get("cache_creation_1h_input_tokens", 0),
        }
    creation = fields.mapping(creation, f"{where}.cache_creation")
    write_5m = fields.count(creation, "ephemeral_5m_input_tokens", f"{where}.cache_creation")
    write_1h = fields.count(creation, "ephemeral_1h_input_tokens", f"{where}.cache_creation")
    tokens = Tokens(
        input=uncached + cache_read + (write_5m or 0) + (write_1h or 0),
        output=fields.count(result, "output_tokens", where) or 0,
        cache_read=cache_read,
        cache_write=write_5m,
        cache_write_1h=write_1h,
    )
    return BillLine(
        kind=USAGE,
        source=USAGE_SOURCE,
        day=day,
        provider=PROVIDER,
        model=model,
        project=workspace,
        where=where,
        tokens=tokens,
    )
