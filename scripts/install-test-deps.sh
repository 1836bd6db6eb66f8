#!/usr/bin/env bash
# Idempotent set-up for the tests: a virtualenv with the project and its test extras, plus the
# system programs the tests start or call themselves (Prometheus, openssl for test certificates,
# Redis, PostgreSQL for the shared ledger), Arize Phoenix in its own virtualenv, and the peer
# instrumentations of tests/interop in theirs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh test

# Arize Phoenix, the real tracing UI of the end-to-end tests, in a venv of its own.
bash scripts/phoenix/install.sh

# Peer GenAI instrumentations from PyPI for the interop suite, in venvs kept between runs.
bash scripts/interop/install.sh

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL from Debian's packages: the shared-ledger tests start their own throw-away server.
sh scripts/postgres/install.sh
