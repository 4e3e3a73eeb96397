#!/usr/bin/env bash
# `npm run test:paired [-- ROUNDS]`: the suite's check under load. Clones this checkout's HEAD twice
# (into a temporary directory), installs each, then runs `npm test` in both at once, ROUNDS times
# (3 by default), and prints each run's result; exits non-zero if any run failed. On 2 cores each run
# then takes ~2.5 × its time alone. Logs stay in the printed directory.
set -uo pipefail
rounds=${1:-3}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/gp-paired-XXXXXX")
echo "test:paired: $rounds rounds of two suites at once, in $work"
for side in a b; do
  git clone -q "$root" "$work/$side" && (cd "$work/$side" && npm ci --no-audit --no-fund >/dev/null 2>&1) || {
    echo "test:paired: could not set up $work/$side" >&2
    exit 2
  }
done
failed=0
for round in $(seq 1 "$rounds"); do
  for side in a b; do
    (cd "$work/$side" && npm test >"$work/$side-$round.log" 2>&1; echo $? >"$work/$side-$round.rc") &
  done
  wait
  for side in a b; do
    rc=$(cat "$work/$side-$round.rc")
    [ "$rc" = 0 ] || failed=1
    echo "round $round, suite $side: $(grep -E 'npm test: (passed|FAILED)' "$work/$side-$round.log" | tail -1)$([ "$rc" = 0 ] || echo " — see $work/$side-$round.log")"
  done
done
exit $failed
