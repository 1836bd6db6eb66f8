"""Real OTLP metrics receiving ends for tests: a gRPC MetricsService and an HTTP /v1/metrics."""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue


class Received:
    """Requests received so far, in order."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.changed = threading.Condition()

    def add(self, request: ExportMetricsServiceRequest) -> None:
        with self.changed:
            self.requests.append(request)
            self.changed.notify_all()

    def latest_points(self, name: str) -> tuple[str, list[tuple[dict[str, str], float]]] | None:
        """(unit, [(attributes, value)]) of metric ``name`` in the newest request holding it."""
        with self.changed:
            requests = list(self.requests)
        for request in reversed(requests):
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name == name:
                            points = [
                                (_attributes(p.attributes), p.as_double or float(p.as_int))
                                for p in metric.sum.data_points
                            ]
                            return metric.unit, points
        return None


def _attributes(pairs: list[KeyValue]) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in pairs}


class _Servicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request, context):
        self.received.add(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcMetricsReceiver:
    """An OTLP/gRPC metrics endpoint on 127.0.0.1 (free port)."""

    def __init__(self) -> None:
        self.received = Received()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _Servicer(self.received), self.server
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None)


class HttpMetricsReceiver:
    """An OTLP/HTTP (protobuf) metrics endpoint on 127.0.0.1 (free port)."""

    def __init__(self) -> None:
        self.received = Received()
        self.paths: list[str] = []
        received, paths = self.received, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                paths.append(self.path)
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                received.add(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
