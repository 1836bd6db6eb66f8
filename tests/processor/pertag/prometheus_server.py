"""A real Prometheus server for tests: temporary config and storage, bound to 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from support.ports import free_port
from support.processes import stop_process

INSTALL_HINT = "run scripts/prometheus/install.sh (apt-get install prometheus)"


class PrometheusServer:
    """``prometheus`` scraping ``targets`` every ``interval``; stop() ends the process."""

    def __init__(self, workdir: Path, targets: list[str], interval: str = "250ms") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(f"prometheus is not installed: {INSTALL_HINT}")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": interval, "evaluation_interval": interval},
                    "scrape_configs": [
                        {
                            "job_name": "spanledger",
                            "scrape_interval": interval,
                            "scrape_timeout": interval,
                            "static_configs": [{"targets": targets}],
                        }
                    ],
                }
            )
        )
        self.log = (workdir / "prometheus.log").open("w")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(workdir)

    def _wait_ready(self, workdir: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (workdir / "prometheus.log").read_text()
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{log}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("prometheus did not become ready within 30 s")

    def query(self, promql: str) -> list[dict]:
        """The instant-vector result of ``promql`` (a list of {metric, value})."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]

    def by_label(self, promql: str, label: str, timeout: float = 10.0) -> dict[str, float]:
        """``{label value: sample value}`` for a query returning one series per label value.

        A scrape that times out on a loaded machine marks every series stale until the next
        good scrape, so an empty answer is asked again until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result or time.monotonic() > deadline:
                return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}
            time.sleep(0.2)

    def wait_for(self, promql: str, expected: float, timeout: float = 20.0) -> float:
        """Wait until the scalar result of ``promql`` equals ``expected``; returns it."""
        deadline = time.monotonic() + timeout
        value = float("nan")
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                value = float(result[0]["value"][1])
                if value == expected:
                    return value
            time.sleep(0.1)
        raise AssertionError(f"{promql} stayed at {value}, expected {expected}")

    def stop(self) -> None:
        stop_process(self.process, grace=10)
        self.log.close()
