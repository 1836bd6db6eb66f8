"""Settings of the per-tag metrics: where to expose or push them, and the cardinality cap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from spanledger.processor.config_schema import Duration, Problems, build

PROTOCOLS = ("grpc", "http")


@dataclass
class MetricsConfig:
    """Where the per-tag counters go (``spanledger.cost``, ``.tokens``, ``.llm_calls``).

    ``prometheus_endpoint`` is the ``host:port`` the ``/metrics`` page is served on (None: no
    endpoint; port 0: any free port). ``otlp_endpoint`` pushes the same counters every
    ``export_interval`` seconds over OTLP ``otlp_protocol`` (``grpc``: ``host:port`` or a URL,
    ``http``: a URL; ``/v1/metrics`` is added when the URL has no path). ``cardinality_limit``
    is the number of distinct values each label keeps before further values count as ``(other)``.
    """

    prometheus_endpoint: str | None = "127.0.0.1:9464"
    prometheus_bearer_token: str | None = field(default=None, repr=False)
    """When set, scrapes must carry ``Authorization: Bearer <token>``."""
    prometheus_insecure: bool = False
    """Allow serving ``/metrics`` beyond loopback without a bearer token."""
    otlp_endpoint: str | None = None
    otlp_protocol: str = "grpc"
    export_interval: Duration = 10.0
    cardinality_limit: int = 1000

    def problems(self) -> list[str]:
        """Every reason this configuration cannot be used, as readable text (empty when fine)."""
        found: list[str] = []
        if self.prometheus_endpoint is not None:
            try:
                split_host_port(self.prometheus_endpoint)
            except ValueError as exc:
                found.append(f"prometheus endpoint: {exc}")
        token = self.prometheus_bearer_token
        if token is not None and not token.strip():
            found.append("prometheus bearer_token is empty: leave it out to serve without one")
        if self.otlp_protocol not in PROTOCOLS:
            found.append(
                f"otlp protocol must be one of {', '.join(PROTOCOLS)}, got {self.otlp_protocol!r}"
            )
        if self.otlp_endpoint is not None and not self.otlp_endpoint.strip():
            found.append("otlp endpoint is empty (use null to disable the OTLP push)")
        if self.export_interval <= 0:
            found.append(f"export_interval must be positive, got {self.export_interval!r}")
        if isinstance(self.cardinality_limit, bool) or self.cardinality_limit < 1:
            found.append(f"cardinality_limit must be at least 1, got {self.cardinality_limit!r}")
        return found


def split_host_port(endpoint: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` → ``("127.0.0.1", 9464)``; ``"[::1]:9464"`` → ``("::1", 9464)``."""
    text = endpoint.strip()
    if "://" in text:
        raise ValueError(f"expected host:port without a scheme, got {endpoint!r}")
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected host:port such as 127.0.0.1:9464, got {endpoint!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range in {endpoint!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", port


def otlp_http_url(endpoint: str) -> str:
    """The OTLP/HTTP URL for ``endpoint``, adding ``http://`` and ``/v1/metrics`` if absent."""
    url = endpoint.strip()
    if "://" not in url:
        url = f"http://{url}"
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/v1/metrics"
    return url


def read_metrics(raw: object, where: str, problems: Problems) -> MetricsConfig:
    """The ``metrics`` section, ``{prometheus: {endpoint}, otlp: {endpoint, protocol}, ...}``,
    as a ``MetricsConfig``."""
    if raw is None:
        return MetricsConfig()
    if not isinstance(raw, Mapping):
        problems.add(where, "expected a mapping")
        return MetricsConfig()
    flat: dict[str, object] = {}
    for key, value in raw.items():
        if key in _METRICS_ENDPOINTS:
            flat.update(_endpoint_of(value, key, where, problems))
        else:
            flat[key] = value
    return build(MetricsConfig, flat, where, problems) or MetricsConfig()


_METRICS_ENDPOINTS = {
    "prometheus": ("endpoint", "bearer_token", "insecure"),
    "otlp": ("endpoint", "protocol"),
}
"""The keys of ``metrics.prometheus`` and ``metrics.otlp``; each is ``MetricsConfig``'s field
``<section>_<key>``."""


def _endpoint_of(value: object, section: str, parent: str, problems: Problems) -> dict[str, object]:
    """``metrics.<section>`` as ``MetricsConfig`` fields (its endpoint None when null)."""
    where = f"{parent}.{section}"
    if value is None:
        return {f"{section}_endpoint": None}
    if not isinstance(value, Mapping):
        problems.add(
            where, "expected a mapping such as {endpoint: 127.0.0.1:9464}, or null to disable"
        )
        return {f"{section}_endpoint": None}
    known = _METRICS_ENDPOINTS[section]
    for key in sorted(set(value) - set(known)):
        problems.add(f"{where}.{key}", f"unknown key (known keys: {', '.join(known)})")
    found: dict[str, object] = {f"{section}_endpoint": value.get("endpoint")}
    found.update({f"{section}_{key}": value[key] for key in known[1:] if key in value})
    return found
