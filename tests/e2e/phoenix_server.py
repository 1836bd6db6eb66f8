"""Arize Phoenix, started from .phoenix-venv on free loopback ports, read through its REST API."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from support.ports import free_port
from support.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_PYTHON = ROOT / ".phoenix-venv" / "bin" / "python"
LAUNCHER = ROOT / "scripts" / "phoenix" / "serve.py"
INSTALL = ROOT / "scripts" / "phoenix" / "install.sh"
READY_TIMEOUT = 180.0
"""Seconds Phoenix may take to import and migrate its database on a busy machine."""


class Phoenix:
    """One ``phoenix serve`` process with its own working directory (SQLite database)."""

    def __init__(self, working_dir: Path) -> None:
        if not PHOENIX_PYTHON.exists():
            raise RuntimeError(f"Arize Phoenix is not installed: run bash {INSTALL}")
        working_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (working_dir / "phoenix.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
        env.update(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            PHOENIX_GRPC_PORT=str(self.grpc_port),
            PHOENIX_WORKING_DIR=str(working_dir),
            PHOENIX_TELEMETRY_ENABLED="false",
        )
        self.process = subprocess.Popen(
            [str(PHOENIX_PYTHON), str(LAUNCHER), "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._log_path = working_dir / "phoenix.log"

    @property
    def traces_endpoint(self) -> str:
        """Phoenix's OTLP/HTTP endpoint."""
        return f"{self.url}/v1/traces"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Phoenix exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Phoenix was not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        return self._log_path.read_text(errors="replace")[-4000:]

    def get(self, path: str, **query: Any) -> Any:
        url = f"{self.url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.load(reply)

    def spans(self, project: str, trace_id: str) -> list[dict[str, Any]]:
        """Every span of ``trace_id`` in ``project`` (OTLP JSON shape, attributes as a dict)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):
            query: dict[str, Any] = {"trace_id": trace_id, "limit": 1000}
            if cursor:
                query["cursor"] = cursor
            try:
                page = self.get(f"/v1/projects/{project}/spans/otlpv1", **query)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project does not exist until its first span
                    return []
                raise
            for span in page["data"]:
                span["attributes"] = {
                    item["key"]: any_value(item["value"]) for item in span.get("attributes") or []
                }
                found.append(span)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return found

    def stop(self) -> None:
        stop_process(self.process, grace=20)
        self._log.close()


def any_value(value: dict[str, Any]) -> Any:
    """An OTLP JSON ``AnyValue`` as a Python value (64-bit integers may arrive as strings)."""
    present = {key: item for key, item in value.items() if item is not None}
    if "int_value" in present:
        return int(present["int_value"])
    if "double_value" in present:
        return float(present["double_value"])
    if "array_value" in present:
        return [any_value(item) for item in present["array_value"].get("values") or []]
    for key in ("string_value", "bool_value"):
        if key in present:
            return present[key]
    return None
