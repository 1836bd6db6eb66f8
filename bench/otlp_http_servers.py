"""OTLP/HTTP servers compared: spanledger's receiver, a minimal aiohttp app, a minimal uvicorn app.

Every candidate does the same work per request: read the body, parse it as an
``ExportTraceServiceRequest``, count its spans and answer the empty protobuf response. Each runs
in a process of its own; a load generator process keeps ``--connections`` keep-alive connections
busy with 512-span requests. Rounds alternate the candidates; each figure is the median over
rounds with its range. ``--baseline-python`` adds the receiver of another checkout (another venv
with spanledger installed from it), such as the threaded ``http.server`` receiver before it was
replaced, measured in the same rounds.

    python bench/otlp_http_servers.py                      # 5 rounds of 4,000 requests
    python bench/otlp_http_servers.py --rounds 1 --requests 200      # seconds
    python bench/otlp_http_servers.py --baseline-python /tmp/base/.venv/bin/python
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build_traffic, cpu_seconds, fmt_spread

CANDIDATES = ("spanledger", "aiohttp", "uvicorn")
HEADERS = {"Content-Type": "application/x-protobuf"}


# -- the servers (each in its own process: ``--serve NAME``) --------------------------------------


class _Counter:
    """The consumer every candidate hands requests to: counts spans, keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def consume(self, request: object) -> None:
        self.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)  # type: ignore[attr-defined]


def _serve_spanledger() -> None:
    from spanledger.processor.receivers import HttpReceiver, HttpReceiverConfig

    receiver = HttpReceiver(HttpReceiverConfig("127.0.0.1:0"), _Counter())  # type: ignore[arg-type]
    receiver.start()
    print(receiver.port, flush=True)
    sys.stdin.read()
    receiver.stop()


def _serve_aiohttp() -> None:
    import asyncio

    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    counter = _Counter()

    async def export(request: web.Request) -> web.Response:
        counter.consume(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def main() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/traces", export)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


def _serve_uvicorn() -> None:
    import socket

    import uvicorn
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    counter = _Counter()

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        counter.consume(ExportTraceServiceRequest.FromString(b"".join(chunks)))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-protobuf"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, http=os.environ.get("UVICORN_HTTP", "httptools"), loop="asyncio", log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(
        target=lambda: (sys.stdin.read(), setattr(server, "should_exit", True))
    ).start()
    server.run(sockets=[sock])


def _installed(name: str) -> bool:
    import importlib.util

    return name == "spanledger" or importlib.util.find_spec(name) is not None


SERVERS = {"spanledger": _serve_spanledger, "aiohttp": _serve_aiohttp, "uvicorn": _serve_uvicorn}


class Server:
    """A candidate in a subprocess; ``close`` ends it by closing its standard input."""

    def __init__(self, name: str, python: str = sys.executable) -> None:
        candidate = "spanledger" if name.startswith("spanledger") else name
        self.process = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--serve", candidate],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tempfile.gettempdir(),  # outside any checkout, so ``python`` runs its own
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.pid = self.process.pid

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


# -- the load ---------------------------------------------------------------------------------


def _load(port: int, bodies: list[bytes], connections: int) -> tuple[float, int]:
    """Send every body over ``connections`` keep-alive connections; (seconds, failures)."""
    failures = [0]
    lock = threading.Lock()
    shares = [bodies[i::connections] for i in range(connections)]

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in share:
            connection.request("POST", "/v1/traces", body, HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                with lock:
                    failures[0] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return time.perf_counter() - started, failures[0]


def load_main(port: int, requests: int, connections: int) -> None:
    """The load generator process: prints ``seconds failures``."""
    traffic = build_traffic(max(1, requests * 512 // 10), 10, 0.1)
    bodies = [traffic.bodies[i % len(traffic.bodies)] for i in range(requests)]
    seconds, failures = _load(port, bodies, connections)
    print(seconds, failures, flush=True)


def measure(server: Server, requests: int, connections: int) -> dict[str, float]:
    before = cpu_seconds(server.pid)
    output = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load",
            str(server.port),
            str(requests),
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    seconds, failures = float(output[0]), int(output[1])
    cpu = cpu_seconds(server.pid) - before
    spans = requests * 512
    return {
        "rate": spans / seconds,
        "per_cpu": spans / cpu if cpu else float("inf"),
        "cores": cpu / seconds,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000, help="512-span requests per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--baseline-python", help="a python with another spanledger checkout")
    parser.add_argument("--serve", choices=CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        SERVERS[args.serve]()
        return
    if args.load:
        load_main(*args.load)
        return
    names = [name for name in CANDIDATES if _installed(name)]
    for name in sorted(set(CANDIDATES) - set(names)):
        print(f"{name}: skipped, not installed (pip install -e '.[bench]')")
    pythons = dict.fromkeys(names, sys.executable)
    if args.baseline_python:
        names.insert(0, "spanledger (baseline)")
        pythons["spanledger (baseline)"] = args.baseline_python
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            server = Server(name, pythons[name])
            try:
                measure(server, max(50, args.requests // 10), args.connections)  # warm-up
                results[name].append(measure(server, args.requests, args.connections))
            finally:
                server.close()
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds of "
        f"{args.requests:,} requests of 512 spans over {args.connections} keep-alive "
        "connections; median (min-max)"
    )
    for name, runs in results.items():
        failures = sum(run["failures"] for run in runs)
        print(
            f"{name:<22} {fmt_spread([r['rate'] for r in runs]):>28} spans/s wall, "
            f"{fmt_spread([r['per_cpu'] for r in runs]):>28} per server CPU-second, "
            f"{fmt_spread([r['cores'] for r in runs], '.2f')} cores"
            + (f", {failures} failed requests" if failures else "")
        )


if __name__ == "__main__":
    main()
