#!/usr/bin/env bash
# Create .venv (if missing) and install spanledger into it, editable, with optional extras.
# Usage: bash scripts/install.sh [extra]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# pip's notes about index locations configured on this machine but absent are noise here.
quiet_pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
quiet_pip install --quiet --upgrade pip
if [ $# -gt 0 ]; then
  quiet_pip install --quiet -e ".[$1]"
else
  quiet_pip install --quiet -e .
fi
