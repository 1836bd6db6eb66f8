#!/usr/bin/env bash
# Write requirements/constraints.txt: the exact version of every package that the project and
# all its extras install, the versions the test suite is run against.
#
#   bash scripts/lock.sh                        after a change to the dependencies in pyproject.toml:
#                                               keeps every locked version that still fits
#   bash scripts/lock.sh --upgrade              moves every package to its newest admitted release
#   bash scripts/lock.sh --upgrade-package openai   moves one package only
#
# Then run the tests (bash scripts/test.sh) and commit the lock with the change that needed it.
# The resolver is uv, pinned below, run from a throw-away virtualenv; the lock is universal
# (markers for other platforms and Pythons 3.11+), so the same file serves any machine.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}
LOCK=requirements/constraints.txt

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet "uv==$UV_VERSION" 2> >(grep -v "^WARNING: Location" >&2)

resolved=$tools/resolved.txt
[ -f "$LOCK" ] && grep -v '^#' "$LOCK" >"$resolved" || true
"$tools/bin/uv" pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
  --no-header --quiet --output-file "$resolved" "$@"

{
  cat <<'HEADER'
# The exact versions the test suite runs against: every package of the project and its extras.
# Written by scripts/lock.sh (which says how to update it); do not edit by hand.
#
# A pip constraints file rather than a uv or Poetry lock: it needs no tool beyond the pip that
# every virtualenv already has, scripts/install.sh applies it with `pip install -c`, and a user
# can do the same (`pip install -c requirements/constraints.txt .`). Being constraints, not
# requirements, it installs nothing by itself, so one file serves the plain install and every
# extra; scripts/test-sdk-range.sh drops the LLM SDKs from it to test them at both ends of
# their declared ranges.
HEADER
  cat "$resolved"
} >"$LOCK"
echo "wrote $LOCK ($(grep -c '^[a-z]' "$LOCK") packages)"
