#!/usr/bin/env bash
# Runs the workspace's tests N times in a row (default 10) while a release build of the workspace
# keeps both cores busy beside them, and stops at the first failure: the check that no test depends on
# the machine being idle (wall-clock races, tight timeouts). Prints one line per run and a summary.
#
# Usage: bash infra/scripts/flake-loop.sh [N]
# Environment: as infra/scripts/test.sh (DATABASE_URL, TDS_CACHE_DIR, CARGO_TARGET_DIR). The release
# build uses its own target dir ($TDS_CACHE_DIR/target-release-load) so the two cargo processes do
# not wait on each other's lock.
# Run nothing else that runs this workspace's tests against the same PostgreSQL meanwhile: sqlx::test
# names each test's database after the test's path, so two suites at once create and drop the same
# databases under each other ("already exists", "being accessed by other users").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
runs="${1:-10}"
cache="${TDS_CACHE_DIR:-$HOME/.cache/tds}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PATH="$cache/venv/bin:$PATH"   # moto_server, as the test command installs it
load_dir="$cache/target-release-load"
log_dir="$(mktemp -d)"

echo "building the tests once before the loop"
cargo test --workspace --locked --no-run >"$log_dir/build.log" 2>&1 || { cat "$log_dir/build.log"; exit 1; }

# The load: release builds of the whole workspace, one after another (cleaned so each one works).
(
  while true; do
    CARGO_TARGET_DIR="$load_dir" cargo clean --release -q 2>/dev/null || true
    CARGO_TARGET_DIR="$load_dir" nice -n 5 cargo build --release --workspace --locked -q >/dev/null 2>&1 || true
  done
) &
load=$!
trap 'kill "$load" 2>/dev/null; pkill -f "$load_dir" 2>/dev/null || true' EXIT

passed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if cargo test --workspace --locked >"$log_dir/run-$i.log" 2>&1; then
    passed=$((passed + 1))
    tests=$(grep -E '^test result: ok' "$log_dir/run-$i.log" | awk '{s += $4} END {print s}')
    echo "run $i: ok ($tests tests, $(( $(date +%s) - start )) s, release build beside it)"
  else
    echo "run $i: FAILED ($(( $(date +%s) - start )) s); log: $log_dir/run-$i.log"
    grep -E '^(test .* FAILED|failures:|---- )' "$log_dir/run-$i.log" | head -20
    echo "$passed of $runs runs passed before the failure"
    exit 1
  fi
done
echo "$passed of $runs runs passed with a release build beside them"
