"""Settings of the OTLP receivers: where to listen, how much to accept, TLS and bearer auth."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from spanledger.processor.config_schema import Duration

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Largest request body accepted, compressed or not (16 MiB)."""


@dataclass
class TlsServerConfig:
    """Serve TLS with this certificate; with ``client_ca_file``, require client certificates."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str | None = None

    def problems(self) -> list[str]:
        found = []
        for name in ("cert_file", "key_file"):
            path = getattr(self, name)
            if not path:
                found.append(f"{name} is required to serve TLS")
            elif not os.access(path, os.R_OK):
                found.append(f"{name} {path!r} cannot be read")
        if self.client_ca_file is not None and not os.access(self.client_ca_file, os.R_OK):
            found.append(f"client_ca_file {self.client_ca_file!r} cannot be read")
        return found


@dataclass
class GrpcReceiverConfig:
    """OTLP/gRPC receiver (the trace, metrics and logs services), by default on 127.0.0.1:4317."""

    endpoint: str = "127.0.0.1:4317"
    """host:port to listen on; port 0 picks a free port (see ``GrpcReceiver.port``)."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest message accepted after decompression; larger ones get RESOURCE_EXHAUSTED."""
    tls: TlsServerConfig | None = None
    bearer_token: str | None = field(default=None, repr=False)
    """When set, requests must carry ``authorization: Bearer <token>``."""
    max_workers: int = 8
    """Requests decoded and handed to the pipeline at the same time."""
    max_concurrent_rpcs: int = 64
    """Requests accepted at once, those decoding and those waiting for a worker; further ones are
    refused by gRPC with ``RESOURCE_EXHAUSTED`` before their message is read."""
    insecure: bool = False
    """Allow listening beyond loopback without ``bearer_token`` or client certificates."""

    def problems(self) -> list[str]:
        found = _common_problems(self.endpoint, self.max_request_bytes, self.bearer_token)
        if self.max_workers < 1:
            found.append("max_workers must be at least 1")
        if self.max_concurrent_rpcs < self.max_workers:
            found.append(
                f"max_concurrent_rpcs ({self.max_concurrent_rpcs}) must be at least max_workers "
                f"({self.max_workers})"
            )
        return found

    def all_problems(self) -> list[str]:
        """The problems of this config and of its ``tls`` section."""
        return all_problems(self)


@dataclass
class HttpReceiverConfig:
    """OTLP/HTTP receiver (``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs``, protobuf or JSON).

    By default on 127.0.0.1:4318.
    """

    endpoint: str = "127.0.0.1:4318"
    """host:port to listen on; port 0 picks a free port (see ``HttpReceiver.port``)."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest body accepted, before and after gzip decompression; larger ones get 413."""
    tls: TlsServerConfig | None = None
    bearer_token: str | None = field(default=None, repr=False)
    """When set, requests must carry ``Authorization: Bearer <token>``."""
    path: str = "/v1/traces"
    """Where traces are POSTed."""
    metrics_path: str = "/v1/metrics"
    logs_path: str = "/v1/logs"
    max_connections: int = 256
    """Open client connections at once. When all are open, a new connection makes the one silent
    longest (for at least a second) give way; if none is silent it is closed at once."""
    idle_timeout: Duration = 30.0
    """Seconds a connection may take to send a whole request's headers after connecting or after
    its last answer, and the longest pause within a body; then it is closed."""
    max_inflight_bytes: int = 4 * DEFAULT_MAX_REQUEST_BYTES
    """Request bodies (as declared, before reading) held at once across all connections; beyond
    it requests get 503 with Retry-After. One request is always let in."""
    max_workers: int = 8
    """Requests decoded and handed to the pipeline at the same time."""
    insecure: bool = False
    """Allow listening beyond loopback without ``bearer_token`` or client certificates."""

    def problems(self) -> list[str]:
        found = _common_problems(self.endpoint, self.max_request_bytes, self.bearer_token)
        paths = {"path": self.path, "metrics_path": self.metrics_path, "logs_path": self.logs_path}
        for name, value in paths.items():
            if not value.startswith("/"):
                found.append(f"{name} must start with '/', got {value!r}")
        if len(set(paths.values())) < len(paths):
            found.append("path, metrics_path and logs_path must differ from each other")
        if self.max_connections < 1:
            found.append("max_connections must be at least 1")
        if self.idle_timeout <= 0:
            found.append("idle_timeout must be positive")
        if self.max_inflight_bytes < 1:
            found.append(f"max_inflight_bytes must be positive, got {self.max_inflight_bytes}")
        if self.max_workers < 1:
            found.append("max_workers must be at least 1")
        return found

    def all_problems(self) -> list[str]:
        """The problems of this config and of its ``tls`` section."""
        return all_problems(self)


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as ``(host, port)``; raise ``ValueError`` if not."""
    host, sep, port_text = endpoint.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"endpoint must be host:port, got {endpoint!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 endpoint needs brackets, such as [::1]:4317, got {endpoint!r}")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"endpoint port must be a number from 0 to 65535, got {endpoint!r}")
    return host, int(port_text)


def _common_problems(endpoint: str, max_request_bytes: int, bearer_token: str | None) -> list[str]:
    found = []
    try:
        split_endpoint(endpoint)
    except ValueError as exc:
        found.append(str(exc))
    if max_request_bytes < 1:
        found.append(f"max_request_bytes must be positive, got {max_request_bytes}")
    if bearer_token is not None and not bearer_token.strip():
        found.append("bearer_token is empty: leave it out to accept requests without a token")
    return found


def all_problems(config: GrpcReceiverConfig | HttpReceiverConfig) -> list[str]:
    """The problems of ``config`` and of its ``tls`` section."""
    tls = [f"tls.{p}" for p in config.tls.problems()] if config.tls is not None else []
    return config.problems() + tls
