"""Which hosts may receive W3C baggage.

An allow-list is a comma-separated list of entries:

- ``api.billing.example`` — that host name exactly (case-insensitive);
- ``*.corp.example`` — any host under ``corp.example`` (not ``corp.example`` itself);
- ``10.0.0.0/8``, ``::1`` — an IP network or address, matched against IP literal hosts;
- ``<single-label>`` — names without a dot, such as ``billing`` in a cluster or compose network;
- ``*`` — every host.

An empty list lets baggage go nowhere. Host names are matched as written in the URL; they are not
resolved, so a public name pointing at a private address is still public.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

SINGLE_LABEL = "<single-label>"
ANY_HOST = "*"

DEFAULT_BAGGAGE_HOSTS = ",".join(
    (
        "localhost",
        "*.localhost",
        "127.0.0.0/8",
        "::1",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "*.internal",
        "*.local",
        "*.svc",
        "*.cluster.local",
        SINGLE_LABEL,
    )
)
"""Loopback, private networks and internal-only names: never an LLM vendor's public endpoint."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HostAllowList:
    """A parsed host allow-list; ``allows(host)`` answers for one request."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    single_label: bool = False
    any_host: bool = False
    source: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> HostAllowList:
        """Parses ``text``, skipping entries that are not understood."""
        return cls.parse_reporting(text)[0]

    @classmethod
    def parse_reporting(cls, text: str) -> tuple[HostAllowList, list[str]]:
        """Parses ``text`` and returns the entries that were not understood alongside."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        single_label = any_host = False
        problems: list[str] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == ANY_HOST:
                any_host = True
            elif entry == SINGLE_LABEL:
                single_label = True
            elif entry.startswith("*.") and _is_host_name(entry[2:]):
                suffixes.append("." + entry[2:].rstrip("."))
            elif (network := _network(entry)) is not None:
                networks.append(network)
            elif _is_host_name(entry):
                names.add(entry.rstrip("."))
            else:
                problems.append(raw.strip())
        allow_list = cls(
            names=frozenset(names),
            suffixes=tuple(suffixes),
            networks=tuple(networks),
            single_label=single_label,
            any_host=any_host,
            source=text,
        )
        return allow_list, problems

    def allows(self, host: str | None) -> bool:
        """Whether a request to ``host`` may carry baggage. An unknown host may not."""
        if not host:
            return False
        if self.any_host:
            return True
        name = host.strip().strip("[]").lower().rstrip(".")
        address = _address(name)
        if address is not None:
            return any(address in network for network in self.networks)
        if name in self.names:
            return True
        if self.single_label and "." not in name:
            return True
        return any(name.endswith(suffix) for suffix in self.suffixes)


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None


def _is_host_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return all(
        label and len(label) <= 63 and all(ch.isalnum() or ch in "-_" for ch in label)
        for label in labels
    )


DEFAULT_HOST_ALLOW_LIST = HostAllowList.parse(DEFAULT_BAGGAGE_HOSTS)
