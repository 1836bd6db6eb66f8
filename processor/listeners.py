"""The addresses ``spanledger serve`` listens on, checked before anything starts.

Each must be safe to open: one bound beyond loopback (``0.0.0.0``, ``::``, a LAN address, a host
name that is not only loopback, or ``:port``) needs authentication (a bearer token; for the
receivers also TLS client certificates) unless its component says ``insecure: true``
(``exposure_problems``). Then each must be free:

A port that is busy or not permitted is reported on one line naming the setting, such as
``receivers.otlp.grpc.endpoint 127.0.0.1:4317: address already in use``. Every address is bound
and listened on as the servers will (``SO_REUSEADDR``), all at the same time so that two settings
naming one port are caught too, then released. The gRPC server is only handed a port that was
free a moment before, so its C core has no bind failure of its own to print.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the processor's modules are loaded only by those who list its listeners
    from spanledger.processor.config import Config


@dataclass(frozen=True)
class Listener:
    """One address the processor will listen on, and the setting that names it."""

    setting: str
    """Where in the config file, e.g. ``receivers.otlp.grpc.endpoint``."""
    endpoint: str
    """As written, e.g. ``127.0.0.1:4317``."""
    host: str
    port: int
    authenticated: bool = False
    """Whether every request must prove who sent it (bearer token, client certificate)."""
    insecure: bool = False
    """The component's ``insecure: true``: open beyond loopback without authentication."""
    remedy: str = "bearer_token"
    """The settings that would authenticate it, for the problem's text."""

    @property
    def component(self) -> str:
        """The setting's section, e.g. ``receivers.otlp.grpc``."""
        return self.setting.rpartition(".")[0]


class ListenError(OSError):
    """A configured address cannot be listened on; the message is one line for people."""

    def __init__(self, listener: Listener, reason: str) -> None:
        super().__init__(f"{listener.setting} {listener.endpoint}: {reason}")
        self.listener = listener


def configured_listeners(config: Config) -> list[Listener]:
    """The addresses ``config`` makes the processor listen on, in start-up order."""
    from spanledger.processor.sinks.metrics.config import split_host_port

    found = []
    receivers = (("grpc", config.grpc), ("http", config.http))
    for name, receiver in receivers:
        if receiver is None:
            continue
        client_certificates = receiver.tls is not None and bool(receiver.tls.client_ca_file)
        found.append(
            _listener(
                f"receivers.otlp.{name}.endpoint",
                receiver.endpoint,
                authenticated=receiver.bearer_token is not None or client_certificates,
                insecure=receiver.insecure,
                remedy="bearer_token (or tls.client_ca_file)",
            )
        )
    metrics = config.metrics
    if metrics.prometheus_endpoint is not None:
        endpoint = metrics.prometheus_endpoint
        found.append(
            Listener(
                "metrics.prometheus.endpoint",
                endpoint,
                *split_host_port(endpoint),
                authenticated=metrics.prometheus_bearer_token is not None,
                insecure=metrics.prometheus_insecure,
            )
        )
    if config.budgets.active and config.budgets.status is not None:
        status = config.budgets.status
        host, _, port = status.endpoint.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        found.append(
            Listener(
                "budgets.status.endpoint",
                status.endpoint,
                host,
                int(port),
                authenticated=status.bearer_token is not None,
                insecure=status.insecure,
            )
        )
    return found


def exposure_problems(listeners: Sequence[Listener]) -> list[str]:
    """One line per listener open beyond loopback with no authentication nor ``insecure: true``.

    Each names the setting, e.g. ``receivers.otlp.http.endpoint 0.0.0.0:4318: listens beyond
    loopback without authentication; ...``.
    """
    return [
        f"{listener.setting} {listener.endpoint}: listens beyond loopback without "
        f"authentication; set {listener.component}.{listener.remedy}, or "
        f"{listener.component}.insecure: true to accept anyone who can reach it"
        for listener in listeners
        if not (listener.authenticated or listener.insecure or is_loopback(listener.host))
    ]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``127.0.0.0/8``, ``::1``,
    ``localhost``, or a name resolving to loopback addresses only). ``""``, ``0.0.0.0`` and
    ``::`` mean every interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(found) and all(
        ipaddress.ip_address(address[4][0].split("%")[0]).is_loopback for address in found
    )


def check_listeners(listeners: Sequence[Listener]) -> None:
    """Raise ``ListenError`` for the first address that cannot be listened on (port 0 can)."""
    held: list[tuple[Listener, socket.socket]] = []
    try:
        for listener in listeners:
            if listener.port != 0:
                held.append((listener, _listen(listener, [h for h, _ in held])))
    finally:
        for _, sock in held:
            sock.close()


def _listener(setting: str, endpoint: str, **safety: object) -> Listener:
    from spanledger.processor.receivers.config import split_endpoint

    host, port = split_endpoint(endpoint)
    return Listener(setting, endpoint, host, port, **safety)  # type: ignore[arg-type]


def _listen(listener: Listener, earlier: Sequence[Listener]) -> socket.socket:
    try:
        addresses = socket.getaddrinfo(
            listener.host, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(listener, f"cannot resolve {listener.host!r}: {exc.strerror}") from None
    failure: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen()
        except OSError as exc:
            sock.close()
            failure = failure or exc
        else:
            return sock
    assert failure is not None
    raise ListenError(listener, _reason(failure, listener, earlier)) from None


def reason_of(failure: OSError) -> str:
    """The system's words for ``failure``, to follow a colon: ``address already in use``."""
    text = failure.strerror or str(failure)
    return text[:1].lower() + text[1:]


def _reason(failure: OSError, listener: Listener, earlier: Sequence[Listener]) -> str:
    text = reason_of(failure)
    if failure.errno == errno.EADDRINUSE:
        same = [e.setting for e in earlier if e.port == listener.port]
        if same:
            text += f" (also named by {same[0]})"
    elif failure.errno == errno.EACCES and listener.port < 1024:
        text += " (ports below 1024 usually need privileges)"
    return text
