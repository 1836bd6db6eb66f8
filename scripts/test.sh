#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run lint and the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
. .venv/bin/activate

echo "== ruff"
ruff check .
ruff format --check .

echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
