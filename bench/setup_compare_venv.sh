#!/usr/bin/env bash
# A separate venv for bench/instrumentation_compare.py: spanledger plus the OpenTelemetry
# contrib OpenAI instrumentation, pinned. It is kept apart from the project's venv because its
# `opentelemetry_instrumentor` entry point would load next to spanledger's under
# `opentelemetry-instrument` and double every span there.
#
#   bash bench/setup_compare_venv.sh            # creates bench/.compare-venv
#   COMPARE_PYTHON=python3.11 bash bench/setup_compare_venv.sh
set -euo pipefail

# The compared instrumentation and what it needs beside openai 3.x, pinned:
# - opentelemetry-util-genai 1.1b0: the package asks for ">=0.4b0.dev", but from 1.2b0 on the
#   module it imports (`opentelemetry.util.genai.instruments`) is gone;
# - httpx 1.x: imported at module level without being declared, while openai 3.x depends on
#   `httpx2` only; without it the package fails to import
#   (open-telemetry/opentelemetry-python-contrib#4953).
COMPARED=(
    "opentelemetry-instrumentation-openai-v2==2.4b0"
    "opentelemetry-util-genai==1.1b0"
    "httpx==0.28.1"
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.compare-venv"
python="${COMPARE_PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$repo[instruments-any]" httpx2 "${COMPARED[@]}"
"$venv/bin/python" -c "import openai, opentelemetry.instrumentation.openai_v2, spanledger; \
print('ready:', '$venv', 'openai', openai.__version__)"
if ! command -v valgrind >/dev/null; then
    echo "no valgrind: the comparison will be timed only; apt-get install valgrind to count instructions"
fi
