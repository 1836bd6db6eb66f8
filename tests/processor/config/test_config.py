"""The processor's YAML configuration: defaults, every section, and problems with their lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from spanledger.processor.cli import main
from spanledger.processor.config import Config, ConfigError, check_config, load_config
from spanledger.processor.exporters import OtlpGrpcExporterConfig, OtlpHttpExporterConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spanledger.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_no_file_gives_the_documented_defaults() -> None:
    config = load_config(None)
    assert config.grpc is not None and config.grpc.endpoint == "127.0.0.1:4317"
    assert config.http is not None and config.http.endpoint == "127.0.0.1:4318"
    assert config.exporters == []
    assert config.tags == ["customer", "feature", "team", "env"]
    assert config.rollup.trace_idle == 2.0 and config.rollup.root_grace == 1.0
    assert config.rollup.max_traces == 100_000
    assert config.pricing.markup_percent == 0 and config.pricing.prefer_reported is True
    assert config.metrics.prometheus_endpoint == "127.0.0.1:9464"
    assert config.ledger.path == "spanledger.db"


def test_every_section_of_the_design_example_is_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LANGFUSE_AUTH", "Basic cGs6c2s=")
    (tmp_path / "prices.yaml").write_text("models: []\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
        receivers:
          otlp:
            grpc: {endpoint: 127.0.0.1:14317}
            http: null
        exporters:
          - otlp_http:
              endpoint: http://127.0.0.1:6006/v1/traces
              headers: {authorization: "${env:LANGFUSE_AUTH}"}
          - otlp_grpc: {endpoint: 127.0.0.1:24317, tls: {insecure: true}}
        tags: [customer, feature, tenant_id]
        pricing: {overrides: prices.yaml, markup_percent: 12.5, prefer_reported: false}
        rollup: {trace_idle: 500ms, root_grace: 1s, max_traces: 5000}
        metrics: {prometheus: {endpoint: 127.0.0.1:19464}, otlp: {endpoint: 127.0.0.1:4317}}
        ledger: {path: data/ledger.db, retention_days: 30}
        service: {shutdown_timeout: 3s}
        memory_limiter: {limit_mib: 512, spike_limit_mib: 128, check_interval: 1s}
        """,
    )
    config = load_config(path)
    assert config.grpc is not None and config.grpc.endpoint == "127.0.0.1:14317"
    assert config.http is None
    http, grpc = config.exporters
    assert isinstance(http, OtlpHttpExporterConfig) and isinstance(grpc, OtlpGrpcExporterConfig)
    assert http.headers == {"authorization": "Basic cGs6c2s="}
    assert grpc.tls is not None and grpc.tls.insecure is True
    assert config.tags == ["customer", "feature", "tenant_id"]
    assert config.pricing.overrides == str(tmp_path.resolve() / "prices.yaml")
    assert config.pricing.markup_percent == 12.5 and config.pricing.prefer_reported is False
    assert config.rollup.trace_idle == 0.5 and config.rollup.max_traces == 5000
    assert config.metrics.prometheus_endpoint == "127.0.0.1:19464"
    assert config.metrics.otlp_endpoint == "127.0.0.1:4317"
    assert config.ledger.path == str(tmp_path.resolve() / "data/ledger.db")
    assert config.ledger.retention_days == 30
    assert config.service.shutdown_timeout == 3.0
    limiter = config.memory_limiter
    assert limiter is not None and (limiter.limit_mib, limiter.spike_mib) == (512, 128)
    assert config.source == path


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        receivers:
          otlp:
            grpc: {endpoint: 5}
        exporters:
          - otlp_kafka: {endpoint: x}
          - otlp_http: {endpoint: http://127.0.0.1:1/v1/traces, timeout: soon}
        rollup: {trace_idle: -2s, max_traces: many}
        pricing: {markup_percent: lots}
        tags: [customer, "bad key!"]
        colour: blue
        """,
    )
    config, problems = check_config(path)
    text = "\n".join(problems)
    assert "exporters[0].otlp_kafka (line 6): unknown exporter" in text
    assert "exporters[1].otlp_http.timeout (line 7)" in text
    assert "rollup.trace_idle (line 8): expected a duration" in text
    assert "receivers.otlp.grpc (line 4): endpoint must be host:port" in text
    assert "rollup.max_traces (line 8): expected an integer" in text
    assert "pricing.markup_percent (line 9)" in text
    assert "tags[1] (line 10)" in text
    assert "colour (line 11): unknown section" in text
    assert all(p.startswith(str(path)) for p in problems)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.problems == problems
    assert config is not None


def test_missing_environment_variable_and_bad_yaml_are_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'exporters: [{otlp_http: {headers: {x: "${env:SPANLEDGER_NOT_SET}"}}}]\n'
    )
    _, problems = check_config(path)
    assert any("SPANLEDGER_NOT_SET is not set" in p for p in problems)
    broken = write(tmp_path, "rollup: {trace_idle: [\n")
    _, problems = check_config(broken)
    assert len(problems) == 1 and "not valid YAML" in problems[0]
    _, problems = check_config(tmp_path / "absent.yaml")
    assert "cannot read" in problems[0]


def test_both_receivers_disabled_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "receivers: {otlp: {grpc: null, http: null}}\n")
    _, problems = check_config(path)
    assert any("both receivers are disabled" in p for p in problems)


def test_check_config_command_exit_codes(tmp_path: Path, capsys) -> None:
    good = write(tmp_path, "exporters: [{otlp_grpc: {endpoint: 127.0.0.1:4317}}]\n")
    assert main(["check-config", str(good)]) == 0
    assert "OK (exporters: OtlpGrpcExporter" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollup: {max_traces: -1}\n", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    assert "rollup" in capsys.readouterr().err


def test_defaults_are_a_config_instance() -> None:
    assert isinstance(load_config(None), Config)


def test_relative_tls_files_are_taken_from_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here\n", encoding="utf-8")
    path = write(
        tmp_path, "exporters: [{otlp_grpc: {endpoint: 127.0.0.1:1, tls: {ca_file: ca.pem}}}]\n"
    )
    config = load_config(path)
    tls = config.exporters[0].tls
    assert tls is not None and tls.ca_file == str(tmp_path.resolve() / "ca.pem")
    missing = write(tmp_path, "exporters: [{otlp_grpc: {tls: {ca_file: absent.pem}}}]\n")
    _, problems = check_config(missing)
    assert any("absent.pem" in p and "cannot be read" in p for p in problems)


def test_exporter_signals_and_per_signal_urls_are_read_and_checked(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        """
        receivers:
          otlp:
            http: {endpoint: 127.0.0.1:4318, metrics_path: /otlp/metrics}
        exporters:
          - otlp_http: {endpoint: "http://127.0.0.1:6006/v1/traces", signals: [traces]}
          - otlp_http:
              endpoint: http://collector:4318/ingest/spans
              metrics_endpoint: http://collector:4318/ingest/points
              logs_endpoint: https://logs.example/otlp/v1/logs
          - otlp_grpc: {endpoint: 127.0.0.1:24317, tls: {insecure: true}, signals: [metrics, logs]}
        """,
    )
    phoenix, custom, collector = load_config(good).exporters
    assert phoenix.signals == ["traces"]
    assert custom.signals == ["traces", "metrics", "logs"]  # the default
    assert custom.url("metrics") == "http://collector:4318/ingest/points"
    assert custom.url("logs") == "https://logs.example/otlp/v1/logs"
    assert collector.signals == ["metrics", "logs"]
    assert load_config(good).http.metrics_path == "/otlp/metrics"  # type: ignore[union-attr]

    bad = write(
        tmp_path,
        """
        exporters:
          - otlp_http: {endpoint: "http://127.0.0.1:6006/v1/traces", signals: [traces, metric]}
          - otlp_http: {endpoint: "http://collector:4318/ingest/spans", signals: [logs]}
          - otlp_grpc: {endpoint: 127.0.0.1:24317, signals: []}
          - otlp_http: {endpoint: "http://h:1", metrics_endpoint: "ftp://h/m", signals: traces}
        receivers:
          otlp:
            http: {logs_path: /v1/traces}
        """,
    )
    _, problems = check_config(bad)
    text = "\n".join(problems)
    assert "exporters[0].otlp_http.signals[1] (line 3): expected one of 'traces', 'metrics'" in text
    assert "exporters[1].otlp_http (line 4): cannot derive the logs URL" in text
    assert "set logs_endpoint, or leave logs out of signals" in text
    assert "exporters[2].otlp_grpc (line 5): signals is empty" in text
    assert "exporters[3].otlp_http.signals (line 6): expected a list" in text
    assert "exporters[3].otlp_http (line 6): metrics_endpoint must be an http://" in text
    assert "receivers.otlp.http (line 9): path, metrics_path and logs_path must differ" in text
    assert len(problems) == 6, text
