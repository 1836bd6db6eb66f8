#!/usr/bin/env bash
# Prove the LLM SDK ranges the instrumentation declares (`_instruments` in each provider's
# instrumentation/*/package.py) at both ends, in a virtualenv of its own (.venv-sdk-newest or
# .venv-sdk-oldest) so the project's .venv is left as it is. Everything but the SDKs is
# installed at the locked versions (requirements/constraints.txt); pip moves an SDK's own
# dependencies only where its bounds demand.
#
#   newest: every SDK at the newest release its range admits, all at once, then the tests that
#           drive the real SDKs (instrumentation, stand-in, the SDKs' own spans priced, budget
#           enforcement, tags across an SDK call).
#   oldest: one SDK at a time at its range's lower bound (the oldest releases of different SDKs
#           need not install together: litellm 1.108 wants a newer openai than 3.0), the others
#           locked, then that SDK's tests (tests/instrumentation/<sdk> and the whole-path
#           opentelemetry-instrument test).
#
# Usage: bash scripts/test-sdk-range.sh newest|oldest [SDK...]   (SDK: a folder of instrumentation/)
#        PYTEST_ARGS="-x" bash scripts/test-sdk-range.sh ...      (extra pytest arguments)
set -euo pipefail
cd "$(dirname "$0")/.."

end=${1:-}
case "$end" in
  newest | oldest) shift ;;
  *)
    echo "usage: bash scripts/test-sdk-range.sh newest|oldest [SDK...]" >&2
    exit 2
    ;;
esac
PYTHON=${PYTHON:-python3}
VENV=.venv-sdk-$end
read -r -a pytest_args <<<"${PYTEST_ARGS:-}"

# "folder requirement [companion requirement...]" per SDK: its declared range (newest) or the
# range's lower bound, exactly (oldest).
mapfile -t sdks < <("$PYTHON" - "$end" "$@" <<'PY'
import ast
import re
import sys
from pathlib import Path

# Packages released in step with an SDK, moved with it (boto3 X.Y.Z needs botocore X.Y.*).
COMPANIONS = {"botocore": ("boto3",)}

end, wanted = sys.argv[1], set(sys.argv[2:])
for package in sorted(Path("instrumentation").glob("*/package.py")):
    folder = package.parent.name
    if wanted and folder not in wanted:
        continue
    tree = ast.parse(package.read_text())
    (spec,) = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "_instruments"
    )
    name = spec.split()[0]
    if end == "newest":
        requirements = [spec.replace(" ", ""), *COMPANIONS.get(name, ())]
    else:
        lower = re.search(r">=\s*([\w.]+)", spec)
        if lower is None:
            sys.exit(f"{folder}: the range {spec!r} has no lower bound (>=) to test")
        version = lower.group(1)
        requirements = [f"{n}=={version}" for n in (name, *COMPANIONS.get(name, ()))]
    print(folder, *requirements)
PY
)
[ ${#sdks[@]} -gt 0 ] || { echo "no such SDK folder under instrumentation/: $*" >&2; exit 2; }

quiet_pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi

locked() {
  echo "== spanledger[test] at the locked versions into $VENV"
  quiet_pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
}

move() {
  echo "== moving $*"
  quiet_pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy only-if-needed "$@"
  "$VENV/bin/python" - "$@" <<'PY'
import re
import sys
from importlib.metadata import version

names = [re.split(r"[=<>!~,]", spec)[0] for spec in sys.argv[1:]]
print("==", " / ".join(f"{name} {version(name)}" for name in names))
PY
}

run_tests() {
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${pytest_args[@]}" "$@"
}

if [ "$end" = newest ]; then
  requirements=()
  for line in "${sdks[@]}"; do
    read -r -a words <<<"$line"
    requirements+=("${words[@]:1}")
  done
  locked
  move "${requirements[@]}"
  run_tests tests/instrumentation tests/standin tests/processor/pricing/test_pricing_sdk_spans.py \
    tests/processor/sinks/budgets/test_budget_enforcement.py tests/processor/sinks/budgets/test_budget_endpoint.py \
    tests/tags/test_tag_fanout.py
  exit
fi

failed=()
for line in "${sdks[@]}"; do
  read -r -a words <<<"$line"
  folder=${words[0]}
  locked
  move "${words[@]:1}"
  run_tests "tests/instrumentation/$folder" tests/instrumentation/test_opentelemetry_instrument.py ||
    failed+=("$folder")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== the oldest release failed for: ${failed[*]}" >&2
  exit 1
fi
echo "== every SDK passed at the oldest release its range admits"
