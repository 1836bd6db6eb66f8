"""Budgets, alerts and limits: spend against USD limits per tag, threshold alerts (log line,
gauge, signed webhook), request-rate limits, and the status endpoint the instrumentation asks
before each LLM call when ``SPANLEDGER_BUDGET_ENFORCE=1``. See docs/budgets.md."""

from spanledger.processor.sinks.budgets.alerts import Alert, WebhookSender, sign
from spanledger.processor.sinks.budgets.config import (
    BudgetsConfig,
    RateLimit,
    SharedConfig,
    SpendLimit,
    StatusConfig,
    WebhookConfig,
)
from spanledger.processor.sinks.budgets.evaluation import BudgetBook, Decision
from spanledger.processor.sinks.budgets.rates import MemoryCounter, RateLimiter
from spanledger.processor.sinks.budgets.sink import UTILIZATION, BudgetSink
from spanledger.processor.sinks.budgets.status import CHECK_PATH, STATUS_PATH, StatusServer
from spanledger.processor.sinks.budgets.stores import MemoryStore, RedisStore, redis_client

__all__ = [
    "CHECK_PATH",
    "STATUS_PATH",
    "UTILIZATION",
    "Alert",
    "BudgetBook",
    "BudgetSink",
    "BudgetsConfig",
    "Decision",
    "MemoryCounter",
    "MemoryStore",
    "RateLimit",
    "RateLimiter",
    "RedisStore",
    "SharedConfig",
    "SpendLimit",
    "StatusConfig",
    "StatusServer",
    "WebhookConfig",
    "WebhookSender",
    "redis_client",
    "sign",
]
