"""OTLP/HTTP exporter: POSTs merged binary-protobuf requests, gzip-compressed by default.

The URL is the configured one for the exporter's signal (``OtlpHttpExporterConfig.url``).

Each worker keeps one keep-alive connection (standard library ``http.client``); a connection the
server closed while idle is reopened once at no cost to the retry budget.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import ssl
import threading
import time
from urllib.parse import urlsplit

from google.protobuf.message import Message
from google.rpc.status_pb2 import Status

from spanledger.processor.exporters.config import OtlpHttpExporterConfig
from spanledger.processor.exporters.delivery import Attempt, QueuedExporter
from spanledger.processor.otlp import json as otlp_json
from spanledger.version import __version__

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
UNSUPPORTED_STATUSES = frozenset({404, 405, 501})
"""Answers meaning the destination has nothing at the URL: typically a signal it does not take."""
_GZIP_LEVEL = 5
_DETAIL_CHARS = 300
_MAX_RESPONSE_BYTES = 1024 * 1024
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class OtlpHttpExporter(QueuedExporter):
    """Forwards one signal over OTLP/HTTP with custom headers, TLS and gzip as configured."""

    config: OtlpHttpExporterConfig

    def _open_transport(self) -> None:
        config = self.config
        url = config.url(self.signal.name)
        assert url is not None, "the config's problems() reports an underivable URL"
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._display = f"{parts.scheme}://{parts.hostname}:{self._port}{parts.path}"
        self._ssl = _client_context(config) if self._https else None
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"spanledger/{__version__}",
            **config.headers,
        }
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._connections_lock = threading.Lock()

    def _destination(self) -> str:
        return self._display

    def _prepare(self, payload: bytes) -> bytes:
        if self.config.compression == "gzip":
            return gzip.compress(payload, compresslevel=_GZIP_LEVEL)
        return payload

    def _send(self, body: bytes, timeout: float) -> Attempt:
        for _ in range(2):  # a second pass only when a reused connection turned out stale
            connection, reused = self._connection()
            try:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.request("POST", self._path, body, self._headers)
                response = connection.getresponse()
                data = response.read(_MAX_RESPONSE_BYTES + 1)
            except _STALE_CONNECTION as exc:
                self._drop_connection()
                if reused:
                    continue
                return Attempt.retry(f"connection lost: {exc!r}")
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                return Attempt.retry(f"cannot reach the destination: {exc!r}")
            if response.will_close or len(data) > _MAX_RESPONSE_BYTES:
                self._drop_connection()
            return _classify(response, data, self.signal.response_type)
        return Attempt.retry("connection lost twice")

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        if self._https:
            tls = self.config.tls
            connection = _HttpsConnection(
                self._host,
                self._port,
                timeout=self.config.timeout,
                context=self._ssl,
                server_name=(tls.server_name if tls else None) or self._host,
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self.config.timeout
            )
        self._local.connection = connection
        with self._connections_lock:
            self._connections.append(connection)
        return connection, False

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._connections_lock:
                self._connections.remove(connection)

    def _close_transport(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


class _HttpsConnection(http.client.HTTPSConnection):
    """An HTTPS connection that may check the certificate against another name than the host."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext | None,
        server_name: str,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.server_name
        )


def _classify(
    response: http.client.HTTPResponse, data: bytes, response_type: type[Message]
) -> Attempt:
    status = response.status
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if 200 <= status < 300:
        return Attempt.delivered(_parse_response(content_type, data, response_type))
    detail = f"HTTP {status}: {_error_message(content_type, data)}"
    if status in RETRYABLE_STATUSES:
        return Attempt.retry(detail, _retry_after(response.getheader("Retry-After")))
    return Attempt.permanent(detail, unsupported=status in UNSUPPORTED_STATUSES)


def _parse_response(content_type: str, data: bytes, response_type: type[Message]) -> Message | None:
    if not data:
        return None
    try:
        if content_type == "application/json":
            return otlp_json.decode_message(data, response_type)
        return response_type.FromString(data)
    except Exception:  # a success whose body cannot be read is still a success
        return None


def _error_message(content_type: str, data: bytes) -> str:
    try:
        if content_type in ("application/x-protobuf", "application/protobuf"):
            return Status.FromString(data).message or "(no message)"
        if content_type == "application/json":
            return otlp_json.decode_message(data, Status).message or "(no message)"
    except Exception:
        pass
    text = data[:_DETAIL_CHARS].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _client_context(config: OtlpHttpExporterConfig) -> ssl.SSLContext:
    tls = config.tls
    context = ssl.create_default_context(cafile=tls.ca_file if tls else None)
    if tls is not None and tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
