"""The ``pricing`` section of the processor configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from spanledger.processor.pricing.overrides import OverridesError, load_overrides

MAX_MARKUP_PERCENT = 10_000.0


@dataclass
class PricingConfig:
    """How calls are priced.

    ``pricing: {overrides: prices.yaml, markup_percent: 0, prefer_reported: true}``
    """

    overrides: str | None = None
    """A YAML file of user prices (see ``spanledger.processor.pricing.overrides``)."""
    markup_percent: float = 0.0
    """Added to every priced call's cost to give ``spanledger.cost.billable``."""
    prefer_reported: bool = True
    """Use the provider-reported cost (``spanledger.cost.reported``) when a span carries one."""

    def problems(self) -> list[str]:
        """Everything wrong with this configuration, each with its place."""
        problems = []
        markup = self.markup_percent
        if isinstance(markup, bool) or not isinstance(markup, int | float):
            problems.append(f"markup_percent: expected a number, got {markup!r}")
        elif not math.isfinite(markup) or not 0 <= markup <= MAX_MARKUP_PERCENT:
            problems.append(f"markup_percent: must be between 0 and {MAX_MARKUP_PERCENT:g}")
        if self.overrides and Path(self.overrides).is_absolute():
            problems.extend(self.overrides_problems())
        return problems

    def overrides_problems(self) -> list[str]:
        """What is wrong with the overrides file, each with its line.

        ``problems()`` checks only an absolute path (the config loader makes a path written in
        a config file absolute first); ``PriceBook`` checks any path when it is built.
        """
        if not self.overrides:
            return []
        try:
            load_overrides(self.overrides)
        except OverridesError as exc:
            return [f"overrides: {problem}" for problem in exc.problems]
        return []
