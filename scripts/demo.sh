#!/usr/bin/env bash
# Install spanledger and run the offline demo: processor + local LLM stand-in + an example agent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh instruments-any
exec .venv/bin/spanledger demo "$@"
