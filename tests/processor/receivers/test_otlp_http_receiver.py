"""OTLP/HTTP receiver over real HTTP: the SDK exporter, raw requests, errors, limits, auth, TLS."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading

import pytest
import requests
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanledger.processor.components import Backpressure, ConsumeResult, PermanentError
from spanledger.processor.otlp.json import encode_request
from spanledger.processor.receivers import HttpReceiverConfig, TlsServerConfig

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def url(receiver, path: str = "/v1/traces") -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{receiver.port}{path}"


def test_sdk_http_exporter_with_gzip_delivers_spans(http_receiver, consumer) -> None:  # type: ignore[no-untyped-def]
    exporter = OTLPSpanExporter(endpoint=url(http_receiver), compression=Compression.Gzip)
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for index in range(3):
        with tracer.start_as_current_span(f"chat #{index}") as span:
            span.set_attribute("gen_ai.usage.output_tokens", 10 + index)
    provider.shutdown()

    spans = consumer.wait_for_spans(3)
    assert [s.name for s in spans] == ["chat #0", "chat #1", "chat #2"]
    tokens = [
        next(a.value.int_value for a in s.attributes if a.key == "gen_ai.usage.output_tokens")
        for s in spans
    ]
    assert tokens == [10, 11, 12]


def test_protobuf_and_json_bodies_get_answers_in_their_own_encoding(
    http_receiver,
    consumer,
    make_request,  # type: ignore[no-untyped-def]
) -> None:
    request = make_request(spans=2)
    with requests.Session() as session:
        binary = session.post(
            url(http_receiver), data=request.SerializeToString(), headers=PROTOBUF
        )
        assert binary.status_code == 200
        assert binary.headers["Content-Type"] == "application/x-protobuf"
        assert ExportTraceServiceResponse.FromString(binary.content) == ExportTraceServiceResponse()

        as_json = session.post(
            url(http_receiver),
            data=encode_request(request),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert as_json.status_code == 200
        assert as_json.headers["Content-Type"] == "application/json"
        assert as_json.json() == {}

        alias = session.post(
            url(http_receiver),
            data=request.SerializeToString(),
            headers={"Content-Type": "application/protobuf"},
        )
        assert alias.status_code == 200
        assert alias.headers["Content-Type"] == "application/protobuf"
    assert consumer.requests == [request, request, request]


def test_partial_success_in_both_encodings(http_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    consumer.behaviour = lambda request: ConsumeResult(rejected_spans=1, error_message="no price")
    body = make_request().SerializeToString()
    binary = requests.post(url(http_receiver), data=body, headers=PROTOBUF)
    parsed = ExportTraceServiceResponse.FromString(binary.content)
    assert (parsed.partial_success.rejected_spans, parsed.partial_success.error_message) == (
        1,
        "no price",
    )
    as_json = requests.post(url(http_receiver), data=encode_request(make_request()), headers=JSON)
    assert as_json.status_code == 200
    assert as_json.json() == {"partialSuccess": {"rejectedSpans": "1", "errorMessage": "no price"}}


def test_gzip_bodies_are_decompressed(http_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    request = make_request(spans=4)
    for headers, body in (
        (PROTOBUF, request.SerializeToString()),
        (JSON, encode_request(request)),
    ):
        response = requests.post(
            url(http_receiver),
            data=gzip.compress(body),
            headers={**headers, "Content-Encoding": "gzip"},
        )
        assert response.status_code == 200
    assert consumer.requests == [request, request]


def test_bad_requests_get_clear_errors_and_the_connection_keeps_serving(
    http_receiver,
    consumer,
    make_request,  # type: ignore[no-untyped-def]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", http_receiver.port, timeout=5)
    cases = [
        ("POST", "/v1/traces", PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f", 400, "not a valid protobuf"),
        ("POST", "/v1/traces", JSON, b'{"resourceSpans": [', 400, "not JSON"),
        (
            "POST",
            "/v1/traces",
            JSON,
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}',
            400,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
        ),
        (
            "POST",
            "/v1/traces",
            {**PROTOBUF, "Content-Encoding": "gzip"},
            b"not gzip",
            400,
            "not valid gzip",
        ),
        ("POST", "/v1/traces", {"Content-Type": "text/plain"}, b"hello", 415, "unsupported"),
        ("POST", "/v1/traces", {}, b"hello", 415, "Content-Type"),
        ("POST", "/v1/traces", {**PROTOBUF, "Content-Encoding": "br"}, b"x", 415, "Encoding"),
        ("POST", "/v1/metrics", PROTOBUF, b"", 404, "/v1/traces"),
        ("GET", "/v1/traces", {}, None, 405, "only POST"),
    ]
    sockets = set()
    for method, path, headers, body, status, message in cases:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        sockets.add(id(connection.sock))
        assert response.status == status, (path, headers, data)
        content_type = response.getheader("Content-Type")
        if content_type == "application/x-protobuf":
            text = Status.FromString(data).message
        elif content_type == "application/json":
            text = json.loads(data)["message"]
        else:
            text = data.decode()
        assert message in text, text
        if status == 405:
            assert response.getheader("Allow") == "POST"

    connection.request("POST", "/v1/traces", make_request().SerializeToString(), PROTOBUF)
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    assert len(sockets) == 1  # every answer kept the connection open
    assert consumer.requests == [make_request()]
    connection.close()


def test_json_errors_are_status_messages_in_json(http_receiver) -> None:  # type: ignore[no-untyped-def]
    response = requests.post(url(http_receiver), data=b"[1, 2]", headers=JSON)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert "expected a JSON object" in body["message"]


def test_gzip_bomb_is_rejected_without_inflating_it(http_receiver_factory, consumer) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(max_request_bytes=1024 * 1024)
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024
    response = requests.post(
        url(receiver), data=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert (
        "decompressed body is larger than the 1048576-byte limit"
        in Status.FromString(response.content).message
    )
    assert consumer.requests == []


def test_oversized_body_is_413_and_the_client_reads_it(http_receiver_factory, consumer) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(max_request_bytes=64 * 1024)
    response = requests.post(url(receiver), data=b"\0" * (4 * 1024 * 1024), headers=PROTOBUF)
    assert response.status_code == 413
    assert "larger than the 65536-byte limit" in Status.FromString(response.content).message
    assert response.headers["Connection"] == "close"
    assert consumer.requests == []
    # The receiver still serves new connections.
    assert requests.post(url(receiver), data=b"", headers=PROTOBUF).status_code == 200


def test_chunked_bodies_are_read_and_bounded(http_receiver_factory, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(max_request_bytes=4096)
    body = make_request(spans=2).SerializeToString()
    pieces = [body[:10], body[10:]]
    response = requests.post(url(receiver), data=iter(pieces), headers=PROTOBUF)
    assert response.status_code == 200
    assert consumer.requests == [make_request(spans=2)]
    too_big = requests.post(url(receiver), data=iter([b"\0" * 3000] * 3), headers=PROTOBUF)
    assert too_big.status_code == 413


@pytest.mark.parametrize("size_line", [b"-5", b"zz", b"", b"0x10"])
def test_malformed_chunked_bodies_are_400(http_receiver, consumer, size_line) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", http_receiver.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\nabcde\r\n0\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):  # the server closes the connection after answering
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"400"
    assert b"chunk" in answer.lower()  # the HTTP parser's words for what is wrong
    assert consumer.requests == []


def test_invalid_content_length_is_400(http_receiver) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", http_receiver.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: -5\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"400"
    assert b"Content-Length" in answer


@pytest.mark.parametrize(
    "case",
    [
        (Backpressure("rollup is full", retry_after=2.2), 503, "3"),
        (Backpressure("rollup is full", retry_after=0.0), 503, "1"),
        (PermanentError("trace id missing"), 400, None),
        (RuntimeError("bug"), 500, None),
    ],
)
def test_consumer_failures_map_to_http_statuses(
    http_receiver,
    consumer,
    make_request,
    case,  # type: ignore[no-untyped-def]
) -> None:
    failure, status, retry_after = case

    def fail(_request: ExportTraceServiceRequest) -> ConsumeResult:
        raise failure

    consumer.behaviour = fail
    response = requests.post(
        url(http_receiver), data=make_request().SerializeToString(), headers=PROTOBUF
    )
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    message = Status.FromString(response.content).message
    if status == 500:
        assert "bug" not in message
    else:
        assert str(failure) in message


def test_bearer_token(http_receiver_factory, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(bearer_token="s3cret")
    body = make_request().SerializeToString()
    for authorization in (None, "Bearer nope", "Basic s3cret", "Bearer"):
        headers = dict(PROTOBUF)
        if authorization:
            headers["Authorization"] = authorization
        response = requests.post(url(receiver), data=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "s3cret" not in response.text
    assert consumer.requests == []
    ok = requests.post(
        url(receiver), data=body, headers={**PROTOBUF, "Authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200
    assert len(consumer.requests) == 1


def test_concurrent_clients_are_all_served(http_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            with requests.Session() as session:
                for index in range(20):
                    request = make_request(spans=2, seed=seed * 100 + index)
                    response = session.post(
                        url(http_receiver), data=request.SerializeToString(), headers=PROTOBUF
                    )
                    assert response.status_code == 200
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(consumer.requests) == 8 * 20
    assert len({s.trace_id for s in consumer.spans()}) == 8 * 20


def test_tls_with_client_certificates(
    http_receiver_factory, consumer, certificates, make_request
) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(
        tls=TlsServerConfig(
            cert_file=str(certificates.server_cert),
            key_file=str(certificates.server_key),
            client_ca_file=str(certificates.ca),
        )
    )
    https = f"https://127.0.0.1:{receiver.port}/v1/traces"
    body = make_request().SerializeToString()
    response = requests.post(
        https,
        data=body,
        headers=PROTOBUF,
        verify=str(certificates.ca),
        cert=(str(certificates.client_cert), str(certificates.client_key)),
    )
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(https, data=body, headers=PROTOBUF, verify=str(certificates.ca), timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url(receiver), data=body, headers=PROTOBUF, timeout=5)
    assert len(consumer.requests) == 1
    # A client that never finishes its handshake does not hold up the others.
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5):
        second = requests.post(
            https,
            data=body,
            headers=PROTOBUF,
            verify=str(certificates.ca),
            cert=(str(certificates.client_cert), str(certificates.client_key)),
            timeout=5,
        )
        assert second.status_code == 200


def test_connections_beyond_the_limit_are_refused(
    http_receiver_factory, consumer, make_request
) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(max_connections=2)
    held = [http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5) for _ in range(2)]
    for connection in held:
        connection.request("POST", "/v1/traces", b"", PROTOBUF)
        assert connection.getresponse().read() == b""
    extra = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        extra.request("POST", "/v1/traces", b"", PROTOBUF)
        extra.getresponse()
    extra.close()
    held[0].close()
    for _ in range(50):  # the server notices the close within a few polls
        retry = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
        try:
            retry.request("POST", "/v1/traces", b"", PROTOBUF)
            if retry.getresponse().status == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            pass
        finally:
            retry.close()
        threading.Event().wait(0.05)
    else:
        pytest.fail("a freed connection slot was never reused")
    held[1].close()


def test_stop_closes_idle_keep_alive_connections(http_receiver_factory, consumer) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory()
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    connection.request("POST", "/v1/traces", b"", PROTOBUF)
    assert connection.getresponse().status == 200
    port = receiver.port
    with pytest.raises(RuntimeError, match="already started"):
        receiver.start()
    receiver.stop(0.2)
    assert connection.sock is not None
    assert connection.sock.recv(1) == b""  # the server closed it
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_config_problems() -> None:
    problems = HttpReceiverConfig(
        endpoint="127.0.0.1:99999", path="v1/traces", max_connections=0, idle_timeout=0
    ).problems()
    assert any("port must be a number" in p for p in problems)
    assert any(p.startswith("path") for p in problems)
    assert any(p.startswith("max_connections") for p in problems)
    assert any(p.startswith("idle_timeout") for p in problems)
    assert HttpReceiverConfig().problems() == []
