"""Settings of the tag pipeline, read once from the environment.

| variable | default | meaning |
| --- | --- | --- |
| ``SPANLEDGER_TAG_KEYS`` | ``customer,feature,team,env`` | baggage keys copied onto spans |
| ``SPANLEDGER_TAG_VALUE_MAX_LENGTH`` | ``128`` | longer values are truncated on spans and flagged |
| ``SPANLEDGER_INBOUND_TAGS`` | ``keep`` | ``drop`` removes tags that arrive with a request |
| ``SPANLEDGER_BAGGAGE_HOSTS`` | loopback, private networks, internal names | where baggage may go |

A value that cannot be understood is logged and replaced by its default: configuration never stops
the application.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from spanledger.instrumentation.baggage.hosts import (
    DEFAULT_HOST_ALLOW_LIST,
    HostAllowList,
)
from spanledger.semconv import DEFAULT_TAG_KEYS

_logger = logging.getLogger(__name__)

TAG_KEYS_ENV = "SPANLEDGER_TAG_KEYS"
TAG_VALUE_MAX_LENGTH_ENV = "SPANLEDGER_TAG_VALUE_MAX_LENGTH"
INBOUND_TAGS_ENV = "SPANLEDGER_INBOUND_TAGS"
BAGGAGE_HOSTS_ENV = "SPANLEDGER_BAGGAGE_HOSTS"

DEFAULT_TAG_VALUE_MAX_LENGTH = 128

# A W3C baggage key is an RFC 7230 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def is_valid_key(key: str) -> bool:
    """Whether ``key`` may be a W3C baggage key (an RFC 7230 token)."""
    return isinstance(key, str) and _TOKEN.fullmatch(key) is not None


class InboundPolicy(StrEnum):
    """What a service does with tags that arrive in the baggage of an inbound request."""

    KEEP = "keep"
    """Trust them: the caller's tags apply to the work done here."""
    DROP = "drop"
    """Remove them; they stay readable through ``spanledger.inbound_tags()`` for re-validation."""


@dataclass(frozen=True)
class TagConfig:
    """The resolved settings of the tag pipeline."""

    tag_keys: tuple[str, ...] = DEFAULT_TAG_KEYS
    value_max_length: int = DEFAULT_TAG_VALUE_MAX_LENGTH
    inbound: InboundPolicy = InboundPolicy.KEEP
    baggage_hosts: HostAllowList = DEFAULT_HOST_ALLOW_LIST

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TagConfig:
        """Reads the ``SPANLEDGER_*`` variables; bad values are logged and defaulted."""
        env = os.environ if environ is None else environ
        return cls(
            tag_keys=_tag_keys(env.get(TAG_KEYS_ENV)),
            value_max_length=_max_length(env.get(TAG_VALUE_MAX_LENGTH_ENV)),
            inbound=_inbound(env.get(INBOUND_TAGS_ENV)),
            baggage_hosts=_hosts(env.get(BAGGAGE_HOSTS_ENV)),
        )


def _tag_keys(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return DEFAULT_TAG_KEYS
    keys: list[str] = []
    for part in raw.split(","):
        key = part.strip()
        if not key:
            continue
        if not is_valid_key(key):
            _logger.warning("%s: ignoring %r, not a valid W3C baggage key", TAG_KEYS_ENV, key)
            continue
        if key not in keys:
            keys.append(key)
    if not keys:
        _logger.warning("%s names no valid key; using %s", TAG_KEYS_ENV, ",".join(DEFAULT_TAG_KEYS))
        return DEFAULT_TAG_KEYS
    return tuple(keys)


def _max_length(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return DEFAULT_TAG_VALUE_MAX_LENGTH
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        _logger.warning(
            "%s=%r is not a positive integer; using %d",
            TAG_VALUE_MAX_LENGTH_ENV,
            raw,
            DEFAULT_TAG_VALUE_MAX_LENGTH,
        )
        return DEFAULT_TAG_VALUE_MAX_LENGTH
    return value


def _inbound(raw: str | None) -> InboundPolicy:
    if raw is None or not raw.strip():
        return InboundPolicy.KEEP
    try:
        return InboundPolicy(raw.strip().lower())
    except ValueError:
        _logger.warning("%s=%r is neither keep nor drop; using keep", INBOUND_TAGS_ENV, raw)
        return InboundPolicy.KEEP


def _hosts(raw: str | None) -> HostAllowList:
    if raw is None:
        return DEFAULT_HOST_ALLOW_LIST
    allow_list, problems = HostAllowList.parse_reporting(raw)
    for problem in problems:
        _logger.warning(
            "%s: ignoring %r, not a host name, pattern or network", BAGGAGE_HOSTS_ENV, problem
        )
    return allow_list


_active: TagConfig | None = None


def active_config() -> TagConfig:
    """The settings in force: those installed last, else the environment's."""
    global _active  # noqa: PLW0603
    if _active is None:
        _active = TagConfig.from_env()
    return _active


def set_active_config(config: TagConfig | None) -> None:
    """Makes ``config`` the settings in force (``None``: read the environment again when asked)."""
    global _active  # noqa: PLW0603
    _active = config
