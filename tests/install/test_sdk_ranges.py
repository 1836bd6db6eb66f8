"""The SDK releases the instrumentation admits are declared once per SDK and agree everywhere."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from spanledger.instrumentation.anthropic import package as anthropic_package
from spanledger.instrumentation.openai import package as openai_package

ROOT = Path(__file__).resolve().parents[2]


def test_extras_admit_the_ranges_the_instrumentors_declare() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        requirement.name: requirement.specifier
        for requirement in map(
            Requirement, openai_package._instruments + anthropic_package._instruments
        )
    }
    assert set(declared) == {"openai", "anthropic"}
    for extra in ("instruments-any", "test"):
        listed = {
            requirement.name: requirement.specifier
            for requirement in map(Requirement, project["optional-dependencies"][extra])
            if requirement.name in declared
        }
        assert listed == declared, extra
