#!/usr/bin/env bash
# "Run it" (README): builds TDS exactly as the test command does (same target directory, same
# profile and features, so a newcomer compiles the workspace once for both) and starts `tds up`.
# Arguments are passed to `tds up` (see `tds up --help`); environment as in README "Configuration".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cache="${TDS_CACHE_DIR:-$HOME/.cache/tds}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

# The test command builds every target of the workspace (`cargo test --workspace`); building the same
# targets here reuses that build, and the other way round.
cargo build --workspace --all-targets --locked --quiet
exec "$CARGO_TARGET_DIR/debug/tds" up "$@"
