"""Secrets never reach a log line or an error message.

``redact`` hides what looks like a credential in any text: the password of a URL
(``rediss://:PASSWORD@host`` becomes ``rediss://:***@host``), a ``Bearer`` or ``Basic``
credential, and every value registered with ``register`` (the tokens, passwords, webhook secrets
and exporter header values of the configuration). ``RedactingFilter`` applies it to every log
record a handler emits, its traceback included; ``install`` puts it on the root logger's handlers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s/@:]*:)(?P<secret>[^\s/@]+)@", re.IGNORECASE
)
_SCHEME_CREDENTIAL = re.compile(
    r"\b(?P<scheme>bearer|basic)(?P<gap>\s+)(?P<secret>[^\s'\",;)]+)", re.IGNORECASE
)
_MIN_SECRET = 4
"""Shorter registered values are not masked: they would mask ordinary words and digits."""

_lock = threading.Lock()
_secrets: set[str] = set()


def register(values: Iterable[str | None]) -> None:
    """Mask these values wherever they appear in logs and errors from now on."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)


def redact(text: str) -> str:
    """``text`` with URL passwords, Bearer/Basic credentials and registered secrets masked."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group('scheme')}{m.group('gap')}{MASK}", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; the user name is kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install(logger: logging.Logger | None = None) -> None:
    """Put the redacting filter on every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
