"""A throw-away PostgreSQL server for tests and benchmarks, from Debian's packages.

``PostgresServer`` runs ``initdb`` in a directory of its own, starts ``postgres`` on a free
127.0.0.1 port (TCP only, no Unix socket) with password authentication, and can stop and start
it again on the same port (to test a database that goes away). ``postgres`` refuses to run as
root: as root, every server command runs as the unprivileged ``postgres`` user (created by the
package, or by scripts/postgres/install.sh) through ``runuser``.

    python scripts/postgres/pgserver.py start DIR      # prints the URL and the password file
    python scripts/postgres/pgserver.py stop DIR
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "spanledger"
RUN_AS = "postgres"
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""For tests: a crash of the machine may lose the database, which tests never need."""


def binaries() -> Path:
    """The directory of ``postgres``, ``initdb`` and ``pg_ctl`` (newest Debian version)."""
    override = os.environ.get("SPANLEDGER_PG_BINDIR")
    if override:
        return Path(override)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(v) if (v := Path(p).parent.parent.name).isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise FileNotFoundError("PostgreSQL is not installed: run scripts/postgres/install.sh")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster under ``directory`` (created if missing), on ``port``.

    ``fast`` turns off fsync and friends (tests); benchmarks pass ``fast=False`` to measure
    PostgreSQL as it is configured by default.
    """

    def __init__(self, directory: Path, port: int | None = None, *, fast: bool = True) -> None:
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.password_file = self.directory / "password"
        self.log_file = self.directory / "server.log"
        self.port = port or free_port()
        self.fast = fast
        self.bin = binaries()
        self._as_root = os.geteuid() == 0

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = "postgres") -> str:
        """A URL without the password (give it through ``password_file`` or PGPASSWORD)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", RUN_AS, "--"] if self._as_root else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def init(self) -> None:
        """``initdb`` with the superuser ``spanledger`` and a random password (once)."""
        if (self.data / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_hex(16) + "\n")
        self.password_file.chmod(0o600)
        if self._as_root:
            shutil.chown(self.directory, RUN_AS)
            shutil.chown(self.password_file, RUN_AS)
        self._run(
            str(self.bin / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(self.password_file),
            "--auth-local",
            "trust",
            "--auth-host",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        )

    def start(self, timeout: float = 60) -> None:
        """Start (after ``init`` if needed) and wait until it accepts connections."""
        self.init()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "''",
            **(FAST_SETTINGS if self.fast else {}),
        }
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        self._run(
            str(self.bin / "pg_ctl"),
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "--wait",
            f"--timeout={int(timeout)}",
            "start",
            timeout=timeout + 10,
        )
        self._wait_for_port(timeout)

    def _wait_for_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL did not listen on {self.port}:\n{self._log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, roll back; ``immediate``: abort)."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(str(self.bin / "pg_ctl"), "--pgdata", str(self.data), "--mode", mode, "stop")

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), password=self.password, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def temporary_server(prefix: str = "spanledger-pg-", *, fast: bool = True) -> PostgresServer:
    """A started server in a new directory under the system's temporary directory (which the
    ``postgres`` user can reach, unlike a test's private ``tmp_path``)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    server = PostgresServer(directory, fast=fast)
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int, help="with start: the port [a free one]")
    args = parser.parse_args(argv)
    port_file = args.directory / "port"
    if args.action == "stop":
        port = int(port_file.read_text()) if port_file.exists() else None
        PostgresServer(args.directory, port).stop()
        return 0
    server = PostgresServer(args.directory, args.port)
    server.start()
    port_file.write_text(f"{server.port}\n")
    print(f"url: {server.url()}\npassword_file: {server.password_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
