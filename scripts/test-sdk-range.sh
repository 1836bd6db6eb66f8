#!/usr/bin/env bash
# Prove the LLM SDK ranges the instrumentation declares (`_instruments` in each provider's
# instrumentation/*/package.py) at both ends: run the tests that drive the real SDKs
# (instrumentation, stand-in, the SDK's own spans priced, budget enforcement, tags across an SDK
# call) with the SDKs at the newest releases the ranges admit, or at the oldest. Everything else
# is installed at the locked versions (requirements/constraints.txt) where the SDKs' own bounds
# allow, in a virtualenv of its own, .venv-sdk-newest or .venv-sdk-oldest, so the project's
# .venv is left as it is.
# Usage: bash scripts/test-sdk-range.sh newest|oldest [pytest args...]
#        (pytest args replace the default list of tests below)
set -euo pipefail
cd "$(dirname "$0")/.."

end=${1:-}
case "$end" in
  newest | oldest) shift ;;
  *)
    echo "usage: bash scripts/test-sdk-range.sh newest|oldest [pytest args...]" >&2
    exit 2
    ;;
esac
PYTHON=${PYTHON:-python3}
VENV=.venv-sdk-$end

# One requirement per SDK: its declared range (newest) or the range's lower bound, exactly (oldest).
mapfile -t sdks < <("$PYTHON" - "$end" <<'PY'
import ast
import re
import sys
from pathlib import Path

# Packages released in step with an SDK, moved with it (boto3 X.Y.Z needs botocore X.Y.*).
COMPANIONS = {"botocore": ("boto3",)}

for package in sorted(Path("instrumentation").glob("*/package.py")):
    sdk = package.parent.name
    tree = ast.parse(package.read_text())
    (spec,) = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "_instruments"
    )
    name = spec.split()[0]
    if sys.argv[1] == "newest":
        print(spec.replace(" ", ""))
        for companion in COMPANIONS.get(name, ()):
            print(companion)
        continue
    lower = re.search(r">=\s*([\w.]+)", spec)
    if lower is None:
        sys.exit(f"{sdk}: the range {spec!r} has no lower bound (>=) to test")
    print(f"{name}=={lower.group(1)}")
    for companion in COMPANIONS.get(name, ()):
        print(f"{companion}=={lower.group(1)}")
PY
)

quiet_pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
echo "== installing spanledger[test] at the locked versions into $VENV"
quiet_pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
# Then the SDKs alone, without the lock: each moves to the newest release in its range, or to
# the range's lower bound, and pip moves an SDK's own dependencies only where its bounds demand.
echo "== moving ${sdks[*]}"
quiet_pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy only-if-needed \
  "${sdks[@]}"
"$VENV/bin/python" - "${sdks[@]}" <<'PY'
import re
import sys
from importlib.metadata import version

names = [re.split(r"[=<>!~,]", spec)[0] for spec in sys.argv[1:]]
print("==", " / ".join(f"{name} {version(name)}" for name in names))
PY

if [ $# -eq 0 ]; then
  set -- tests/instrumentation tests/standin tests/processor/pricing/test_pricing_sdk_spans.py \
    tests/budgets/test_budget_enforcement.py tests/budgets/test_budget_endpoint.py \
    tests/tags/test_tag_fanout.py
fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
