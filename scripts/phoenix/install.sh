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

if [ -x "$VENV/bin/phoenix" ] && "$VENV/bin/python" -c "import phoenix" >/dev/null 2>&1; then
  "$VENV/bin/python" -c "import phoenix; print('arize-phoenix', phoenix.__version__)"
  exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "arize-phoenix==${PHOENIX_VERSION}"
"$VENV/bin/python" -c "import phoenix; print('arize-phoenix', phoenix.__version__)"
