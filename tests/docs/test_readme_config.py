"""README's sample configuration passes `spanledger check-config` as README says it does."""

from __future__ import annotations

from pathlib import Path

from .support import block_with, shell


def test_readme_sample_config_passes_check_config_after_the_setup_beside_it(
    tmp_path: Path,
) -> None:
    sample = block_with("README.md", "yaml", "receivers:")
    for thing in ("BACKEND_AUTH", "prices.yaml"):
        assert thing in sample.before.strip().split("\n\n")[-1], f"README is silent on {thing}"
    (tmp_path / "spanledger.yaml").write_text(sample.text, encoding="utf-8")

    # As pasted, without what README says to create: both are named as problems.
    bare = shell("spanledger check-config spanledger.yaml", tmp_path)
    assert bare.returncode == 1
    assert "environment variable BACKEND_AUTH is not set" in bare.stderr
    assert "prices.yaml" in bare.stderr

    setup = block_with("README.md", "bash", "BACKEND_AUTH")
    done = shell(setup.text, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("spanledger.yaml: OK (exporters: OtlpHttpExporter;")
