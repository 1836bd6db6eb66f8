"""The ``rollup`` section of the processor config."""

from __future__ import annotations

from spanledger.processor.config import from_mapping
from spanledger.processor.config_schema import Problems
from spanledger.processor.rollup import RollupConfig


def test_defaults_are_valid():
    config = RollupConfig()
    assert (config.trace_idle, config.root_grace) == (2.0, 1.0)
    assert (config.max_traces, config.max_spans) == (100_000, 1_000_000)
    assert config.problems() == []


def test_every_bad_value_is_reported():
    config = RollupConfig(trace_idle=-1, root_grace="soon", max_traces=0, max_spans=True)  # type: ignore[arg-type]
    problems = config.problems()
    assert len(problems) == 4
    assert "trace_idle must be a duration of zero or more, got -1" in problems
    assert any(p.startswith("max_spans must be an integer") for p in problems)


def test_max_wait_cannot_be_shorter_than_the_idle_wait():
    assert RollupConfig(trace_idle=5, max_wait=1).problems() == [
        "max_wait (1s) must not be shorter than trace_idle (5s)"
    ]


def test_durations_in_the_config_file_accept_units():
    problems = Problems()
    config = from_mapping(
        {"rollup": {"trace_idle": "500ms", "root_grace": "1s", "max_traces": 10}}, problems
    )
    assert not problems.items
    assert config is not None
    assert (config.rollup.trace_idle, config.rollup.root_grace, config.rollup.max_traces) == (
        0.5,
        1.0,
        10,
    )


def test_config_file_problems_name_the_rollup_section():
    problems = Problems()
    from_mapping({"rollup": {"max_spans": 0}}, problems)
    assert problems.items == ["rollup: max_spans must be an integer of at least 1, got 0"]
