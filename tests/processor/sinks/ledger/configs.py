"""Small helpers shared by the ledger tests: processor configs and the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

SPANLEDGER = (sys.executable, "-m", "spanledger.processor.cli")


def write_config(
    tmp_path: Path, ledger: dict[str, Any], name: str = "spanledger.yaml", **sections: Any
) -> Path:
    """A processor config with ``ledger`` (OTLP/HTTP on a free port, no Prometheus unless
    ``sections`` says otherwise)."""
    path = tmp_path / name
    config = {
        "receivers": {"otlp": {"grpc": None, "http": {"endpoint": "127.0.0.1:0"}}},
        "metrics": {"prometheus": None},
        "ledger": ledger,
        **sections,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def password_file(tmp_path: Path, server: Any) -> str:
    """A file holding the test server's password, as an operator's secret file would."""
    path = tmp_path / "pg-password"
    path.write_text(server.password + "\n")
    return str(path)
