"""Throughput of the OTLP edges on this machine (a benchmark, not a test; run it by hand).

    python bench/otlp_edges.py [--seconds 5] [--spans 512] [--clients 4]

A receiver runs in this process with a consumer that only counts spans; load comes from separate
client processes (so their work does not share this process's interpreter lock). Then an exporter
in this process forwards to a receiver in a child process. Figures are directional: compare them
only with runs on the same machine.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import multiprocessing
import threading
import time
from collections.abc import Callable

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.components import ConsumeResult
from spanledger.processor.exporters import (
    OtlpGrpcExporter,
    OtlpGrpcExporterConfig,
    OtlpHttpExporter,
    OtlpHttpExporterConfig,
    TlsClientConfig,
)
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)

_MP = multiprocessing.get_context("spawn")  # no fork of a process running gRPC threads
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class CountingConsumer:
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            self.spans += count
        return ConsumeResult()


def make_request(spans: int, seed: int = 1) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    scope = resource_spans.scope_spans.add()
    for index in range(spans):
        scope.spans.append(
            Span(
                trace_id=(seed * 100_000 + index // 8).to_bytes(16, "big"),
                span_id=(seed * 100_000 + index + 1).to_bytes(8, "big"),
                name="chat gpt-4o-mini",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_700_000_000_000_000_000,
                end_time_unix_nano=1_700_000_000_500_000_000,
                attributes=[
                    KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                    KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o")),
                    KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=1200)),
                    KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=300)),
                    KeyValue(key="customer", value=AnyValue(string_value="acme")),
                    KeyValue(key="feature", value=AnyValue(string_value="search")),
                ],
            )
        )
    return request


def grpc_client(port: int, payload: bytes, seconds: float, in_flight: int) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            call(payload, timeout=30)

    threads = [threading.Thread(target=loop) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()


def http_client(port: int, payload: bytes, seconds: float, gzipped: bool) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/x-protobuf"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.request("POST", "/v1/traces", payload, headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    connection.close()


def measure(consumer: CountingConsumer, clients: list[multiprocessing.Process]) -> float:
    for client in clients:
        client.start()
    time.sleep(0.5)  # warm-up: connections and first requests
    start_spans, started = consumer.spans, time.monotonic()
    for client in clients:
        client.join()
    return (consumer.spans - start_spans) / (time.monotonic() - started)


def receiver_child(kind: str, ports: multiprocessing.Queue, counted: multiprocessing.Queue) -> None:
    """Run a receiver until it has counted the spans the parent reports having sent."""
    consumer = CountingConsumer()
    receiver: GrpcReceiver | HttpReceiver
    if kind == "grpc":
        receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), consumer)
    else:
        receiver = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0"), consumer)
    receiver.start()
    ports.put(receiver.port)
    expected = int(counted.get(timeout=120))
    deadline = time.monotonic() + 60
    while consumer.spans < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    counted.put(consumer.spans)
    receiver.stop(0.5)


def bench_exporter(name: str, factory: Callable[[int], object], spans: int, seconds: float) -> None:
    kind = "grpc" if "Grpc" in name else "http"
    ports: multiprocessing.Queue = _MP.Queue()
    counted: multiprocessing.Queue = _MP.Queue()
    child = _MP.Process(target=receiver_child, args=(kind, ports, counted))
    child.start()
    exporter = factory(int(ports.get(timeout=30)))
    request = make_request(spans)
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            exporter.export(request)  # type: ignore[attr-defined]
            sent += spans
        except Exception:  # Backpressure: the queue is full, let the worker catch up
            time.sleep(0.001)
    exporter.shutdown(60)  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    counted.put(sent)
    received = counted.get(timeout=90)
    child.join(10)
    print(f"{name:<34} {received / elapsed:>10,.0f} spans/s  ({received:,} of {sent:,} delivered)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--spans", type=int, default=512, help="spans per request")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()
    payload = make_request(args.spans).SerializeToString()
    print(f"request: {args.spans} spans, {len(payload):,} bytes; {args.clients} client processes")

    consumer = CountingConsumer()
    grpc_receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), consumer)
    grpc_receiver.start()
    clients = [
        _MP.Process(target=grpc_client, args=(grpc_receiver.port, payload, args.seconds, 2))
        for _ in range(args.clients)
    ]
    print(f"{'GrpcReceiver':<34} {measure(consumer, clients):>10,.0f} spans/s")
    grpc_receiver.stop(0.5)

    for gzipped in (False, True):
        consumer = CountingConsumer()
        http_receiver = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0"), consumer)
        http_receiver.start()
        body = gzip.compress(payload, 5) if gzipped else payload
        clients = [
            _MP.Process(target=http_client, args=(http_receiver.port, body, args.seconds, gzipped))
            for _ in range(args.clients)
        ]
        label = "HttpReceiver (protobuf, gzip)" if gzipped else "HttpReceiver (protobuf)"
        print(f"{label:<34} {measure(consumer, clients):>10,.0f} spans/s")
        http_receiver.stop(0.5)

    plain = TlsClientConfig(insecure=True)
    bench_exporter(
        "OtlpGrpcExporter (gzip)",
        lambda port: OtlpGrpcExporter(OtlpGrpcExporterConfig(f"127.0.0.1:{port}", tls=plain)),
        args.spans,
        args.seconds,
    )
    bench_exporter(
        "OtlpGrpcExporter (no compression)",
        lambda port: OtlpGrpcExporter(
            OtlpGrpcExporterConfig(f"127.0.0.1:{port}", tls=plain, compression=None)
        ),
        args.spans,
        args.seconds,
    )
    bench_exporter(
        "OtlpHttpExporter (gzip)",
        lambda port: OtlpHttpExporter(OtlpHttpExporterConfig(f"http://127.0.0.1:{port}/v1/traces")),
        args.spans,
        args.seconds,
    )


if __name__ == "__main__":
    main()
