"""``ledger:`` in the processor's configuration: an SQLite file, or a PostgreSQL database.

```yaml
ledger: {path: spanledger.db, retention_days: 400}             # one machine (the default)
ledger:                                                         # many replicas, one database
  url: postgresql://spanledger@db.internal:5432/spanledger
  password_file: /run/secrets/spanledger-db                     # or PGPASSWORD, or ~/.pgpass
  queue: {memory_rows: 50000, directory: ledger-queue, max_bytes: 1073741824}
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spanledger.processor.config_schema import Duration, Problems, build, storage_problems
from spanledger.processor.sinks.ledger.base import LedgerError
from spanledger.processor.sinks.ledger.secrets import is_database_url, redact_url

DEFAULT_PATH = "spanledger.db"
DEFAULT_SPILL_BYTES = 1024 * 1024 * 1024


@dataclass
class LedgerQueueConfig:
    """``ledger.queue``: rows on their way to a PostgreSQL ledger.

    Up to ``memory_rows`` rows wait in memory. Beyond that, and whenever the database cannot be
    written, they go to files under ``directory`` (at most ``max_bytes``), which also survive a
    restart. Without ``directory``, rows beyond ``memory_rows`` are dropped (logged and
    counted). ``batch_rows`` is the most rows written in one transaction.
    """

    memory_rows: int = 50_000
    directory: str | None = None
    max_bytes: int = DEFAULT_SPILL_BYTES
    sync: bool = False
    batch_rows: int = 5_000

    def problems(self) -> list[str]:
        found = []
        for name in ("memory_rows", "batch_rows"):
            if getattr(self, name) < 1:
                found.append(f"queue.{name} must be at least 1, got {getattr(self, name)}")
        if self.directory is not None:
            found += [f"queue.{p}" for p in storage_problems(self.directory, self.max_bytes)]
        return found


@dataclass
class LedgerConfig:
    """Where the ledger lives and how long it keeps calls.

    ``url`` (``postgresql://user@host:port/db``) selects a PostgreSQL ledger that any number of
    replicas share; otherwise ``path`` is the SQLite file (None or empty: no ledger). The
    password comes from ``password_file``, else the URL, else libpq's own sources
    (``PGPASSWORD``, ``~/.pgpass``); it is never printed. ``retention_days`` deletes calls that
    started longer ago than that (None: keep everything).
    """

    path: str | None = DEFAULT_PATH
    url: str | None = field(default=None, repr=False)
    password_file: str | None = None
    retention_days: int | None = None
    connect_timeout: Duration = 5.0
    queue: LedgerQueueConfig = field(default_factory=LedgerQueueConfig)

    def __post_init__(self) -> None:
        if self.url:
            self.path = None  # the database replaces the default file

    @property
    def enabled(self) -> bool:
        """Whether there is a ledger at all."""
        return bool(self.url or self.path)

    @property
    def shared(self) -> bool:
        """Whether the ledger is a PostgreSQL database (shared by replicas)."""
        return bool(self.url)

    def location(self) -> str:
        """The ledger as people may read it: a file path, a URL without password, or ``off``."""
        if self.url:
            return redact_url(self.url)
        return self.path or "off"

    def password(self) -> str | None:
        """The password read from ``password_file`` (trailing newline removed), if set."""
        if not self.password_file:
            return None
        try:
            return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise LedgerError(
                f"cannot read ledger.password_file {self.password_file}: {exc.strerror or exc}"
            ) from None

    def problems(self) -> list[str]:
        """Every reason this configuration cannot be used, as readable text (empty when fine)."""
        found = []
        if self.retention_days is not None and (
            isinstance(self.retention_days, bool) or self.retention_days < 1
        ):
            found.append(
                f"retention_days must be a whole number of days >= 1, got {self.retention_days!r}"
            )
        if self.url is not None and not is_database_url(self.url):
            found.append(
                f"url must be a postgresql:// URL, got {redact_url(self.url)!r} "
                "(an SQLite ledger is set with path)"
            )
        if self.password_file and not os.access(self.password_file, os.R_OK):
            found.append(f"password_file {self.password_file} cannot be read")
        if self.connect_timeout <= 0:
            found.append(f"connect_timeout must be positive, got {self.connect_timeout}")
        found += self.queue.problems()
        return found


def read_ledger(raw: object, where: str, problems: Problems) -> LedgerConfig:
    """``ledger``: ``url`` (PostgreSQL) replaces the default SQLite ``path``; not both."""
    ledger = build(LedgerConfig, raw, where, problems) or LedgerConfig()
    if isinstance(raw, Mapping) and raw.get("url") and raw.get("path"):
        problems.add(where, "set path (an SQLite file) or url (PostgreSQL), not both")
    return ledger
