"""User prices from a YAML file: fine-tunes, self-hosted models and negotiated discounts.

```yaml
models:
  - model: acme-support-ft-2          # exact model id (case-insensitive)
    input_mtok: 0.50                  # USD per million tokens
    output_mtok: 1.50
    cache_read_mtok: 0.05             # optional, default: the input price
    cache_write_mtok: 0.625           # optional, default: the input price
    cache_write_1h_mtok: 1.00         # optional, needs cache_write_mtok
  - prefix: "ft:gpt-4o-mini"          # every model id starting with this
    provider: openai                  # optional: only calls to this provider
    input_mtok: 0.30
    output_mtok: 1.20
  - provider: azure.ai.openai         # no model: every model of the provider
    discount_percent: 15              # the price-table price, 15% off
```

Rules are tried in file order; the first that matches a call prices it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from spanledger.processor.pricing.price_set import PriceSet, prices_per_million
from spanledger.processor.pricing.provider_ids import genai_prices_provider
from spanledger.processor.usage import normalize_provider

PRICE_KEYS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
)
MATCH_KEYS = ("model", "prefix", "provider")
RULE_KEYS = (*MATCH_KEYS, *PRICE_KEYS, "discount_percent")
MAX_PRICE_MTOK = Decimal(100_000)


@dataclass(frozen=True)
class OverrideRule:
    """One entry of the overrides file."""

    line: int
    model: str | None = None
    prefix: str | None = None
    provider: str | None = None
    prices: PriceSet | None = None
    """The rule's own prices; None for a discount rule."""
    discount: Decimal | None = None
    """Fraction taken off the price-table price (0.15 for 15%)."""

    def matches(self, provider: str | None, model: str) -> bool:
        """Whether the rule applies to ``model`` called at (normalised) ``provider``."""
        lowered = model.lower()
        if self.model is not None and lowered != self.model:
            return False
        if self.prefix is not None and not lowered.startswith(self.prefix):
            return False
        return self.provider is None or _same_provider(self.provider, provider)

    @property
    def label(self) -> str:
        """How the rule is named in costs: its model, prefix or provider."""
        return self.model or (f"{self.prefix}*" if self.prefix else f"{self.provider}/*")


def _same_provider(rule_provider: str, provider: str | None) -> bool:
    if provider is None:
        return False
    if rule_provider == provider:
        return True
    mapped = genai_prices_provider(provider)
    return mapped is not None and mapped == genai_prices_provider(rule_provider)


class OverridesError(ValueError):
    """The overrides file is unreadable or malformed; ``problems`` lists each with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_overrides(path: str | Path) -> list[OverrideRule]:
    """Read and check the overrides file; raise ``OverridesError`` listing every problem."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverridesError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise OverridesError([f"{source}: not valid YAML: {exc}"]) from None
    problems: list[str] = []
    rules = _rules(root, problems)
    if problems:
        raise OverridesError([f"{source}: {problem}" for problem in problems])
    return rules


def _rules(root: yaml.Node | None, problems: list[str]) -> list[OverrideRule]:
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        problems.append(f"line {_line(root)}: expected a mapping with a 'models' list")
        return []
    entries: yaml.Node | None = None
    for key_node, value_node in root.value:
        if key_node.value == "models":
            entries = value_node
        else:
            problems.append(
                f"line {_line(key_node)}: unknown key {key_node.value!r} (known: models)"
            )
    if entries is None or (
        isinstance(entries, yaml.ScalarNode) and entries.value in ("", "null", "~")
    ):
        return []
    if not isinstance(entries, yaml.SequenceNode):
        problems.append(f"line {_line(entries)}: models: expected a list of model entries")
        return []
    rules = []
    for index, node in enumerate(entries.value):
        rule = _rule(node, f"models[{index}]", problems)
        if rule is not None:
            rules.append(rule)
    return rules


def _rule(node: yaml.Node, where: str, problems: list[str]) -> OverrideRule | None:
    place = f"line {_line(node)}: {where}"
    if not isinstance(node, yaml.MappingNode):
        problems.append(f"{place}: expected a mapping such as {{model: ..., input_mtok: ...}}")
        return None
    values: dict[str, Any] = {}
    count_before = len(problems)
    for key_node, value_node in node.value:
        key = key_node.value
        key_place = f"line {_line(key_node)}: {where}.{key}"
        if key not in RULE_KEYS:
            problems.append(f"{key_place}: unknown key (known: {', '.join(RULE_KEYS)})")
        elif not isinstance(value_node, yaml.ScalarNode):
            problems.append(f"{key_place}: expected a single value")
        elif key in MATCH_KEYS:
            text = str(value_node.value).strip()
            if not text:
                problems.append(f"{key_place}: must not be empty")
            values[key] = text
        else:
            amount = _amount(value_node.value)
            if amount is None:
                problems.append(f"{key_place}: expected a number, got {value_node.value!r}")
            elif key == "discount_percent" and not Decimal(0) <= amount <= Decimal(100):
                problems.append(f"{key_place}: must be between 0 and 100")
            elif key != "discount_percent" and not Decimal(0) <= amount <= MAX_PRICE_MTOK:
                problems.append(f"{key_place}: must be between 0 and {MAX_PRICE_MTOK} USD")
            values[key] = amount
    if "model" in values and "prefix" in values:
        problems.append(f"{place}: give either model or prefix, not both")
    if not any(key in values for key in MATCH_KEYS):
        problems.append(f"{place}: needs model, prefix or provider to say which calls it prices")
    prices = {key: values[key] for key in PRICE_KEYS if key in values}
    discount = values.get("discount_percent")
    if discount is not None and prices:
        problems.append(f"{place}: give either prices or discount_percent, not both")
    elif discount is None:
        for required in ("input_mtok", "output_mtok"):
            if required not in prices:
                problems.append(f"{place}: needs {required} (or discount_percent)")
        if "cache_write_1h_mtok" in prices and "cache_write_mtok" not in prices:
            problems.append(f"{place}: cache_write_1h_mtok needs cache_write_mtok")
    if len(problems) > count_before:
        return None
    provider = values.get("provider")
    return OverrideRule(
        line=_line(node),
        model=values["model"].lower() if "model" in values else None,
        prefix=values["prefix"].lower() if "prefix" in values else None,
        provider=normalize_provider(provider) if provider else None,
        prices=prices_per_million(prices) if discount is None else None,
        discount=discount / 100 if discount is not None else None,
    )


def _amount(text: object) -> Decimal | None:
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1
