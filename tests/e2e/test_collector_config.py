"""The files in collector-config/ are wired together: each hop sends where the next one listens.

Collector files are read as plain YAML and checked for structure (every component a pipeline
names is defined, every defined component is used, component types are ones the contrib
distribution has). Processor files are read with the processor's own ``load_config``, so their
endpoints are the ones ``spanledger serve`` would use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from spanledger.processor.config import Config, ConfigError, load_config
from spanledger.processor.exporters import OtlpGrpcExporterConfig, OtlpHttpExporterConfig
from spanledger.processor.exporters.config import grpc_target

CONFIG_DIR = Path(__file__).resolve().parents[2] / "collector-config"
COLLECTOR_FILES = sorted(CONFIG_DIR.glob("*/*collector*.yaml"))
PROCESSOR_FILES = sorted(p for p in CONFIG_DIR.glob("*/*.yaml") if p not in COLLECTOR_FILES)
SECRETS = {"LANGFUSE_AUTH": "cGstbGYtMTpzay1sZi0x", "HONEYCOMB_API_KEY": "hc-test-key"}

KNOWN_TYPES = {
    "receivers": {"otlp", "prometheus"},
    "processors": {"batch", "memory_limiter"},
    "exporters": {"otlp_grpc", "otlp_http", "load_balancing", "debug"},
}
SDK_DEFAULT_GRPC = "127.0.0.1:4317"
SDK_DEFAULT_HTTP = "127.0.0.1:4318"


def read_collector(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path}: top level must be a mapping"
    return document


def read_processor(path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return load_config(path)


def host_port(endpoint: str) -> tuple[str, int]:
    """``host:port`` or a URL as ``(host, port)``, the way both sides would dial or bind it."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", parts.port or default
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


def otlp_receiver(collector: Mapping[str, Any], protocol: str) -> str:
    return collector["receivers"]["otlp"]["protocols"][protocol]["endpoint"]


def only_exporter(config: Config) -> OtlpGrpcExporterConfig | OtlpHttpExporterConfig:
    assert len(config.exporters) == 1, config.exporters
    return config.exporters[0]


def listeners(config: Config) -> list[tuple[str, int]]:
    found = []
    for receiver in (config.grpc, config.http):
        if receiver is not None:
            found.append(host_port(receiver.endpoint))
    if config.metrics.prometheus_endpoint:
        found.append(host_port(config.metrics.prometheus_endpoint))
    return found


def collector_listeners(collector: Mapping[str, Any]) -> list[tuple[str, int]]:
    protocols = collector["receivers"].get("otlp", {}).get("protocols", {})
    return [host_port(p["endpoint"]) for p in protocols.values()]


@pytest.mark.parametrize("path", COLLECTOR_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_collector_file_is_wired(path: Path) -> None:
    collector = read_collector(path)
    assert set(collector) <= {"receivers", "processors", "exporters", "extensions", "service"}
    pipelines = collector["service"]["pipelines"]
    assert pipelines, f"{path}: no pipeline"
    used: dict[str, set[str]] = {kind: set() for kind in KNOWN_TYPES}
    for name, pipeline in pipelines.items():
        assert name.split("/")[0] in ("traces", "metrics", "logs"), name
        assert pipeline["receivers"] and pipeline["exporters"], f"{path}: {name} goes nowhere"
        for kind in KNOWN_TYPES:
            for component in pipeline.get(kind, []):
                assert component in collector.get(kind, {}), f"{path}: {component} undefined"
                used[kind].add(component)
    for kind, known in KNOWN_TYPES.items():
        defined = set(collector.get(kind) or {})
        assert defined == used[kind], f"{path}: {kind} defined but unused: {defined - used[kind]}"
        for component in defined:
            assert component.split("/")[0] in known, f"{path}: unknown {kind} type {component}"
    assert path.read_text(encoding="utf-8").startswith("#"), f"{path}: explain it in comments"


@pytest.mark.parametrize("path", PROCESSOR_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_processor_file_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = read_processor(path, monkeypatch)
    assert config.exporters, f"{path}: the processor forwards nowhere"
    assert all(not exporter.all_problems() for exporter in config.exporters)
    assert path.read_text(encoding="utf-8").startswith("#"), f"{path}: explain it in comments"


def test_direct_layout_app_to_processor_to_phoenix(monkeypatch: pytest.MonkeyPatch) -> None:
    config = read_processor(CONFIG_DIR / "direct" / "processor.yaml", monkeypatch)
    # The app needs no endpoint setting: the processor listens on the SDK's default ports.
    assert config.grpc is not None and config.grpc.endpoint == SDK_DEFAULT_GRPC
    assert config.http is not None and config.http.endpoint == SDK_DEFAULT_HTTP
    exporter = only_exporter(config)
    assert isinstance(exporter, OtlpHttpExporterConfig)
    assert host_port(exporter.endpoint) == ("127.0.0.1", 6006)
    assert urlsplit(exporter.endpoint).path == "/v1/traces"
    assert exporter.signals == ["traces"], "Phoenix takes traces only"


def test_agent_layout_hops_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CONFIG_DIR / "agent"
    agent = read_collector(folder / "agent-collector.yaml")
    processor = read_processor(folder / "processor.yaml", monkeypatch)
    backend = read_collector(folder / "backend-collector.yaml")

    assert otlp_receiver(agent, "grpc") == SDK_DEFAULT_GRPC
    assert otlp_receiver(agent, "http") == SDK_DEFAULT_HTTP

    (agent_exporter,) = agent["service"]["pipelines"]["traces"]["exporters"]
    to_processor = agent["exporters"][agent_exporter]
    assert agent_exporter.startswith("otlp_grpc")
    assert processor.grpc is not None
    assert host_port(to_processor["endpoint"]) == host_port(processor.grpc.endpoint)
    # Plain text on one side requires plain text on the other.
    assert to_processor["tls"]["insecure"] is (processor.grpc.tls is None)
    assert processor.grpc.bearer_token is None

    to_backend = only_exporter(processor)
    assert isinstance(to_backend, OtlpGrpcExporterConfig)
    assert host_port(grpc_target(to_backend.endpoint)) == host_port(otlp_receiver(backend, "grpc"))
    assert not to_backend.secure()

    ports = collector_listeners(agent) + listeners(processor) + collector_listeners(backend)
    assert len(ports) == len(set(ports)), f"two listeners share a port: {sorted(ports)}"


def test_agent_backend_collector_reaches_every_backend() -> None:
    backend = read_collector(CONFIG_DIR / "agent" / "backend-collector.yaml")
    exporters = backend["exporters"]
    assert set(backend["service"]["pipelines"]["traces"]["exporters"]) == {
        "otlp_grpc/jaeger",
        "otlp_grpc/tempo",
        "otlp_http/langfuse",
        "otlp_grpc/honeycomb",
    }
    assert host_port(exporters["otlp_grpc/jaeger"]["endpoint"])[1] == 4317
    assert host_port(exporters["otlp_grpc/tempo"]["endpoint"])[1] == 4317
    langfuse = exporters["otlp_http/langfuse"]
    assert urlsplit(langfuse["endpoint"]).path == "/api/public/otel"
    assert langfuse["headers"]["Authorization"] == "Basic ${env:LANGFUSE_AUTH}"
    honeycomb = exporters["otlp_grpc/honeycomb"]
    assert honeycomb["endpoint"] == "api.honeycomb.io:443"
    assert honeycomb["headers"]["x-honeycomb-team"] == "${env:HONEYCOMB_API_KEY}"


def test_gateway_layout_routes_whole_traces_to_every_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = CONFIG_DIR / "gateway"
    gateway = read_collector(folder / "gateway-collector.yaml")
    backend = read_collector(folder / "backend-collector.yaml")
    replicas = [read_processor(p, monkeypatch) for p in sorted(folder.glob("processor-*.yaml"))]
    assert len(replicas) >= 2

    assert otlp_receiver(gateway, "grpc") == SDK_DEFAULT_GRPC
    assert gateway["service"]["pipelines"]["traces"]["exporters"] == ["load_balancing"]
    assert "batch" not in gateway["service"]["pipelines"]["traces"]["processors"]
    balancer = gateway["exporters"]["load_balancing"]
    assert balancer["routing_key"] == "traceID"
    assert balancer["protocol"]["otlp"]["tls"]["insecure"] is True
    hostnames = balancer["resolver"]["static"]["hostnames"]
    replica_grpc = [r.grpc.endpoint for r in replicas if r.grpc is not None]
    assert sorted(map(host_port, hostnames)) == sorted(map(host_port, replica_grpc))
    assert all(r.grpc is not None and r.grpc.tls is None for r in replicas)

    backend_grpc = host_port(otlp_receiver(backend, "grpc"))
    for replica in replicas:
        exporter = only_exporter(replica)
        assert isinstance(exporter, OtlpGrpcExporterConfig)
        assert host_port(grpc_target(exporter.endpoint)) == backend_grpc
        assert replica.tags == replicas[0].tags, "replicas must label their counters alike"

    ledgers = {r.ledger.url for r in replicas}
    assert len(ledgers) == 1 and all(r.ledger.shared for r in replicas), (
        "replicas share one PostgreSQL ledger, for exact reports over the fleet"
    )
    queues = [r.ledger.queue.directory for r in replicas]
    assert None not in queues and len(set(queues)) == len(queues), "each its own queue directory"
    (scrape,) = backend["receivers"]["prometheus"]["config"]["scrape_configs"]
    targets = [t for group in scrape["static_configs"] for t in group["targets"]]
    replica_metrics = [r.metrics.prometheus_endpoint for r in replicas]
    assert sorted(map(host_port, targets)) == sorted(map(host_port, replica_metrics))

    ports = collector_listeners(gateway) + collector_listeners(backend)
    for replica in replicas:
        ports += listeners(replica)
    assert len(ports) == len(set(ports)), f"two listeners share a port: {sorted(ports)}"


def test_backend_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CONFIG_DIR / "backends"
    assert {p.stem for p in folder.glob("*.yaml")} == {"jaeger", "tempo", "langfuse", "honeycomb"}
    langfuse = only_exporter(read_processor(folder / "langfuse.yaml", monkeypatch))
    assert isinstance(langfuse, OtlpHttpExporterConfig)
    assert urlsplit(langfuse.endpoint).scheme == "https"
    assert urlsplit(langfuse.endpoint).path == "/api/public/otel/v1/traces"
    assert langfuse.headers == {"authorization": f"Basic {SECRETS['LANGFUSE_AUTH']}"}
    assert langfuse.signals == ["traces"]

    # Honeycomb: traces and logs as they are; metrics need a dataset header of their own.
    honeycomb, metrics = read_processor(folder / "honeycomb.yaml", monkeypatch).exporters
    for exporter in (honeycomb, metrics):
        assert isinstance(exporter, OtlpGrpcExporterConfig)
        assert exporter.secure() and host_port(exporter.endpoint) == ("api.honeycomb.io", 443)
        assert exporter.headers["x-honeycomb-team"] == SECRETS["HONEYCOMB_API_KEY"]
    assert honeycomb.signals == ["traces", "logs"]
    assert "x-honeycomb-dataset" not in honeycomb.headers
    assert metrics.signals == ["metrics"] and metrics.headers["x-honeycomb-dataset"]

    for name in ("jaeger", "tempo"):
        config = read_processor(folder / f"{name}.yaml", monkeypatch)
        exporter = only_exporter(config)
        assert isinstance(exporter, OtlpGrpcExporterConfig) and not exporter.secure()
        assert host_port(exporter.endpoint) not in listeners(config), "exports to itself"
        assert exporter.signals == ["traces"]


def test_a_missing_secret_is_reported_not_sent_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGFUSE_AUTH", raising=False)
    with pytest.raises(ConfigError, match="LANGFUSE_AUTH is not set"):
        load_config(CONFIG_DIR / "backends" / "langfuse.yaml")
