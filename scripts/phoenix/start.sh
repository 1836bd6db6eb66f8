#!/usr/bin/env bash
# Start Arize Phoenix on 127.0.0.1 for trying spanledger: UI, REST API and OTLP/HTTP on
# PHOENIX_PORT [6006], OTLP/gRPC on PHOENIX_GRPC_PORT [6007, leaving 4317 to the processor],
# data in PHOENIX_WORKING_DIR [.phoenix-data]. Installs Phoenix first if needed.
# Usage: bash scripts/phoenix/start.sh        (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/phoenix/install.sh
export PHOENIX_HOST=127.0.0.1
export PHOENIX_PORT=${PHOENIX_PORT:-6006}
export PHOENIX_GRPC_PORT=${PHOENIX_GRPC_PORT:-6007}
export PHOENIX_WORKING_DIR=${PHOENIX_WORKING_DIR:-$PWD/.phoenix-data}
export PHOENIX_TELEMETRY_ENABLED=${PHOENIX_TELEMETRY_ENABLED:-false}
exec .phoenix-venv/bin/python scripts/phoenix/serve.py serve
