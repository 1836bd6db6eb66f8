"""Keeping the database password out of every line spanledger prints.

A PostgreSQL URL may carry a password (``postgresql://user:secret@host/db`` or
``?password=secret``); ``redact_url`` replaces it with ``***`` wherever the URL is shown, and
``scrub`` takes any known password out of a message (a driver's error, say) before it is logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
URL_SCHEMES = ("postgresql", "postgres")


def is_database_url(text: str) -> bool:
    """Whether ``text`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return urlsplit(text).scheme in URL_SCHEMES and "://" in text


def url_password(url: str) -> str | None:
    """The password written in ``url`` (in the user part or as ``password=``), if any."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe to print and log."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        user = user_info.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = urlencode(
                [(k, MASK if k == "password" else v) for k, v in pairs], safe="*", quote_via=quote
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: object, secrets: Iterable[str | None]) -> str:
    """``str(text)`` with every non-empty secret (and its URL-quoted form) replaced by ``***``."""
    message = str(text)
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                message = message.replace(form, MASK)
    return message
