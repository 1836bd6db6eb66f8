"""Exceptions spanledger raises into the application on purpose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class BudgetExceededError(Exception):
    """An LLM call was stopped before reaching the vendor: a budget or rate limit covering the
    current tags is exhausted (``SPANLEDGER_BUDGET_ENFORCE=1``).

    ``tags`` are the tags the call carried, ``reasons`` the processor's description of each
    exhausted limit, ``retry_after`` the seconds until the first of them resets (None when it
    does not reset by itself).
    """

    def __init__(
        self,
        message: str,
        *,
        tags: Mapping[str, str] | None = None,
        reasons: Sequence[Mapping[str, object]] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.tags = dict(tags or {})
        self.reasons = [dict(reason) for reason in reasons]
        self.retry_after = retry_after


class BudgetStatusUnavailable(BudgetExceededError):
    """Raised instead of calling the vendor when the budget status cannot be had and
    ``SPANLEDGER_BUDGET_FAIL=closed`` asks to fail closed."""
