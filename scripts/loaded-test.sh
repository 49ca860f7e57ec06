#!/usr/bin/env bash
# The whole suite on a loaded machine: stress-ng keeps two cores busy beside it (--cpu 2, or
# the count given), as a busy Pi or a shared CI runner would, so that a test waiting on
# transient state instead of an event shows up here. Runs the suite N times (default 1) and
# prints each run's time and result; exits non-zero when a run failed.
#   scripts/loaded-test.sh [runs] [cpu workers]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
cpus=${2:-2}
command -v stress-ng >/dev/null 2>&1 || { echo "stress-ng is missing (apt-get install stress-ng; .ci/run installs it)"; exit 1; }

stress-ng --cpu "$cpus" --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT

mkdir -p test-output
failed=0
for n in $(seq 1 "$runs"); do
  start=$(date +%s)
  CI=true npx vitest run --reporter=dot >"test-output/loaded-test-$n.log" 2>&1
  status=$?
  echo "run $n: $(( $(date +%s) - start )) s, $(grep -E '^\s*Tests ' "test-output/loaded-test-$n.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | xargs) (exit $status; log in test-output/loaded-test-$n.log)"
  [ "$status" -eq 0 ] || failed=1
done
exit $failed
