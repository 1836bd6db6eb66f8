#!/usr/bin/env bash
# Install Arize Phoenix (the tracing UI the end-to-end tests forward to) into its own virtualenv,
# .phoenix-venv, so its many pinned dependencies never touch the project's .venv.
# Idempotent: does nothing when .phoenix-venv already has a working `phoenix` command.
# Usage: bash scripts/phoenix/install.sh   (PHOENIX_VERSION overrides the pinned release)
set -euo pipefail
cd "$(dirname "$0")/../.."

PHOENIX_VERSION=${PHOENIX_VERSION:-20.26.1}
VENV=.phoenix-venv
PYTHON=${PYTHON:-python3}

installed_version() {
  "$VENV/bin/python" -c "from importlib.metadata import version; print(version('arize-phoenix'))" \
    2>/dev/null
}

if [ -x "$VENV/bin/phoenix" ] && [ "$(installed_version)" = "$PHOENIX_VERSION" ]; then
  echo "arize-phoenix $PHOENIX_VERSION"
  exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "arize-phoenix==${PHOENIX_VERSION}"
echo "arize-phoenix $(installed_version)"
