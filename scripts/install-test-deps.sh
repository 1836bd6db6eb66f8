#!/usr/bin/env bash
# Idempotent set-up for the tests: a virtualenv with the project and its test extras, plus the
# system services the tests start themselves (Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh test

if ! command -v prometheus >/dev/null 2>&1; then
  bash scripts/prometheus/install.sh
fi
