"""The ledger tests drive ``spanledger serve`` with the reliability tests' kit
(``reliability_support``) and start PostgreSQL servers of their own with ``pgserver``
(scripts/postgres/)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[3]
for place in (TESTS / "reliability", TESTS.parent / "scripts" / "postgres"):
    if str(place) not in sys.path:
        sys.path.insert(0, str(place))
