"""OTLP receivers: gRPC (trace, metrics and logs services) and HTTP (/v1/traces, metrics, logs)."""

from spanledger.processor.receivers.config import (
    DEFAULT_MAX_REQUEST_BYTES,
    GrpcReceiverConfig,
    HttpReceiverConfig,
    TlsServerConfig,
)
from spanledger.processor.receivers.grpc import GrpcReceiver
from spanledger.processor.receivers.http import HttpReceiver

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "GrpcReceiver",
    "GrpcReceiverConfig",
    "HttpReceiver",
    "HttpReceiverConfig",
    "TlsServerConfig",
]
