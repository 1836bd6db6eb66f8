"""OTLP/gRPC exporter: sends merged, already-serialized requests to the signal's ``Export``.

``TraceService/Export``, ``MetricsService/Export`` or ``LogsService/Export``. Channels to the same
destination with the same settings share their connection (gRPC's global subchannel pool), so
the exporters of one destination's three signals use one connection.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from spanledger.processor.exporters.config import OtlpGrpcExporterConfig, grpc_target
from spanledger.processor.exporters.delivery import Attempt, QueuedExporter
from spanledger.processor.otlp.signals import TRACES
from spanledger.version import __version__

_RETRYABLE = {
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}
_RETRY_INFO_TYPE = "type.googleapis.com/" + RetryInfo.DESCRIPTOR.full_name


class OtlpGrpcExporter(QueuedExporter):
    """Forwards one signal over OTLP/gRPC, with gzip, TLS and custom metadata as configured."""

    config: OtlpGrpcExporterConfig

    def _open_transport(self) -> None:
        config = self.config
        self._target = grpc_target(config.endpoint)
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        options: list[tuple[str, str | int]] = [
            ("grpc.primary_user_agent", f"spanledger/{__version__}"),
            # Reconnect soon after the destination comes back (gRPC's own backoff reaches 120 s).
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        compression = (
            grpc.Compression.Gzip
            if config.compression == "gzip"
            else grpc.Compression.NoCompression
        )
        if config.secure():
            options += _tls_options(config)
            credentials = _channel_credentials(config)
            self._channel = grpc.secure_channel(self._target, credentials, options, compression)
        else:
            self._channel = grpc.insecure_channel(self._target, options, compression)
        self._call = self._channel.unary_unary(
            self.signal.grpc_method,
            request_serializer=None,
            response_deserializer=self.signal.response_type.FromString,
        )

    def _destination(self) -> str:
        return self._target if self.signal is TRACES else f"{self._target}, {self.signal.name}"

    def _send(self, body: bytes, timeout: float) -> Attempt:
        try:
            response = self._call(body, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            return _classify(error)
        return Attempt.delivered(response)

    def _close_transport(self) -> None:
        self._channel.close()


def _classify(error: grpc.RpcError) -> Attempt:
    code = error.code()  # type: ignore[attr-defined]
    detail = f"{code.name}: {error.details()}"  # type: ignore[attr-defined]
    retry_after = _retry_delay(error.trailing_metadata())  # type: ignore[attr-defined]
    if code in _RETRYABLE:
        return Attempt.retry(detail, retry_after)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None:
        return Attempt.retry(detail, retry_after)
    return Attempt.permanent(detail, unsupported=code is grpc.StatusCode.UNIMPLEMENTED)


def _retry_delay(metadata: object) -> float | None:
    """The RetryInfo delay in the trailers (status details or the bare RetryInfo key), if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        info = None
        if key == "google.rpc.retryinfo-bin":
            info = RetryInfo.FromString(value)
        elif key == "grpc-status-details-bin":
            for detail in Status.FromString(value).details:
                if detail.type_url == _RETRY_INFO_TYPE:
                    info = RetryInfo.FromString(detail.value)
        if info is not None:
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def _channel_credentials(config: OtlpGrpcExporterConfig) -> grpc.ChannelCredentials:
    tls = config.tls
    if tls is None:
        return grpc.ssl_channel_credentials()
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file),
        private_key=_read(tls.key_file),
        certificate_chain=_read(tls.cert_file),
    )


def _tls_options(config: OtlpGrpcExporterConfig) -> list[tuple[str, str]]:
    if config.tls is not None and config.tls.server_name:
        return [("grpc.ssl_target_name_override", config.tls.server_name)]
    return []


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None
