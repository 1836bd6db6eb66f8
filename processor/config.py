"""The processor's configuration: one YAML file with collector-like sections, every key optional.

```yaml
receivers: {otlp: {grpc: {endpoint: 127.0.0.1:4317}, http: {endpoint: 127.0.0.1:4318}}}
exporters: [{otlp_http: {endpoint: http://127.0.0.1:6006/v1/traces}}, {otlp_grpc: {endpoint: ...}}]
tags: [customer, feature, team, env]
pricing: {overrides: prices.yaml, markup_percent: 0, prefer_reported: true}
rollup: {trace_idle: 2s, root_grace: 1s, max_traces: 100000}
metrics: {prometheus: {endpoint: 127.0.0.1:9464}, otlp: {endpoint: ..., protocol: grpc}}
ledger: {path: spanledger.db, retention_days: 90}   # or {url: postgresql://…, password_file: …}
service: {shutdown_timeout: 10s, write_ahead: {directory: wal, max_bytes: 536870912}}
budgets: {limits: [{name: acme, match: {customer: acme}, amount_usd: 100, period: monthly}]}
memory_limiter: {limit_mib: 1024, spike_limit_mib: 256, check_interval: 1s}   # null: off
```

``${env:NAME}`` anywhere in a string value is replaced by that environment variable, so secrets
such as an exporter's authorization header stay out of the file. Relative file paths are taken
from the directory of the config file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spanledger.processor.config_schema import Duration, Problems, build, parse_duration
from spanledger.processor.intake.memory_limiter import MemoryLimiterConfig
from spanledger.processor.intake.write_ahead import WriteAheadConfig
from spanledger.processor.pricing import PricingConfig
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.registry import EXPORTER, RECEIVER, SINK, registry
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.sinks.budgets import BudgetsConfig
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.semconv import DEFAULT_TAG_KEYS

SECTIONS = (
    "receivers",
    "exporters",
    "tags",
    "pricing",
    "rollup",
    "metrics",
    "ledger",
    "service",
    "budgets",
    "memory_limiter",
)
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists each with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class ServiceConfig:
    """Process-level settings."""

    shutdown_timeout: Duration = 10.0
    """Seconds to drain waiting traces and exporter queues after SIGTERM before exiting."""
    write_ahead: WriteAheadConfig | None = None
    """Log accepted requests on disk before answering, so a killed processor loses nothing."""

    def problems(self) -> list[str]:
        return [] if self.shutdown_timeout > 0 else ["shutdown_timeout must be positive"]


@dataclass
class Config:
    """Everything the processor needs, with the defaults that run with no file at all."""

    grpc: GrpcReceiverConfig | None = field(default_factory=GrpcReceiverConfig)
    http: HttpReceiverConfig | None = field(default_factory=HttpReceiverConfig)
    exporters: list[Any] = field(default_factory=list)
    """The config of each exporter, of the kinds in the registry (``otlp_http``, ``otlp_grpc``)."""
    tags: list[str] = field(default_factory=lambda: list(DEFAULT_TAG_KEYS))
    pricing: PricingConfig = field(default_factory=PricingConfig)
    rollup: RollupConfig = field(default_factory=RollupConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    memory_limiter: MemoryLimiterConfig | None = field(default_factory=MemoryLimiterConfig)
    """Refuse data while memory is high (None: never)."""
    source: Path | None = None
    """The file this came from, if any."""

    def secrets(self) -> list[str]:
        """Every token, password, webhook secret and exporter header value in the config, so
        that logs and errors can mask them (``spanledger.processor.redaction``)."""
        from urllib.parse import unquote, urlsplit

        found: list[str | None] = []
        for receiver in (self.grpc, self.http):
            if receiver is not None:
                found.append(receiver.bearer_token)
        for exporter in self.exporters:
            headers = getattr(exporter, "headers", {})
            found += headers.values()
            found += [value.partition(" ")[2] for value in headers.values()]
        found.append(self.metrics.prometheus_bearer_token)
        budgets = self.budgets
        if budgets.status is not None:
            found.append(budgets.status.bearer_token)
        if budgets.webhook is not None:
            found += [budgets.webhook.secret, *budgets.webhook.headers.values()]
        if budgets.shared is not None:
            password = urlsplit(budgets.shared.redis).password
            found.append(unquote(password) if password else None)
        return [value for value in found if value]

    def warnings(self) -> list[str]:
        """What is allowed but probably unintended, one line each."""
        found = []
        webhook = self.budgets.webhook
        if webhook is not None and not webhook.secret:
            found.append(
                "budgets.webhook: no secret, so the receiver cannot tell these alerts from forged "
                "ones; set secret to sign them (x-spanledger-signature)"
            )
        return found


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and validate ``path`` (None: defaults); raise ``ConfigError`` listing every problem."""
    config, problems = check_config(path)
    if problems or config is None:
        raise ConfigError(problems or ["unreadable configuration"])
    return config


def check_config(path: str | os.PathLike[str] | None) -> tuple[Config | None, list[str]]:
    """Validate ``path`` and return the config (when usable) with every problem found."""
    if path is None:
        return Config(), []
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{source}: cannot read: {exc.strerror or exc}"]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return None, [f"{source}: not valid YAML: {exc}"]
    lines: dict[str, int] = {}
    raw = _plain(node, "", lines) if node is not None else {}
    problems = Problems(lines)
    config = from_mapping(raw, problems, base_dir=source.resolve().parent)
    if config is not None:
        config.source = source
    return config, [f"{source}: {item}" for item in problems.items]


def from_mapping(raw: object, problems: Problems, base_dir: Path | None = None) -> Config | None:
    """Build a ``Config`` from already-parsed YAML, adding problems with their locations."""
    if not isinstance(raw, Mapping):
        problems.add("", "the top level must be a mapping of sections")
        return None
    raw = _expand_env(raw, "", problems)
    if base_dir is not None:
        raw = _resolve_paths(raw, base_dir)
    sections = [*SECTIONS, *(n for n in registry().names(SINK) if n not in SECTIONS)]
    for key in raw:
        if key not in sections:
            problems.add(str(key), f"unknown section (known sections: {', '.join(sections)})")
    config = Config()
    _receivers(raw.get("receivers"), config, problems)
    config.exporters = _exporters(raw.get("exporters"), problems)
    config.tags = _tags(raw.get("tags", list(DEFAULT_TAG_KEYS)), problems)
    config.pricing = (
        build(PricingConfig, raw.get("pricing"), "pricing", problems) or PricingConfig()
    )
    config.rollup = build(RollupConfig, raw.get("rollup"), "rollup", problems) or RollupConfig()
    for kind in registry().kinds(SINK):
        setattr(
            config, kind.name, kind.read(raw.get(kind.name), kind.name, problems) or kind.config()
        )
    config.service = (
        build(ServiceConfig, raw.get("service"), "service", problems) or ServiceConfig()
    )
    if "memory_limiter" in raw and raw["memory_limiter"] is None:
        config.memory_limiter = None
    else:
        config.memory_limiter = build(
            MemoryLimiterConfig, raw.get("memory_limiter"), "memory_limiter", problems
        )
    for message in config.budgets.tag_problems(config.tags):
        problems.add("", message)
    return config


def _receivers(raw: object, config: Config, problems: Problems) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        problems.add("receivers", "expected a mapping with an 'otlp' receiver")
        return
    for key in raw:
        if key != "otlp":
            problems.add(f"receivers.{key}", "unknown receiver (known: otlp)")
    otlp = raw.get("otlp") or {}
    kinds = registry().kinds(RECEIVER)
    names = [kind.name for kind in kinds]
    if not isinstance(otlp, Mapping):
        problems.add(
            "receivers.otlp", f"expected a mapping with {' and/or '.join(map(repr, names))}"
        )
        return
    for key in otlp:
        if key not in names:
            problems.add(f"receivers.otlp.{key}", f"unknown protocol (known: {', '.join(names)})")
    for kind in kinds:
        if kind.name not in otlp:
            continue
        value = otlp[kind.name]
        where = f"receivers.otlp.{kind.name}"
        setattr(config, kind.name, None if value is None else kind.read(value, where, problems))
    if all(getattr(config, name, None) is None for name in names):
        problems.add(
            "receivers.otlp", "both receivers are disabled: nothing could reach the processor"
        )


def _exporters(raw: object, problems: Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add("exporters", "expected a list such as [{otlp_http: {endpoint: ...}}]")
        return []
    built = []
    known = ", ".join(registry().names(EXPORTER))
    for index, item in enumerate(raw):
        where = f"exporters[{index}]"
        if not isinstance(item, Mapping) or len(item) != 1:
            problems.add(where, f"expected one key naming the exporter ({known})")
            continue
        ((name, settings),) = item.items()
        kind = registry().find(EXPORTER, name)
        if kind is None:
            problems.add(f"{where}.{name}", f"unknown exporter (known: {known})")
            continue
        exporter = kind.read(settings, f"{where}.{name}", problems)
        if exporter is not None:
            built.append(exporter)
    return built


def _tags(raw: object, problems: Problems) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        problems.add("tags", "expected a list of tag keys such as [customer, feature, team, env]")
        return list(DEFAULT_TAG_KEYS)
    for index, key in enumerate(raw):
        if not _TAG_KEY.match(key):
            problems.add(
                f"tags[{index}]", f"{key!r} is not a usable tag key (letters, digits, _ . -)"
            )
    if len(set(raw)) != len(raw):
        problems.add("tags", "a tag key is listed twice")
    return list(dict.fromkeys(raw))


def _resolve_paths(raw: Any, base_dir: Path, where: str = "") -> Any:
    """Take relative file paths written in the file from the file's directory.

    File paths are every ``*_file`` key (TLS), every ``directory`` key (disk queues and the
    write-ahead log), ``pricing.overrides`` and ``ledger.path``.
    """
    if isinstance(raw, list):
        return [_resolve_paths(item, base_dir, where) for item in raw]
    if not isinstance(raw, Mapping):
        return raw
    resolved = {}
    for key, value in raw.items():
        place = f"{where}.{key}" if where else str(key)
        is_path = str(key).endswith("_file") or key == "directory"
        is_path = is_path or place in ("pricing.overrides", "ledger.path")
        if is_path and isinstance(value, str) and value and not Path(value).is_absolute():
            resolved[key] = str(base_dir / value)
        else:
            resolved[key] = _resolve_paths(value, base_dir, place)
    return resolved


def _expand_env(value: Any, where: str, problems: Problems) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.add(where, f"environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV.sub(substitute, value)
    if isinstance(value, Mapping):
        return {
            k: _expand_env(v, f"{where}.{k}" if where else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _plain(node: yaml.Node, where: str, lines: dict[str, int]) -> Any:
    """Construct plain Python values from a YAML node, remembering each value's line."""
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            result[key] = _plain(value_node, f"{where}.{key}" if where else str(key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, f"{where}[{i}]", lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


__all__ = [
    "Config",
    "ConfigError",
    "ServiceConfig",
    "check_config",
    "load_config",
    "parse_duration",
]
