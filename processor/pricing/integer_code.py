"""Straight-line integer code pricing one ``Usage``, shared by every price set of one shape.

A price set's integer path reads the counts it prices, carves the leaf counts, multiplies
each by an integer rate at a common power-of-ten scale and sums the four cost components.
The code depends only on the price set's *shape* (which counts, how they nest, which
component each term feeds, how many tiers); rates, tier starts, scale and name are arguments
of a factory that returns the pricing function. Price sets of one shape share one code
object, which the interpreter specialises once however many models use it.

Two forms are generated from one shape:

- ``price``: ``integer_price(usage, name) -> TablePrice | None``; raises through
  ``negative``/``invalid`` on counts genai-prices refuses, None when the sum has more digits
  than the Decimal precision.
- ``quote``: ``quote(usage, start_time_unix_nano, record) -> TablePrice | str``, one function
  per shape; what differs between the price sets of that shape (name, rates, scale...) is in
  ``record``, a plain tuple whose first item is the function itself (see ``QuoteRecord``). A
  call that starts before the price set applies goes to ``older``, the record of the price set
  before it; every other case it does not price itself (a service tier, a refused count, a
  long sum, no start time) goes to the entry's ``slow`` path, which gives the same answer the
  long way.

A record keeps everything one quote reads in one tuple of shared values: a table of
thousands of models costs a quote a few memory lines of its own, not one per closure cell.

Decimals are built from the scaled integers by one exact multiplication each (a power of
ten only moves the exponent); the total of one or two nonzero parts is their Decimal sum,
exact because it is below the precision limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Carve = tuple[tuple[int, int, tuple[int, ...]], ...]
"""(leaf slot, count index, slots of the finer leaves inside it) per carved count."""

IntegerTerm = tuple[int, int, tuple[tuple[int, int], ...], int]
"""(leaf slot or -1 for the per-request fee, rate, ((tier start, tier rate), ...), component)."""

COMPONENTS = 4

QuoteRecord = tuple
"""``(quote, NAME, BITS, SCALE, <rates and tier bounds>, <Decimal rates>, FROM, older, slow)``,
less the items its quote function never reads (``quote_source`` says which it reads).

Called as ``record[0](usage, start_time_unix_nano, record)``. The rates and tier bounds follow
``factory_arguments``, the Decimal rates ``decimal_terms``; a price set pricing nothing a
``Usage`` counts has its constant zero price there instead (``RESULT``). ``FROM`` is the start
time (ns) from which the price set applies, ``older`` the record of the price set before,
``slow(usage, start)`` prices what the quote hands on. What every call reads comes first, what
few calls read last.
"""

HEAD = ("NAME", "BITS", "SCALE")
"""The names of a record's items after the quote function, before the rates."""

TAIL = ("FROM", "older", "slow")
"""The names of a record's last items."""


@dataclass(frozen=True, slots=True)
class Guards:
    """Which calls a quote function hands on before pricing them itself."""

    variants: bool = False
    """Calls naming a service tier go to ``slow`` (the entry has tier variants)."""
    dated: bool = False
    """Calls that start before ``FROM`` go to ``older``, the record of the price set before."""
    oldest: bool = False
    """Calls without a start time go to ``slow``, which prices them as of now (the oldest of
    dated price sets)."""


NO_GUARDS = Guards()


def factory_arguments(terms: Sequence[IntegerTerm]) -> list[int]:
    """The rates and tier bounds of ``terms``, in the order of the factory's parameters."""
    arguments: list[int] = []
    for _, rate, tiers, _ in terms:
        arguments.append(rate)
        for start, tier_rate in tiers:
            arguments += (start, tier_rate)
    return arguments


def decimal_terms(terms: Sequence[IntegerTerm]) -> list[int]:
    """Terms the quote form multiplies in Decimal directly: each alone in its component, on a
    leaf count, without tiers. Their Decimal rates (``R<index>``) follow the other arguments
    of the quote form's factory, in this order.
    """
    alone = [sum(1 for *_, component in terms if component == term[3]) == 1 for term in terms]
    return [
        index
        for index, (slot, _, tiers, _) in enumerate(terms)
        if alone[index] and slot >= 0 and not tiers
    ]


def count_bits(terms: Sequence[IntegerTerm], limit: int) -> int:
    """The most bits every count may have for the sum of ``terms`` to stay below ``limit``.

    Each leaf count is at most the count it is carved from, each rate at most its highest
    tier's; the per-request fee counts once. 0 when even one-bit counts could reach it.
    """
    highest = [max(rate, *(tier_rate for _, tier_rate in tiers), 0) for _, rate, tiers, _ in terms]
    fees = sum(rate for rate, (slot, *_) in zip(highest, terms, strict=True) if slot < 0)
    rates = sum(rate for rate, (slot, *_) in zip(highest, terms, strict=True) if slot >= 0)
    room = limit - 1 - fees
    if room < 1:
        return 0
    # The largest bits with rates * (2**bits - 1) <= room.
    return (room // max(rates, 1) + 1).bit_length() - 1


def factory_source(
    carve: Carve,
    terms: Sequence[IntegerTerm],
    tiered: bool,
    count_fields: Sequence[tuple[str, ...]],
) -> str:
    """Source of ``build(<rates and tier bounds>, SCALE)``, which returns the ``price`` form."""
    parameters = [*_rate_names(terms), "SCALE"]
    inner = ["    def integer_price(usage, name):"]
    inner += [f"        {line}" for line in _body(carve, terms, tiered, count_fields, False)]
    return "\n".join([f"def build({', '.join(parameters)}):", *inner, "    return integer_price"])


def quote_source(
    carve: Carve,
    terms: Sequence[IntegerTerm],
    tiered: bool,
    count_fields: Sequence[tuple[str, ...]],
    guards: Guards = NO_GUARDS,
) -> tuple[str, tuple[str, ...]]:
    """Source of ``quote(usage, start, q)``, the ``quote`` form, and the names of the items
    after ``q[0]`` that it reads from its record ``q``, in their order in the record.

    ``guards`` say which calls it hands on before pricing.
    """
    names = [*HEAD, *record_rate_names(terms)]
    if not terms:
        names.append("RESULT")
    names += TAIL
    lines = []
    if guards.variants:
        lines += ["if usage.service_tier:", "    return slow(usage, start)"]
    if guards.dated:
        lines += ["if start < FROM:", "    return older[0](usage, start, older)"]
    if guards.oldest:
        lines += ["if start <= 0:", "    return slow(usage, start)"]
    if terms:
        lines += _body(carve, terms, tiered, count_fields, True)
    else:
        # Nothing a Usage counts is priced: every call costs the same zero, kept in the record.
        lines.append("return RESULT")
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    read = {found for line in lines for found in pattern.findall(line)}
    names = [name for name in names if name in read]
    where = {name: f"q[{index}]" for index, name in enumerate(names, start=1)}
    body = [pattern.sub(lambda found: where[found.group(1)], line) for line in lines]
    source = "\n".join(["def quote(usage, start, q):", *(f"    {line}" for line in body)])
    return source, tuple(names)


def _rate_names(terms: Sequence[IntegerTerm]) -> list[str]:
    """The names of the rates and tier bounds, in ``factory_arguments`` order."""
    names = []
    for index, (_, _, tiers, _) in enumerate(terms):
        names.append(f"r{index}")
        for tier in range(len(tiers)):
            names += (f"b{index}_{tier}", f"t{index}_{tier}")
    return names


def record_rate_names(terms: Sequence[IntegerTerm]) -> list[str]:
    """The names of a quote record's rates and tier bounds, then of its Decimal rates."""
    return [*_rate_names(terms), *(f"R{index}" for index in decimal_terms(terms))]


def _body(
    carve: Carve,
    terms: Sequence[IntegerTerm],
    tiered: bool,
    count_fields: Sequence[tuple[str, ...]],
    quote: bool,
) -> list[str]:
    fallback = "return slow(usage, start)"
    lines = []
    needed = sorted({source for _, source, _ in carve} | ({0} if tiered else set()))
    for index in needed:
        fields = " + ".join(f"usage.{name}" for name in count_fields[index])
        lines.append(f"c{index} = {fields}")
    raw = [source for _, source, finer in carve if not finer]
    if quote and needed:
        # Or-ed ints shifted by BITS are zero exactly when every one is in [0, 2**BITS):
        # no count is negative and no sum reaches the Decimal precision (see ``count_bits``).
        lines.append(f"if ({' | '.join(f'c{source}' for source in needed)}) >> BITS:")
        lines.append(f"    {fallback}")
    elif raw:
        # An int or-ed with others is negative exactly when one of them is.
        counts = ", ".join(f"c{source}" for source in raw)
        lines.append(f"if ({' | '.join(f'c{source}' for source in raw)}) < 0:")
        lines.append(f"    negative({counts})")
    leaf_names: dict[int, str] = {}
    for slot, source, finer in carve:
        if finer:
            leaf_names[slot] = f"l{slot}"
            lines.append(f"l{slot} = c{source}" + "".join(f" - {leaf_names[o]}" for o in finer))
            lines.append(f"if l{slot} < 0:")
            lines.append(f"    {fallback if quote else f'invalid({source}, c{source})'}")
        else:
            leaf_names[slot] = f"c{source}"
    sums: list[list[str]] = [[] for _ in range(COMPONENTS)]
    for index, (slot, _, tiers, component) in enumerate(terms):
        chosen = f"r{index}"
        for tier in range(len(tiers)):
            chosen = f"(t{index}_{tier} if c0 > b{index}_{tier} else {chosen})"
        sums[component].append(chosen if slot < 0 else f"{chosen} * {leaf_names[slot]}")
    used = [index for index, parts in enumerate(sums) if parts]
    name = "NAME" if quote else "name"
    parts = [f"d{index}" if index in used else "ZERO" for index in range(COMPONENTS)]
    if not quote:
        lines += [f"s{index} = {' + '.join(sums[index])}" for index in used]
        lines += [f"total = {' + '.join(f's{index}' for index in used) or '0'}"]
        lines += ["if total >= LIMIT:", "    return None"]
        lines += [f"d{index} = SCALE * s{index} if s{index} else ZERO" for index in used]
        total = _total(used, "total", {index: f"s{index}" for index in used})
        return [*lines, f"return new(TablePrice, ({total}, {', '.join(parts)}, {name}))"]
    # A component of one term on a leaf count is that count times the Decimal rate; the
    # others are summed in integers and scaled once.
    direct = {terms[index][3]: index for index in decimal_terms(terms)}
    amounts: dict[int, str] = {}
    nonzero: dict[int, str] = {}
    for component in used:
        if component in direct:
            index = direct[component]
            leaf = leaf_names[terms[index][0]]
            lines.append(f"d{component} = R{index} * {leaf} if {leaf} else ZERO")
            amounts[component], nonzero[component] = f"r{index} * {leaf}", leaf
        else:
            lines.append(f"s{component} = {' + '.join(sums[component])}")
            lines.append(f"d{component} = SCALE * s{component} if s{component} else ZERO")
            amounts[component] = nonzero[component] = f"s{component}"
    total = _total(used, f"({' + '.join(amounts[index] for index in used)})", nonzero)
    return [*lines, f"return new(TablePrice, ({total}, {', '.join(parts)}, {name}))"]


def _total(used: list[int], total: str, nonzero: dict[int, str]) -> str:
    """The total as a Decimal: the sum of at most two parts, else the scaled integer ``total``.

    ``nonzero[component]`` is an expression that is zero exactly when the component is.
    """
    if not used:
        return "ZERO"
    if len(used) == 1:
        return f"d{used[0]}"
    first, second, *rest = used
    pair = f"d{first} + d{second}"
    if not rest:
        return pair
    others = " or ".join(nonzero[index] for index in rest)
    return f"(SCALE * {total} if {others} else {pair})"
