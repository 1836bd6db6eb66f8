"""Settings of the OTLP exporters: destination, signals, headers, TLS, compression, queue and
retries."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from spanledger.processor.config_schema import Duration, storage_problems
from spanledger.processor.otlp.signals import SIGNAL_NAMES

SignalName = Literal["traces", "metrics", "logs"]

DEFAULT_QUEUE_SPANS = 100_000
DEFAULT_BATCH_SPANS = 2048
DEFAULT_DISK_QUEUE_BYTES = 1024 * 1024 * 1024
"""1 GiB of queued requests on disk."""
DEFAULT_MAX_BACKOFF = 5.0
"""Seconds: after an outage, delivery resumes within this long of the destination's return."""
DEFAULT_BATCH_BYTES = 4 * 1024 * 1024
"""4 MiB: the default largest message of gRPC servers, the Collector's among them."""


@dataclass
class TlsClientConfig:
    """How to secure the connection to the destination.

    ``insecure`` (gRPC only) sends in plain text. ``ca_file`` replaces the system trust store;
    ``cert_file`` with ``key_file`` present a client certificate (mutual TLS). ``server_name``
    overrides the name checked against the server certificate.
    """

    insecure: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def problems(self) -> list[str]:
        found = []
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                found.append(f"{name} {path!r} cannot be read")
        if (self.cert_file is None) != (self.key_file is None):
            found.append("cert_file and key_file go together (client certificate)")
        return found


@dataclass
class DiskQueueConfig:
    """Keep the exporter's queue in files under ``directory`` so it survives restarts and kills.

    At most ``max_bytes`` are queued; beyond it ``export`` raises ``Backpressure``. ``sync``
    also flushes each write to the device (survives power loss, costs an fsync per batch).
    """

    directory: str = ""
    max_bytes: int = DEFAULT_DISK_QUEUE_BYTES
    sync: bool = False

    def problems(self) -> list[str]:
        return storage_problems(self.directory, self.max_bytes)


@dataclass(kw_only=True)
class _ExporterConfig:
    """Settings shared by both exporters (keyword-only; ``endpoint`` may be given by position)."""

    signals: list[SignalName] = field(default_factory=lambda: list(SIGNAL_NAMES))  # type: ignore[arg-type]
    """What the exporter forwards: priced ``traces``, and ``metrics`` and ``logs`` unchanged."""
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    """Sent with every request, e.g. ``{"authorization": "Basic ..."}``; never logged."""
    timeout: Duration = 10.0
    """Seconds one attempt may take."""
    compression: Literal["gzip", "none"] | None = "gzip"
    """``gzip``, or ``none`` (or null) to send uncompressed."""
    tls: TlsClientConfig | None = None
    queue_size: int = DEFAULT_QUEUE_SPANS
    """Items (spans, data points, log records) held waiting for delivery, per signal; ``export``
    raises ``Backpressure`` beyond it."""
    queue: DiskQueueConfig | None = None
    """Keep the queue on disk instead (then bounded by ``queue.max_bytes``, not ``queue_size``).
    Traces are queued in ``directory`` itself, metrics and logs in its ``metrics`` and ``logs``
    subdirectories, each bounded by ``max_bytes``."""
    max_batch_spans: int = DEFAULT_BATCH_SPANS
    """Queued requests are merged into one export of at most this many items..."""
    max_batch_bytes: int = DEFAULT_BATCH_BYTES
    """...and at most this many bytes (before compression); a larger single request goes alone."""
    workers: int = 1
    """Exports in flight at the same time."""
    initial_backoff: Duration = 1.0
    """First wait before a retry; it doubles (with jitter) up to ``max_backoff``."""
    max_backoff: Duration = DEFAULT_MAX_BACKOFF
    """The longest wait between retries, jitter included: once a destination is back, delivery
    resumes within this long (plus one attempt)."""
    max_elapsed: Duration = 300.0
    """Give up on a batch (and count its spans as dropped) after retrying for this long."""

    def _shared_problems(self) -> list[str]:
        found = []
        if not self.signals:
            found.append(f"signals is empty: list at least one of {', '.join(SIGNAL_NAMES)}")
        elif len(set(self.signals)) < len(self.signals):
            found.append("signals lists a signal twice")
        for name in self.signals:
            if name not in SIGNAL_NAMES:
                found.append(f"signals: unknown signal {name!r} (known: {', '.join(SIGNAL_NAMES)})")
        if self.timeout <= 0:
            found.append("timeout must be positive")
        for name in ("queue_size", "max_batch_spans", "max_batch_bytes", "workers"):
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff:
            found.append("initial_backoff must be positive and not above max_backoff")
        if self.max_elapsed < 0:
            found.append("max_elapsed cannot be negative")
        if self.compression not in ("gzip", "none", None):
            found.append(f"compression must be gzip or none, got {self.compression!r}")
        for name, value in self.headers.items():
            if not name or any(c in name for c in " :\r\n") or any(c in value for c in "\r\n"):
                found.append(f"headers: {name!r} is not a valid header")
        return found

    def all_problems(self) -> list[str]:
        """The problems of this config and of its ``tls`` section."""
        tls = [f"tls.{p}" for p in self.tls.problems()] if self.tls is not None else []
        queue = [f"queue.{p}" for p in self.queue.problems()] if self.queue is not None else []
        return self.problems() + tls + queue  # type: ignore[attr-defined]


@dataclass
class OtlpHttpExporterConfig(_ExporterConfig):
    """OTLP/HTTP (binary protobuf) exporter; the URL scheme chooses plain HTTP or HTTPS.

    ``endpoint`` is the traces URL. The metrics and logs URLs are ``metrics_endpoint`` and
    ``logs_endpoint`` when given, else derived from it (see ``url``).
    """

    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    """Full URL; an empty path means ``/v1/traces``."""
    metrics_endpoint: str | None = None
    """Full URL for metrics; by default derived from ``endpoint``."""
    logs_endpoint: str | None = None
    """Full URL for logs; by default derived from ``endpoint``."""

    def url(self, signal: str) -> str | None:
        """The URL ``signal`` is POSTed to; None when it cannot be derived from ``endpoint``.

        As with the OpenTelemetry SDKs' base endpoint, an ``endpoint`` without a path is a base
        URL: each signal goes to ``/v1/<signal>`` under it. An ``endpoint`` ending in
        ``/v1/traces`` sends metrics and logs beside it, to ``.../v1/metrics`` and
        ``.../v1/logs``. Any other path is a traces URL only.
        """
        explicit = {"metrics": self.metrics_endpoint, "logs": self.logs_endpoint}.get(signal)
        if explicit:
            return explicit
        parts = urlsplit(self.endpoint)
        path = parts.path
        if path in ("", "/"):
            prefix = ""
        elif path.endswith("/v1/traces"):
            prefix = path.removesuffix("/v1/traces")
        elif signal == "traces":
            return self.endpoint
        else:
            return None
        return urlunsplit(parts._replace(path=f"{prefix}/v1/{signal}"))

    def problems(self) -> list[str]:
        found = self._shared_problems()
        urls = {"endpoint": self.endpoint}
        for signal in ("metrics", "logs"):
            name = f"{signal}_endpoint"
            if getattr(self, name) is not None:
                urls[name] = getattr(self, name)
            elif signal in self.signals and self.url(signal) is None:
                found.append(
                    f"cannot derive the {signal} URL from endpoint {self.endpoint!r} (its path "
                    f"does not end in /v1/traces): set {name}, or leave {signal} out of signals"
                )
        for name, url in urls.items():
            found += _url_problems(name, url, self.tls)
        return found


@dataclass
class OtlpGrpcExporterConfig(_ExporterConfig):
    """OTLP/gRPC exporter. TLS unless ``tls.insecure`` is true or the endpoint says ``http://``."""

    endpoint: str = "127.0.0.1:4317"
    """host:port, or http://host:port (plain text) or https://host:port (TLS)."""

    def problems(self) -> list[str]:
        found = self._shared_problems()
        try:
            grpc_target(self.endpoint)
        except ValueError as exc:
            found.append(str(exc))
        if self.endpoint.startswith("https://") and self.tls is not None and self.tls.insecure:
            found.append("tls.insecure contradicts an https:// endpoint")
        return found

    def secure(self) -> bool:
        """Whether the channel uses TLS."""
        if self.endpoint.startswith("http://"):
            return False
        if self.endpoint.startswith("https://"):
            return True
        return not (self.tls is not None and self.tls.insecure)


def _url_problems(name: str, url: str, tls: TlsClientConfig | None) -> list[str]:
    found = []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        found.append(f"{name} must be an http:// or https:// URL, got {url!r}")
    else:
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            found.append(f"{name} has an invalid port: {url!r}")
    if parts.scheme == "https" and tls is not None and tls.insecure:
        found.append(f"tls.insecure contradicts an https:// {name}: use http:// for plain text")
    return found


def grpc_target(endpoint: str) -> str:
    """The ``host:port`` gRPC dials for ``endpoint``; raise ``ValueError`` if it is not one."""
    text = endpoint.strip()
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme) :].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or "/" in text or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint must be host:port such as 127.0.0.1:4317, got {endpoint!r}")
    return text
