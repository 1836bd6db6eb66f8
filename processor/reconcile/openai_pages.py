"""Pages of OpenAI's organization Usage and Costs APIs, read into bill lines.

Usage (``GET /v1/organization/usage/completions`` and ``…/embeddings``, ``group_by=model``,
``bucket_width=1d``)::

    {"object": "page", "has_more": false, "next_page": null, "data": [
      {"object": "bucket", "start_time": 1730419200, "end_time": 1730505600, "results": [
        {"object": "organization.usage.completions.result", "model": "gpt-4o-mini-2024-07-18",
         "input_tokens": 1000, "input_cached_tokens": 800, "output_tokens": 500,
         "num_model_requests": 5, "project_id": null, ...}]}]}

``input_tokens`` counts cached and cache-write tokens too, as the ledger does.

Costs (``GET /v1/organization/costs``, ``group_by=line_item``)::

    {"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
     "line_item": "gpt-4o-mini-2024-07-18, input", "project_id": null}

A line item names the model and the kind of charge (``input``, ``cached input``, ``output``,
sometimes behind a tier such as ``batch | ``); one that names no model (``web search tool
calls``) is a charge of its own, which no LLM call in the ledger can explain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from spanledger.processor.reconcile import fields
from spanledger.processor.reconcile.bill import (
    COST,
    USAGE,
    BillError,
    BillLine,
    Tokens,
    day_of_unix,
)

PROVIDER = "openai"
COMPLETIONS = "organization.usage.completions.result"
EMBEDDINGS = "organization.usage.embeddings.result"
COSTS = "organization.costs.result"
RESULT_SOURCES = {COMPLETIONS: "completions", EMBEDDINGS: "embeddings", COSTS: "costs"}
DAY = 86_400


def page_source(page: Mapping[str, Any]) -> str | None:
    """``completions``, ``embeddings`` or ``costs`` from the results' ``object``; None when the
    page has no result to tell by."""
    for bucket in page.get("data") or []:
        for result in (bucket or {}).get("results") or []:
            if isinstance(result, Mapping) and result.get("object") in RESULT_SOURCES:
                return RESULT_SOURCES[result["object"]]
    return None


def is_page(page: object) -> bool:
    """Whether ``page`` looks like a page of these APIs (buckets with Unix ``start_time``)."""
    if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
        return False
    return page.get("object") == "page" or all(
        isinstance(b, Mapping) and "start_time" in b for b in page["data"]
    )


def page_lines(page: Mapping[str, Any], where: str) -> Iterator[BillLine]:
    """Every usage or cost line of one page; ``where`` names the page for errors."""
    for index, raw in enumerate(fields.items(page.get("data"), f"{where}: data")):
        place = f"{where}: data[{index}]"
        bucket = fields.mapping(raw, place)
        start = bucket.get("start_time")
        if isinstance(start, bool) or not isinstance(start, int):
            raise BillError(f"{place}: start_time {start!r} is not a Unix time")
        end = bucket.get("end_time")
        if end is not None and end != start + DAY:
            raise BillError(
                f"{place}: the bucket is {end} - {start} seconds long, not one day; "
                "ask for bucket_width=1d"
            )
        day = day_of_unix(start, place)
        for number, result in enumerate(fields.items(bucket.get("results"), f"{place}.results")):
            yield _line(
                fields.mapping(result, f"{place}.results[{number}]"),
                day,
                f"{place}.results[{number}]",
            )


def _line(result: Mapping[str, Any], day: Any, where: str) -> BillLine:
    kind = result.get("object")
    project = fields.text(result, "project_id", where)
    if kind == COSTS:
        amount = fields.mapping(result.get("amount"), f"{where}.amount")
        fields.usd(amount.get("currency"), f"{where}.amount.currency")
        line_item = fields.text(result, "line_item", where)
        if line_item is None:
            raise BillError(
                f"{where}: no line_item; ask the Costs API for group_by=line_item, which names "
                "the model of each charge"
            )
        return BillLine(
            kind=COST,
            source="costs",
            day=day,
            provider=PROVIDER,
            model=line_item_model(line_item),
            project=project,
            where=where,
            cost=fields.amount(amount.get("value"), f"{where}.amount.value"),
        )
    if kind not in (COMPLETIONS, EMBEDDINGS):
        raise BillError(
            f"{where}: result object {kind!r} is not a completions, embeddings or costs result"
        )
    model = fields.text(result, "model", where)
    if model is None:
        raise BillError(f"{where}: no model; ask the Usage API for group_by=model")
    embeddings = kind == EMBEDDINGS
    tokens = Tokens(
        input=fields.count(result, "input_tokens", where) or 0,
        output=0 if embeddings else fields.count(result, "output_tokens", where) or 0,
        cache_read=0
        if embeddings
        else fields.count(result, "input_cached_tokens", where, required=False),
        cache_write=0
        if embeddings
        else fields.count(result, "input_cache_write_tokens", where, required=False) or 0,
        cache_write_1h=0,
    )
    return BillLine(
        kind=USAGE,
        source=RESULT_SOURCES[kind],
        day=day,
        provider=PROVIDER,
        model=model,
        project=project,
        where=where,
        operation="embeddings" if embeddings else "chat",
        tokens=tokens,
        requests=fields.count(result, "num_model_requests", where),
    )


def line_item_model(line_item: str) -> str:
    """The model a costs line item charges for: ``gpt-4o-mini-2024-07-18, cached input`` ->
    ``gpt-4o-mini-2024-07-18``; ``batch | gpt-4o, output`` -> ``gpt-4o``. A line item without
    a ``, kind`` part is its own name."""
    head, sep, _kind = line_item.partition(",")
    if not sep:
        return line_item.strip()
    return head.rpartition("|")[2].strip()
