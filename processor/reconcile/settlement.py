"""Settle: spread each provider's billed amount over the tag buckets, in whole cents (or a
finer unit), so that every grouping of the settled amounts adds up to the invoice.

The rule, in three steps, all in exact fractions (the unit is a cent unless ``--settle-unit``
says a finer one):

1. **The invoice.** A provider's total over the period, ``sum of its billed lines``, rounded
   half up to the cent, is what the settled amounts of that provider add up to.
2. **Days and models.** That total is split over the day x model (x project) lines by the
   largest-remainder method: each line's billed amount (plus its share, by size, of the
   invoice's rounding) is floored to the unit, and the units still missing go one each to the
   lines with the largest dropped fractions (ties: in day, model, project order).
3. **Tag buckets.** In each line, the part the ledger explains -- ``explained share x line
   amount``, rounded half up to the unit -- is split over the line's tag buckets in
   proportion to their attributed cost, again by the largest-remainder method (ties: in tag
   order); the rest goes to the ``(unattributed)`` bucket.

The explained share is ``attributed / table price of the billed tokens`` (at most 1): a price
gap alone explains nothing away (same tokens: share 1, the buckets absorb the price
difference), while tokens the instrumentation never saw leave their share unattributed. When
the table cannot price the bill's tokens, the share is ledger tokens / billed tokens; with no
token counts on the bill, attributed / billed cost. Buckets with no cost (unpriced calls only)
are weighted by their tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from spanledger.processor.reconcile.matching import Match
from spanledger.processor.report.periods import to_unix_nano
from spanledger.processor.sinks.ledger.reconciled import SettledRecord, TagBucket

CENT = Decimal("0.01")
UNITS = tuple(Decimal(10) ** -places for places in range(2, 7))
"""Units amounts may be settled in: a cent down to a millionth of a dollar."""


def round_half_up(value: Fraction) -> int:
    """The nearest whole number, halves away from zero."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def apportion(target: int, quotas: Sequence[Fraction]) -> list[int]:
    """Whole units adding up to ``target``: each quota floored, the units still missing given
    one each to the largest dropped fractions (ties: first in order). The quotas must add up
    to ``target`` (as steps 2 and 3 above make them), or fall short of it by less than one
    unit per quota."""
    floors = [math.floor(q) for q in quotas]
    missing = target - sum(floors)
    if not 0 <= missing <= len(quotas):
        raise ValueError(f"cannot apportion {target} over quotas adding up to {sum(quotas)}")
    order = sorted(range(len(quotas)), key=lambda i: (floors[i] - quotas[i], i))
    for index in order[:missing]:
        floors[index] += 1
    return floors


def explained_share(m: Match) -> Fraction:
    """The part of the line's billed amount the ledger's calls explain, between 0 and 1."""
    ledger = m.attributed
    if not ledger.buckets:
        return Fraction(0)
    billed = m.billed
    share: Fraction
    if m.table_usd is not None and m.table_usd > 0:
        share = Fraction(ledger.cost) / Fraction(m.table_usd)
    elif (
        billed is not None
        and billed.tokens is not None
        and billed.tokens.input + billed.tokens.output
    ):
        tokens = billed.tokens
        share = Fraction(ledger.input_tokens + ledger.output_tokens, tokens.input + tokens.output)
    elif billed is not None and billed.cost and ledger.cost > 0:
        share = Fraction(ledger.cost) / Fraction(billed.cost)
    else:
        share = Fraction(1)
    return min(max(share, Fraction(0)), Fraction(1))


@dataclass(slots=True)
class Settlement:
    """The settled amounts, and the providers that could not be settled (their bill has no
    cost, only usage)."""

    records: list[SettledRecord] = field(default_factory=list)
    invoices: dict[str, Decimal] = field(default_factory=dict)
    """Each settled provider's invoice total over the period (what its records add up to)."""
    unsettled: list[str] = field(default_factory=list)


def settle(matches: Sequence[Match], cost_providers: set[str], unit: Decimal = CENT) -> Settlement:
    """Settle every provider in ``cost_providers`` (those whose bill carries costs) in whole
    ``unit`` (one of ``UNITS``)."""
    if unit not in UNITS:
        raise ValueError(f"settle in a cent or a finer power of ten, not {unit}")
    per_unit = 1 / Fraction(unit)
    result = Settlement()
    providers = sorted({m.provider for m in matches} | cost_providers)
    for provider in providers:
        lines = [m for m in matches if m.provider == provider]
        if provider not in cost_providers:
            result.unsettled.append(provider)
            continue
        billed = [Fraction(m.billed_usd or 0) for m in lines]
        total = sum(billed, Fraction(0))
        invoice = Fraction(round_half_up(total * 100), 100)
        result.invoices[provider] = Decimal(invoice.numerator) / invoice.denominator
        # The invoice's rounding is shared by the lines in proportion to their size, so the
        # quotas add up to the invoice exactly.
        size = sum((abs(b) for b in billed), Fraction(0))
        quotas = [(b + (invoice - total) * abs(b) / size if size else b) * per_unit for b in billed]
        units = apportion(int(invoice * per_unit), quotas)
        for m, line_units in zip(lines, units, strict=True):
            result.records.extend(_settle_line(m, line_units, unit))
    return result


def _weights(buckets: Sequence[TagBucket]) -> list[Fraction]:
    costs = [Fraction(b.cost_usd) for b in buckets]
    if sum(costs) > 0:
        return costs
    tokens = [Fraction(b.input_tokens + b.output_tokens) for b in buckets]
    if sum(tokens) > 0:
        return tokens
    return [Fraction(1) for _ in buckets]


def _settle_line(m: Match, line_units: int, unit: Decimal) -> list[SettledRecord]:
    buckets = sorted(m.attributed.buckets, key=lambda b: b.tags)
    explained = round_half_up(line_units * explained_share(m)) if buckets else 0
    records = []
    if buckets:
        weights = _weights(buckets)
        total = sum(weights, Fraction(0))
        shares = apportion(explained, [explained * w / total for w in weights])
        records += [
            _record(m, share * unit, bucket) for bucket, share in zip(buckets, shares, strict=True)
        ]
    rest = line_units - explained
    if rest or (m.billed is not None and not buckets):
        records.append(_record(m, rest * unit, None))
    return records


def _record(m: Match, amount: Decimal, bucket: TagBucket | None) -> SettledRecord:
    """The settled amount of ``bucket``, or of the line's ``(unattributed)`` rest."""
    midnight = datetime(m.day.year, m.day.month, m.day.day, tzinfo=UTC)
    return SettledRecord(
        day=m.day.isoformat(),
        time_unix_nano=to_unix_nano(midnight),
        provider=m.provider,
        model=m.model,
        project=m.project,
        tags=bucket.tags if bucket else "{}",
        attributed=bucket is not None,
        settled_usd=amount,
        estimated_usd=bucket.cost_usd if bucket else Decimal(0),
        calls=bucket.calls if bucket else 0,
        input_tokens=bucket.input_tokens if bucket else 0,
        output_tokens=bucket.output_tokens if bucket else 0,
    )
