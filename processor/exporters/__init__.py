"""OTLP exporters: forward priced spans, metrics and logs over gRPC or HTTP, queued and retried."""

from spanledger.processor.exporters.config import (
    DiskQueueConfig,
    OtlpGrpcExporterConfig,
    OtlpHttpExporterConfig,
    TlsClientConfig,
)
from spanledger.processor.exporters.delivery import ExporterStats
from spanledger.processor.exporters.disk_queue import DiskQueue
from spanledger.processor.exporters.grpc import OtlpGrpcExporter
from spanledger.processor.exporters.http import OtlpHttpExporter
from spanledger.processor.exporters.queue import ExportQueue, MemoryQueue, QueuedRequest

__all__ = [
    "DiskQueue",
    "DiskQueueConfig",
    "ExportQueue",
    "ExporterStats",
    "MemoryQueue",
    "OtlpGrpcExporter",
    "OtlpGrpcExporterConfig",
    "OtlpHttpExporter",
    "OtlpHttpExporterConfig",
    "QueuedRequest",
    "TlsClientConfig",
]
