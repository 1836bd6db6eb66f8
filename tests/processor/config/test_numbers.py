"""Numbers are numbers: a duration such as ``1m`` is accepted only where a duration is meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanledger.processor.cli import main
from spanledger.processor.config import check_config, load_config

LIMIT = "{name: acme, match: {customer: acme}, period: monthly"

NUMBERS = [
    ("pricing.markup_percent", 'pricing: {markup_percent: "%s"}'),
    ("budgets.limits[0].amount_usd", "budgets: {limits: [" + LIMIT + ', amount_usd: "%s"}]}'),
    (
        "budgets.limits[0].lifetime_usd",
        "budgets: {limits: [" + LIMIT + ', amount_usd: 5, lifetime_usd: "%s"}]}',
    ),
    ("budgets.thresholds[1]", 'budgets: {thresholds: [50, "%s"]}'),
]
DURATIONS = [
    ("rollup.max_wait", lambda c: c.rollup.max_wait, 'rollup: {max_wait: "%s"}'),
    (
        "service.shutdown_timeout",
        lambda c: c.service.shutdown_timeout,
        'service: {shutdown_timeout: "%s"}',
    ),
    (
        "metrics.export_interval",
        lambda c: c.metrics.export_interval,
        'metrics: {export_interval: "%s"}',
    ),
    (
        "exporters[0].otlp_grpc.max_elapsed",
        lambda c: c.exporters[0].max_elapsed,
        'exporters: [{otlp_grpc: {max_elapsed: "%s"}}]',
    ),
    (
        "receivers.otlp.http.idle_timeout",
        lambda c: c.http.idle_timeout,
        'receivers: {otlp: {http: {idle_timeout: "%s"}}}',
    ),
    (
        "budgets.status.cache_seconds",
        lambda c: c.budgets.status.cache_seconds,
        'budgets: {status: {cache_seconds: "%s"}}',
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spanledger.yaml"
    path.write_text(f"# settings under test\n{text}\n", encoding="utf-8")
    return path


def test_markup_of_one_minute_is_a_problem_naming_its_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, 'pricing: {markup_percent: "1m"}')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}: pricing.markup_percent (line 2): expected a number, got '1m' "
        "(a duration is not accepted here)"
    ) in err


@pytest.mark.parametrize(("where", "template"), NUMBERS)
@pytest.mark.parametrize("text", ["1m", "30s", "500ms", "ten"])
def test_numeric_settings_refuse_durations_and_words(
    tmp_path: Path, where: str, template: str, text: str
) -> None:
    _, problems = check_config(write(tmp_path, template % text))
    assert any(f"{where} (line 2): expected a number, got {text!r}" in p for p in problems), (
        problems
    )


@pytest.mark.parametrize(("where", "template"), NUMBERS)
def test_numeric_settings_take_numbers_written_as_strings(
    tmp_path: Path, where: str, template: str
) -> None:
    # A number in quotes (as ${env:NAME} gives) is still a number.
    _, problems = check_config(write(tmp_path, template % "90"))
    assert not [p for p in problems if where in p], problems


def test_a_quoted_number_keeps_its_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'pricing: {markup_percent: "12.5"}'))
    assert config.pricing.markup_percent == 12.5


@pytest.mark.parametrize(("where", "read", "template"), DURATIONS)
def test_duration_settings_take_durations(tmp_path: Path, where: str, read, template: str) -> None:
    assert read(load_config(write(tmp_path, template % "1m"))) == 60.0
    assert read(load_config(write(tmp_path, template % "2500ms"))) == 2.5
    assert read(load_config(write(tmp_path, template % "7"))) == 7.0
    _, problems = check_config(write(tmp_path, template % "ten"))
    assert any(f"{where} (line 2): expected a duration such as 2s" in p for p in problems), problems


def test_integer_settings_refuse_durations(tmp_path: Path) -> None:
    _, problems = check_config(write(tmp_path, 'rollup: {max_traces: "1m"}'))
    assert any("rollup.max_traces (line 2): expected an integer, got '1m'" in p for p in problems)
