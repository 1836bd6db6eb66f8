"""Budget enforcement before LLM calls, on with ``SPANLEDGER_BUDGET_ENFORCE=1``.

Every SDK instrumentation calls :func:`check_budget` (or ``await`` :func:`acheck_budget`) right
before it sends an inference request. With enforcement off it returns at once; with it on, it
asks the processor's budget status for the current tags and raises
``spanledger.BudgetExceededError`` instead of letting the request reach the vendor. Any other
fault is logged and the call goes ahead.
"""

from __future__ import annotations

import asyncio

from spanledger.errors import BudgetExceededError, BudgetStatusUnavailable

from .enforcement import (
    CACHE_ENV,
    ENDPOINT_ENV,
    ENFORCE_ENV,
    FAIL_ENV,
    TIMEOUT_ENV,
    TOKEN_ENV,
    Answer,
    BudgetClient,
    EnforcementConfig,
    Enforcer,
    current_call_tags,
    enabled,
    enforcer,
    logger,
)

__all__ = [
    "CACHE_ENV",
    "ENDPOINT_ENV",
    "ENFORCE_ENV",
    "FAIL_ENV",
    "TIMEOUT_ENV",
    "TOKEN_ENV",
    "Answer",
    "BudgetClient",
    "BudgetExceededError",
    "BudgetStatusUnavailable",
    "EnforcementConfig",
    "Enforcer",
    "acheck_budget",
    "check_budget",
]


def check_budget() -> None:
    """Raise ``BudgetExceededError`` when the current tags may not call an LLM now."""
    if not enabled():
        return
    try:
        active = enforcer()
        tags = current_call_tags()
        answer = active.client.cached(tags) or active.client.ask(tags)
    except Exception:
        logger.exception("spanledger budget check failed; the call goes ahead")
        return
    active.settle(tags, answer)


async def acheck_budget() -> None:
    """:func:`check_budget` for async clients: the processor is asked off the event loop."""
    if not enabled():
        return
    try:
        active = enforcer()
        tags = current_call_tags()
        answer = active.client.cached(tags)
        if answer is None:
            answer = await asyncio.to_thread(active.client.ask, tags)
    except Exception:
        logger.exception("spanledger budget check failed; the call goes ahead")
        return
    active.settle(tags, answer)
