"""Match the bill with the ledger per UTC day x provider x model (x project) and say why they
differ.

The gap is ``billed - attributed`` and splits exactly into two parts:

- the **token gap**: what the tokens the two sides disagree on cost at the price table's rates
  (``table price of the billed tokens - attributed``). More billed tokens means calls the
  instrumentation never saw; more ledger tokens means calls the bill does not show.
- the **price gap**: what the bill charges for its tokens beyond the price table
  (``billed - table price of the billed tokens``): the table is off for that model (a changed
  price, a batch or priority tier, a discount or credit).

When both sides count the same tokens, the table price of the billed tokens is exactly what the
ledger attributed, so the whole gap is a price gap. Otherwise the tokens in excess are priced at
the model's base rates from the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook
from spanledger.processor.reconcile.bill import (
    COST,
    USAGE,
    Bill,
    BillLine,
    Tokens,
    model_key,
    project_key,
)
from spanledger.processor.report.periods import to_unix_nano
from spanledger.processor.sinks.ledger.reconciled import TagBucket
from spanledger.semconv import STATUS_PRICED, UNTAGGED

ALL_PROJECTS = ""
"""The project of every row when matching is not per project."""
_HUNDRED = Decimal(100)
_PROBE = 1000
_MICRO = Decimal("0.000001")

MATCH = "match"
UNSEEN_CALLS = "unseen_calls"
NOT_IN_LEDGER = "not_in_ledger"
EXTRA_IN_LEDGER = "extra_in_ledger"
NOT_BILLED = "not_billed"
PRICE = "price"
UNPRICED = "unpriced"
COST_ONLY = "cost"
CAUSES = {
    MATCH: "tokens and cost agree",
    NOT_IN_LEDGER: "billed, but the ledger has no call of this model that day: calls made "
    "outside the instrumented code (another service, a script, a key used elsewhere)",
    UNSEEN_CALLS: "the bill counts more tokens than the ledger: calls made outside the "
    "instrumented code, or spans lost before they reached the processor",
    EXTRA_IN_LEDGER: "the ledger counts more tokens than the bill: calls the bill does not "
    "show (another organization's key, a day boundary, a bill not yet final)",
    NOT_BILLED: "the ledger priced calls that the bill does not show at all",
    PRICE: "same tokens, different cost: the price table is off for this model (a changed "
    "price, a batch or priority tier, a discount)",
    UNPRICED: "the ledger has calls of this model without a price (the model is not in the "
    "price table; see `spanledger price`)",
    COST_ONLY: "the bill gives no token counts here and its cost differs from the ledger's",
}


@dataclass(slots=True)
class Billed:
    """The bill's figures for one key."""

    models: set[str] = field(default_factory=set)
    operation: str = "chat"
    tokens: Tokens | None = None
    requests: int | None = None
    cost: Decimal | None = None

    def add(self, line: BillLine) -> None:
        self.models.add(line.model)
        if line.kind == USAGE and line.tokens is not None:
            self.operation = line.operation
            if self.tokens is None:
                self.tokens = Tokens()
            self.tokens.add(line.tokens)
            if line.requests is not None:
                self.requests = (self.requests or 0) + line.requests
        elif line.kind == COST and line.cost is not None:
            self.cost = (self.cost or Decimal(0)) + line.cost


@dataclass(slots=True)
class Attributed:
    """The ledger's figures for one key, and its tag buckets."""

    models: set[str] = field(default_factory=set)
    buckets: list[TagBucket] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, bucket: TagBucket) -> None:
        self.models.add(bucket.model)
        self.buckets.append(bucket)
        self.cost += bucket.cost_usd
        self.calls += bucket.calls
        self.unpriced_calls += bucket.unpriced_calls
        self.input_tokens += bucket.input_tokens
        self.output_tokens += bucket.output_tokens
        self.cache_read_tokens += bucket.cache_read_tokens
        self.cache_write_tokens += bucket.cache_write_tokens


@dataclass(slots=True)
class Match:
    """One day x provider x model (x project): both sides, the gap and its causes."""

    day: date
    provider: str
    model: str
    project: str
    billed: Billed | None
    attributed: Attributed
    table_usd: Decimal | None
    """The price table's cost of the billed tokens (None when it cannot be told)."""
    causes: list[str]
    explanation: str

    @property
    def billed_usd(self) -> Decimal | None:
        return self.billed.cost if self.billed is not None else None

    @property
    def reference_usd(self) -> Decimal | None:
        """What the bill charges: its cost, else (usage-only bills) the table price of its
        tokens; zero for calls the bill does not show."""
        if self.billed is None:
            return Decimal(0)
        return self.billed.cost if self.billed.cost is not None else self.table_usd

    @property
    def gap_usd(self) -> Decimal | None:
        billed = self.reference_usd
        return None if billed is None else billed - self.attributed.cost

    @property
    def token_gap_usd(self) -> Decimal | None:
        return None if self.table_usd is None else self.table_usd - self.attributed.cost

    @property
    def price_gap_usd(self) -> Decimal | None:
        billed = self.billed_usd
        return None if billed is None or self.table_usd is None else billed - self.table_usd

    @property
    def cause(self) -> str:
        return "+".join(self.causes)

    def row(self, by_project: bool) -> dict[str, object]:
        """The report row; amounts stay exact ``Decimal``."""
        billed = self.billed
        tokens = billed.tokens if billed is not None else None
        ledger = self.attributed
        row: dict[str, object] = {
            "day": self.day.isoformat(),
            "provider": self.provider,
            "model": self.model,
        }
        if by_project:
            row["project"] = self.project
        gap = self.gap_usd
        reference = self.reference_usd
        row |= {
            "billed_usd": self.billed_usd,
            "attributed_usd": ledger.cost,
            "gap_usd": gap,
            "gap_pct": percent(gap, reference),
            "token_gap_usd": self.token_gap_usd,
            "price_gap_usd": self.price_gap_usd,
            "billed_input_tokens": tokens.input if tokens else None,
            "input_tokens": ledger.input_tokens,
            "billed_output_tokens": tokens.output if tokens else None,
            "output_tokens": ledger.output_tokens,
            "billed_requests": billed.requests if billed else None,
            "calls": ledger.calls,
            "unpriced_calls": ledger.unpriced_calls,
            "cause": self.cause,
            "explanation": self.explanation,
        }
        return row


def percent(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    """``part / whole`` in percent to 0.1; None when undefined."""
    if part is None or whole is None or not whole:
        return None
    value = (part / whole * _HUNDRED).quantize(Decimal("0.1"))
    return abs(value) if value == 0 else value


def bucket_project(bucket: TagBucket, project_tag: str | None) -> str:
    if project_tag is None:
        return ALL_PROJECTS
    try:
        tags = json.loads(bucket.tags)
    except ValueError:
        return UNTAGGED
    value = tags.get(project_tag) if isinstance(tags, dict) else None
    return str(value) if value else UNTAGGED


def match(
    bill: Bill,
    buckets: Sequence[TagBucket],
    book: PriceBook,
    *,
    project_tag: str | None = None,
    tolerance_pct: Decimal = Decimal("0.5"),
) -> list[Match]:
    """One ``Match`` per key either side knows, ordered by day, provider, model, project.

    ``tolerance_pct`` is how far (in percent of the billed cost) a cost may be off before it
    counts as a price or cost gap; token counts must agree exactly.
    """
    by_project = project_tag is not None
    billed: dict[tuple[date, str, str, str], Billed] = {}
    for line in bill.lines:
        project = project_key(line.project) if by_project else ALL_PROJECTS
        key = (line.day, line.provider, model_key(line.model), project)
        billed.setdefault(key, Billed()).add(line)
    attributed: dict[tuple[date, str, str, str], Attributed] = {}
    for bucket in buckets:
        day = date.fromisoformat(bucket.day)
        key = (day, bucket.provider, model_key(bucket.model), bucket_project(bucket, project_tag))
        attributed.setdefault(key, Attributed()).add(bucket)
    found = []
    for key in sorted(set(billed) | set(attributed)):
        day, provider, _model, project = key
        bill_side = billed.get(key)
        ledger_side = attributed.get(key) or Attributed()
        names = sorted(bill_side.models) if bill_side else sorted(ledger_side.models)
        model = names[0]
        table = _table_price(book, day, provider, bill_side, ledger_side)
        causes, explanation = _causes(bill_side, ledger_side, table, tolerance_pct / _HUNDRED)
        found.append(
            Match(day, provider, model, project, bill_side, ledger_side, table, causes, explanation)
        )
    return found


def _same_tokens(tokens: Tokens, ledger: Attributed) -> bool:
    if (tokens.input, tokens.output) != (ledger.input_tokens, ledger.output_tokens):
        return False
    if tokens.cache_read is not None and tokens.cache_read != ledger.cache_read_tokens:
        return False
    writes = tokens.cache_writes
    return writes is None or writes == ledger.cache_write_tokens


def _table_price(
    book: PriceBook, day: date, provider: str, billed: Billed | None, ledger: Attributed
) -> Decimal | None:
    """The price table's cost of the billed tokens: the ledger's own cost when the tokens
    agree, else the ledger's cost plus the difference at the model's base rates."""
    if billed is None or billed.tokens is None or ledger.unpriced_calls:
        return None
    tokens = billed.tokens
    if _same_tokens(tokens, ledger):
        return ledger.cost
    rates = None
    for model in [*sorted(billed.models), *sorted(ledger.models)]:
        rates = _unit_rates(book, day, provider, model, billed.operation)
        if rates is not None:
            break
    if rates is None:
        return None
    read = tokens.cache_read if tokens.cache_read is not None else ledger.cache_read_tokens
    writes = tokens.cache_writes
    writes = writes if writes is not None else ledger.cache_write_tokens
    uncached = tokens.input - read - writes
    ledger_uncached = ledger.input_tokens - ledger.cache_read_tokens - ledger.cache_write_tokens
    delta = (
        (uncached - ledger_uncached) * rates[0]
        + (read - ledger.cache_read_tokens) * rates[1]
        + (writes - ledger.cache_write_tokens) * rates[2]
        + (tokens.output - ledger.output_tokens) * rates[3]
    )
    return ledger.cost + delta


def _unit_rates(
    book: PriceBook, day: date, provider: str, model: str, operation: str
) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
    """USD per uncached input, cache-read, cache-write and output token at the base tier: what
    one more token of each kind adds to a small call's table price."""
    when = to_unix_nano(_midnight(day))
    output = 0 if operation == "embeddings" else _PROBE

    def total(**extra: int) -> Decimal | None:
        counts = {"input_tokens": _PROBE, "output_tokens": output}
        for name, value in extra.items():
            counts[name] = counts.get(name, 0) + value
        if "cache_read_tokens" in extra or "cache_write_tokens" in extra:
            counts["input_tokens"] += _PROBE
        usage = Usage(
            operation=operation,
            provider=provider,
            request_model=model,
            response_model=model,
            **counts,
        )
        cost = book.price(usage, when)
        if cost.status != STATUS_PRICED or cost.source == "provider_reported":
            return None
        return cost.total

    base = total()
    steps = [
        total(input_tokens=_PROBE),
        total(cache_read_tokens=_PROBE),
        total(cache_write_tokens=_PROBE),
        total(output_tokens=_PROBE) if output else base,
    ]
    if base is None or any(step is None for step in steps):
        return None
    unit = Decimal(_PROBE)
    rates = [(step - base) / unit for step in steps if step is not None]
    return rates[0], rates[1], rates[2], rates[3]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _money(value: Decimal) -> str:
    return f"${value.quantize(_MICRO):,f}"


def _causes(
    billed: Billed | None, ledger: Attributed, table: Decimal | None, tolerance: Decimal
) -> tuple[list[str], str]:
    causes: list[str] = []
    notes: list[str] = []
    if billed is None:
        causes.append(NOT_BILLED)
        notes.append(
            f"spanledger priced {ledger.calls:,} call(s) for {_money(ledger.cost)} that the bill "
            "does not show"
        )
        return causes, "; ".join(notes)
    cost = billed.cost
    tokens = billed.tokens
    if ledger.calls == 0:
        causes.append(NOT_IN_LEDGER)
        what = f"{billed.requests:,} request(s)" if billed.requests is not None else "usage"
        amount = f" for {_money(cost)}" if cost is not None else ""
        notes.append(f"billed {what}{amount} that spanledger never saw")
    elif tokens is not None:
        more_input = tokens.input - ledger.input_tokens
        more_output = tokens.output - ledger.output_tokens
        if more_input > 0 or more_output > 0:
            causes.append(UNSEEN_CALLS)
            calls = (
                f" ({billed.requests:,} requests against {ledger.calls:,} calls)"
                if billed.requests is not None
                else ""
            )
            notes.append(
                f"the bill counts {max(more_input, 0):,} input and {max(more_output, 0):,} output "
                f"tokens more than the ledger{calls}: calls made outside the instrumented code"
            )
        if more_input < 0 or more_output < 0:
            causes.append(EXTRA_IN_LEDGER)
            notes.append(
                f"the ledger counts {max(-more_input, 0):,} input and {max(-more_output, 0):,} "
                "output tokens more than the bill"
            )
    if ledger.unpriced_calls:
        causes.append(UNPRICED)
        notes.append(
            f"{ledger.unpriced_calls:,} ledger call(s) have no price (model not in the table)"
        )
    if cost is not None and table is not None and ledger.calls:
        if _material(cost - table, max(abs(cost), abs(table)), tolerance):
            causes.append(PRICE)
            notes.append(
                f"the bill charges {_money(cost)} where the price table gives {_money(table)} "
                f"for the billed tokens ({percent(cost - table, table) or 0:+}%): the price "
                "table is off for this model"
            )
    elif (
        cost is not None
        and tokens is None
        and ledger.calls
        and not ledger.unpriced_calls
        and _material(cost - ledger.cost, max(abs(cost), abs(ledger.cost)), tolerance)
    ):
        causes.append(COST_ONLY)
        notes.append(
            f"the bill charges {_money(cost)} against {_money(ledger.cost)} attributed; it "
            "gives no token counts to tell calls from prices"
        )
    if not causes:
        causes.append(MATCH)
    return causes, "; ".join(notes) or CAUSES[MATCH]


def _material(difference: Decimal, scale: Decimal, tolerance: Decimal) -> bool:
    return abs(difference) > max(scale * tolerance, _MICRO)


@dataclass(slots=True)
class ModelTotal:
    """A provider and model over the whole period."""

    provider: str
    model: str
    billed_usd: Decimal
    attributed_usd: Decimal
    causes: list[str]

    @property
    def gap_usd(self) -> Decimal:
        return self.billed_usd - self.attributed_usd

    @property
    def gap_pct(self) -> Decimal | None:
        """The gap in percent of the billed cost; 100 when only the ledger has cost."""
        if not self.billed_usd:
            return Decimal(100) if self.attributed_usd else None
        return percent(self.gap_usd, self.billed_usd)


def model_totals(matches: Sequence[Match]) -> list[ModelTotal]:
    """The period's totals per provider and model (billed: the bill's cost, else the table
    price of its tokens)."""
    totals: dict[tuple[str, str], ModelTotal] = {}
    for m in matches:
        key = (m.provider, model_key(m.model))
        total = totals.setdefault(key, ModelTotal(m.provider, m.model, Decimal(0), Decimal(0), []))
        total.billed_usd += m.reference_usd or Decimal(0)
        total.attributed_usd += m.attributed.cost
        for cause in m.causes:
            if cause != MATCH and cause not in total.causes:
                total.causes.append(cause)
    return [totals[key] for key in sorted(totals)]
