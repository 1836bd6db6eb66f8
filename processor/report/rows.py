"""Turn ledger group totals into report rows: shares, averages, change against the previous
period, the ``--top`` fold and the version comparison. All money stays ``Decimal``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from decimal import ROUND_HALF_EVEN, Decimal

from spanledger.processor.sinks.ledger import GroupTotals
from spanledger.processor.sinks.ledger.store import TIME_DIMENSIONS
from spanledger.semconv import OVERFLOW

Row = dict[str, object]
"""One report row: the group-by keys first, then the figures, in display order."""

_HUNDRED = Decimal(100)
_SUMMED = [f.name for f in fields(GroupTotals) if f.name != "key"]


def empty(key: tuple[str, ...]) -> GroupTotals:
    """A group with no calls."""
    return GroupTotals(key, Decimal(0), 0, 0, 0, 0, 0, 0, 0)


def merge(key: tuple[str, ...], groups: Sequence[GroupTotals]) -> GroupTotals:
    """One group holding the sums of ``groups``."""
    total = empty(key)
    for group in groups:
        for name in _SUMMED:
            setattr(total, name, getattr(total, name) + getattr(group, name))
    return total


def _round(value: Decimal | None, places: str) -> Decimal | None:
    return None if value is None else value.quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


def _ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return None if not whole else Decimal(part) / Decimal(whole)


def _change_pct(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    if now is None or before is None or not before:
        return None
    change = _round((now - before) / before * _HUNDRED, "0.1")
    return abs(change) if change == 0 else change  # no "-0.0%"


def _per_priced_call(group: GroupTotals) -> Decimal | None:
    return _ratio(group.cost_usd, group.calls - group.unpriced_calls)


def rank(groups: Sequence[GroupTotals], names: Sequence[str]) -> list[GroupTotals]:
    """Largest cost first (ties by key); calendar dimensions, when grouped by, come first in
    time order."""
    ordered = sorted(groups, key=lambda g: (-g.cost_usd, -g.calls, g.key))
    time_positions = [i for i, name in enumerate(names) if name in TIME_DIMENSIONS]
    if time_positions:
        ordered.sort(key=lambda g: tuple(g.key[i] for i in time_positions))
    return ordered


def fold_top(
    groups: list[GroupTotals], top: int, previous: dict[tuple[str, ...], GroupTotals]
) -> tuple[list[GroupTotals], dict[tuple[str, ...], GroupTotals]]:
    """Keep the ``top`` costliest groups and fold the rest (now and before) into ``(other)``."""
    if len(groups) <= top:
        return groups, previous
    kept, rest = groups[:top], groups[top:]
    other_key = tuple(OVERFLOW for _ in groups[0].key)
    folded_previous = {g.key: g for g in (previous.get(k.key) for k in kept) if g is not None}
    rest_previous = [previous[g.key] for g in rest if g.key in previous]
    folded_previous[other_key] = merge(other_key, rest_previous)
    return [*kept, merge(other_key, rest)], folded_previous


def period_rows(
    names: Sequence[str],
    current: Sequence[GroupTotals],
    previous: Sequence[GroupTotals] | None,
    top: int | None = None,
) -> list[Row]:
    """Rows for ``--by`` names; with ``previous`` (same grouping over the period of the same
    length just before), each row also says how cost and average prompt size changed.

    Groups seen only in the previous period are kept with zero current figures, so a feature
    that stopped spending still shows. Current costs of all rows add up to the period total.
    """
    before = {g.key: g for g in previous or ()}
    groups = list(current)
    if previous is not None:
        seen = {g.key for g in groups}
        groups += [empty(key) for key in before if key not in seen]
    groups = rank(groups, names)
    if top is not None:
        groups, before = fold_top(groups, top, before)
    total = sum((g.cost_usd for g in groups), Decimal(0))
    rows = []
    for group in groups:
        row: Row = dict(zip(names, group.key, strict=True))
        avg_input = _ratio(group.input_tokens, group.calls)
        row |= {
            "cost_usd": group.cost_usd,
            "share_pct": _round(_ratio(group.cost_usd * _HUNDRED, total), "0.01"),
            "calls": group.calls,
            "unpriced_calls": group.unpriced_calls,
            "input_tokens": group.input_tokens,
            "output_tokens": group.output_tokens,
            "avg_input_tokens": _round(avg_input, "0.1"),
        }
        if previous is not None:
            prior = before.get(group.key) or empty(group.key)
            prior_avg = _ratio(prior.input_tokens, prior.calls)
            row |= {
                "previous_cost_usd": prior.cost_usd,
                "change_usd": group.cost_usd - prior.cost_usd,
                "change_pct": _change_pct(group.cost_usd, prior.cost_usd),
                "previous_calls": prior.calls,
                "previous_avg_input_tokens": _round(prior_avg, "0.1"),
                "avg_input_tokens_change_pct": _change_pct(avg_input, prior_avg),
            }
        rows.append(row)
    return rows


def comparison_rows(
    names: Sequence[str], tag: str, values: Sequence[str], groups: Sequence[GroupTotals]
) -> list[Row]:
    """Rows comparing cost per call across ``values`` of ``tag`` (e.g. version v1 against v2),
    within each group of ``names``. ``groups`` are keyed by ``(*names, tag)``.

    The first value is the baseline: later rows carry their cost-per-call change against it.
    Cost per call divides by priced calls, so unpriced calls do not dilute it.
    """
    by_group: dict[tuple[str, ...], dict[str, GroupTotals]] = {}
    for group in groups:
        by_group.setdefault(group.key[:-1], {})[group.key[-1]] = group
    order = sorted(
        by_group,
        key=lambda k: (-sum((g.cost_usd for g in by_group[k].values()), Decimal(0)), k),
    )
    rows = []
    for base_key in order:
        variants = by_group[base_key]
        baseline = variants.get(values[0])
        base_per_call = _per_priced_call(baseline) if baseline else None
        for value in values:
            group = variants.get(value) or empty((*base_key, value))
            per_call = _per_priced_call(group)
            row: Row = dict(zip(names, base_key, strict=True))
            row[tag] = value
            row |= {
                "cost_usd": group.cost_usd,
                "calls": group.calls,
                "unpriced_calls": group.unpriced_calls,
                "input_tokens": group.input_tokens,
                "output_tokens": group.output_tokens,
                "avg_input_tokens": _round(_ratio(group.input_tokens, group.calls), "0.1"),
                "cost_per_call_usd": _round(per_call, "0.000000001"),
                "cost_per_call_change_pct": (
                    None if value == values[0] else _change_pct(per_call, base_per_call)
                ),
            }
            rows.append(row)
    return rows
