#!/usr/bin/env bash
# Create .venv (if missing) and install spanledger into it, editable, with optional extras, at
# the exact versions of requirements/constraints.txt (the lock; scripts/lock.sh updates it).
# Uses the pip the virtualenv came with, as a user's own venv would.
# Usage: bash scripts/install.sh [extra]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# pip's notes about index locations configured on this machine but absent are noise here.
quiet_pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
target=.
if [ $# -gt 0 ]; then
  target=".[$1]"
fi
quiet_pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e "$target"
