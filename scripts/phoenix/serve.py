"""Run ``phoenix serve`` with every listener on the loopback interface.

Phoenix binds its HTTP server to ``PHOENIX_HOST`` but its OTLP/gRPC server to every interface
(``[::]``). This launcher, run with the Python of ``.phoenix-venv``, keeps the gRPC server on
``PHOENIX_HOST`` as well, then hands over to Phoenix's own command line:

    .phoenix-venv/bin/python scripts/phoenix/serve.py serve

Ports and storage come from Phoenix's environment variables: ``PHOENIX_HOST``, ``PHOENIX_PORT``
(UI, REST API and OTLP/HTTP), ``PHOENIX_GRPC_PORT`` (OTLP/gRPC) and ``PHOENIX_WORKING_DIR``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ANY_ADDRESS = "[::]:"


def _keep_grpc_on_host(host: str) -> None:
    from grpc.aio._server import Server

    insecure, secure = Server.add_insecure_port, Server.add_secure_port
    bound = f"[{host}]:" if ":" in host else f"{host}:"

    def add_insecure_port(self: Server, address: str) -> int:
        return insecure(self, address.replace(ANY_ADDRESS, bound, 1))

    def add_secure_port(self: Server, address: str, credentials: Any) -> int:
        return secure(self, address.replace(ANY_ADDRESS, bound, 1), credentials)

    Server.add_insecure_port = add_insecure_port  # type: ignore[method-assign]
    Server.add_secure_port = add_secure_port  # type: ignore[method-assign]


def main() -> int:
    host = os.environ.setdefault("PHOENIX_HOST", "127.0.0.1")
    os.environ.setdefault("PHOENIX_TELEMETRY_ENABLED", "false")
    _keep_grpc_on_host(host)
    from phoenix.server.main import main as phoenix_main

    sys.argv = ["phoenix", *sys.argv[1:]]
    return phoenix_main() or 0


if __name__ == "__main__":
    raise SystemExit(main())
