#!/usr/bin/env bash
# Idempotent set-up of the virtualenvs of the interop suite (tests/interop): one per family of
# peer instrumentations, each holding the pinned packages of scripts/interop/<name>.txt and
# this checkout of spanledger (editable).
#
# The venvs are kept between runs in $SPANLEDGER_INTEROP_HOME (default
# ~/.cache/spanledger/interop), each under a name that hashes its requirements, pyproject.toml
# and the Python version, so a change to any of them builds a new one; <home>/<name> points at
# the current one. A venv that exists is only pointed at this checkout again, when it is not.
#
# Usage: bash scripts/interop/install.sh [name...]   (default: every scripts/interop/*.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
HOME_DIR=${SPANLEDGER_INTEROP_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/spanledger/interop}
mkdir -p "$HOME_DIR"

# pip's notes about index locations configured on this machine but absent are noise here.
venv_pip() {
  local venv=$1
  shift
  "$venv/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

points_here() {
  local venv=$1
  grep -qs "\"url\": \"file://$REPO\"" "$venv"/lib/python3*/site-packages/spanledger-*.dist-info/direct_url.json
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for spec in scripts/interop/*.txt; do names+=("$(basename "$spec" .txt)"); done
fi

for name in "${names[@]}"; do
  spec="scripts/interop/$name.txt"
  [ -f "$spec" ] || { echo "no requirements file $spec" >&2; exit 2; }
  key=$( (cat "$spec" pyproject.toml; "$PYTHON" -VV) | sha256sum | cut -c1-12)
  venv="$HOME_DIR/$name-$key"
  if [ ! -f "$venv/.complete" ]; then
    echo "interop: building the $name venv in $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    venv_pip "$venv" install --quiet --upgrade pip
    venv_pip "$venv" install --quiet -r "$spec" -e "$REPO"
    touch "$venv/.complete"
  elif ! points_here "$venv"; then
    venv_pip "$venv" install --quiet --no-deps -e "$REPO"
  fi
  ln -sfn "$venv" "$HOME_DIR/$name"
done
