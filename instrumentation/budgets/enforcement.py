"""The pre-call budget check: ask the processor whether the current tags may call an LLM.

| variable | default | meaning |
| --- | --- | --- |
| ``SPANLEDGER_BUDGET_ENFORCE`` | unset | ``1`` checks before every LLM call |
| ``SPANLEDGER_BUDGET_ENDPOINT`` | ``http://127.0.0.1:4319`` | the processor's budget status |
| ``SPANLEDGER_BUDGET_TOKEN`` | unset | bearer token, when the status endpoint asks for one |
| ``SPANLEDGER_BUDGET_FAIL`` | ``open`` | ``closed``: stop calls while no answer can be had |
| ``SPANLEDGER_BUDGET_TIMEOUT`` | ``0.5`` | seconds to wait for the processor |
| ``SPANLEDGER_BUDGET_CACHE_SECONDS`` | ``2`` | longest reuse of an answer for the same tags |

Answers are reused for the same tags for as long as the processor allows (``cache_for``: not
at all while a rate limit counts the tags' requests) and never longer than the cache setting.
An unreachable processor is not asked again for the cache period; meanwhile calls go ahead
(fail-open) or raise ``BudgetStatusUnavailable`` (fail-closed).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from spanledger.errors import BudgetExceededError, BudgetStatusUnavailable
from spanledger.instrumentation.genai.environment import EnvSetting

logger = logging.getLogger("spanledger.instrumentation.budgets")

ENFORCE_ENV = "SPANLEDGER_BUDGET_ENFORCE"
ENDPOINT_ENV = "SPANLEDGER_BUDGET_ENDPOINT"
TOKEN_ENV = "SPANLEDGER_BUDGET_TOKEN"
FAIL_ENV = "SPANLEDGER_BUDGET_FAIL"
TIMEOUT_ENV = "SPANLEDGER_BUDGET_TIMEOUT"
CACHE_ENV = "SPANLEDGER_BUDGET_CACHE_SECONDS"
DEFAULT_ENDPOINT = "http://127.0.0.1:4319"
CHECK_PATH = "/v1/budget/check"
_TRUE = {"1", "true", "yes", "on"}
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class EnforcementConfig:
    """The enforcement settings, from the environment (bad values are logged and defaulted)."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None
    fail_closed: bool = False
    timeout: float = 0.5
    cache_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnforcementConfig:
        fail = env.get(FAIL_ENV, "open").strip().lower()
        if fail not in ("open", "closed"):
            logger.error("%s=%r: expected open or closed; failing open", FAIL_ENV, fail)
        endpoint = env.get(ENDPOINT_ENV, DEFAULT_ENDPOINT).strip() or DEFAULT_ENDPOINT
        if urlsplit(endpoint).scheme not in ("http", "https"):
            logger.error("%s=%r: expected an http(s) URL", ENDPOINT_ENV, endpoint)
        return cls(
            endpoint=endpoint,
            token=env.get(TOKEN_ENV) or None,
            fail_closed=fail == "closed",
            timeout=_seconds(env, TIMEOUT_ENV, cls.timeout),
            cache_seconds=_seconds(env, CACHE_ENV, cls.cache_seconds),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        logger.error("%s=%r: expected a number of seconds; using %g", name, text, default)
        return default
    return value


@dataclass(frozen=True, slots=True)
class Answer:
    """The processor's decision for one set of tags, or why there was none."""

    allow: bool
    reasons: tuple[Mapping[str, object], ...] = ()
    retry_after: float | None = None
    cache_for: float = 0.0
    unavailable: str | None = None


class BudgetClient:
    """Asks one processor's ``/v1/budget/check`` and keeps its answers briefly."""

    def __init__(self, config: EnforcementConfig) -> None:
        self.config = config
        parts = urlsplit(config.endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = parts.path.rstrip("/") + CHECK_PATH
        self._cache: dict[tuple[tuple[str, str], ...], tuple[float, Answer]] = {}
        self._down_until = 0.0
        self._down_reason = ""
        self._lock = threading.Lock()

    def cached(self, tags: Mapping[str, str]) -> Answer | None:
        """A still-valid answer for ``tags`` (or the processor's recent unavailability)."""
        now = time.monotonic()
        with self._lock:
            if now < self._down_until:
                return Answer(allow=True, unavailable=self._down_reason)
            entry = self._cache.get(_key(tags))
        if entry is not None and now < entry[0]:
            return entry[1]
        return None

    def ask(self, tags: Mapping[str, str]) -> Answer:
        """Ask the processor now; remember the answer for as long as it may be reused."""
        try:
            answer = self._request(tags)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            reason = f"budget status at {self.config.endpoint} unavailable: {exc or type(exc)}"
            with self._lock:
                self._down_until = time.monotonic() + self.config.cache_seconds
                self._down_reason = reason
            return Answer(allow=True, unavailable=reason)
        keep = min(answer.cache_for, self.config.cache_seconds)
        if keep > 0:
            with self._lock:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[_key(tags)] = (time.monotonic() + keep, answer)
        return answer

    def _request(self, tags: Mapping[str, str]) -> Answer:
        body = json.dumps({"tags": dict(tags)}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self.config.timeout)
        try:
            connection.request("POST", self._path, body, headers)
            response = connection.getresponse()
            payload = response.read(1 << 20)
        finally:
            connection.close()
        if response.status not in (200, 429):
            raise ValueError(f"HTTP {response.status} {payload[:200]!r}")
        document = json.loads(payload)
        if not isinstance(document, dict) or not isinstance(document.get("allow"), bool):
            raise ValueError("the answer has no 'allow'")
        retry = document.get("retry_after")
        reasons = document.get("reasons") or []
        return Answer(
            allow=document["allow"] and response.status == 200,
            reasons=tuple(r for r in reasons if isinstance(r, dict)),
            retry_after=float(retry) if isinstance(retry, int | float) else None,
            cache_for=max(0.0, float(document.get("cache_for") or 0.0)),
        )


def _key(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))


class Enforcer:
    """Turns answers into the application's outcome: return, or raise before the vendor call."""

    def __init__(self, config: EnforcementConfig) -> None:
        self.config = config
        self.client = BudgetClient(config)
        self._last_warning = 0.0

    def settle(self, tags: Mapping[str, str], answer: Answer) -> None:
        if answer.unavailable is not None:
            if self.config.fail_closed:
                raise BudgetStatusUnavailable(
                    f"LLM call stopped: {answer.unavailable} and {FAIL_ENV}=closed", tags=tags
                )
            now = time.monotonic()
            if now - self._last_warning > 60:
                self._last_warning = now
                logger.warning("%s; LLM calls go ahead unchecked (fail-open)", answer.unavailable)
            return
        if answer.allow:
            return
        described = "; ".join(_describe(reason) for reason in answer.reasons) or "limit reached"
        raise BudgetExceededError(
            f"LLM call stopped: {described}",
            tags=tags,
            reasons=answer.reasons,
            retry_after=answer.retry_after,
        )


def _describe(reason: Mapping[str, object]) -> str:
    scope = reason.get("scope")
    where = ",".join(f"{k}={v}" for k, v in scope.items()) if isinstance(scope, dict) else ""
    if "rate_limit" in reason:
        return (
            f"rate limit {reason['rate_limit']} ({where}) allows "
            f"{reason.get('requests_per_minute')} requests per minute"
        )
    return (
        f"budget {reason.get('budget')} ({where}) spent {reason.get('spend_usd')} of "
        f"{reason.get('amount_usd')} USD ({reason.get('window')})"
    )


_enforcer: Enforcer | None = None
_enforcer_lock = threading.Lock()


def _enforce_asked(env: Mapping[str, str]) -> bool:
    value = env.get(ENFORCE_ENV)
    return value is not None and value.strip().lower() in _TRUE


_ENFORCE = EnvSetting(_enforce_asked, ENFORCE_ENV)
_CONFIG = EnvSetting(
    EnforcementConfig.from_env, ENDPOINT_ENV, TOKEN_ENV, FAIL_ENV, TIMEOUT_ENV, CACHE_ENV
)


def enabled() -> bool:
    """Whether ``SPANLEDGER_BUDGET_ENFORCE`` asks for checks."""
    return _ENFORCE.get()


def enforcer() -> Enforcer:
    """The enforcer for the current environment (a new one when the settings changed)."""
    global _enforcer  # noqa: PLW0603
    config = _CONFIG.get()
    current = _enforcer
    if current is not None and current.config == config:
        return current
    with _enforcer_lock:
        if _enforcer is None or _enforcer.config != config:
            _enforcer = Enforcer(config)
        return _enforcer


def current_call_tags() -> dict[str, str]:
    """The current tags the processor keys budgets on (``SPANLEDGER_TAG_KEYS``)."""
    from spanledger.instrumentation.baggage.config import active_config
    from spanledger.tags import current_tags

    keys = active_config().tag_keys
    return {key: value for key, value in current_tags().items() if key in keys}
