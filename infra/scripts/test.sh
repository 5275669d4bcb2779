#!/usr/bin/env bash
# The one command that runs every check and test of TDS on a fresh machine (README: "Test it").
# It installs what the tests need (a cached Python venv with cfn-lint and moto; the distribution's
# chromium and chromium-driver for the dashboard's browser tests), makes sure PostgreSQL
# on 127.0.0.1:5432 is up, then runs: cargo fmt --check, cargo clippy -D warnings, the template lint
# (as written and expanded by aws-sam-translator), and cargo test for the whole workspace.
# Tests create and drop their own databases on that server.
#
# Environment (all optional):
#   DATABASE_URL     server the tests use (default postgres://postgres@127.0.0.1:5432/postgres)
#   TDS_CACHE_DIR    where the venv and the shared cargo target dir live (default ~/.cache/tds), so
#                    repeated runs, and CI runs in fresh clones on the same machine, reuse build output
#   CARGO_TARGET_DIR overrides the cargo target dir
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

cache="${TDS_CACHE_DIR:-$HOME/.cache/tds}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

# --- Rust toolchain -------------------------------------------------------------------------------
# rust-toolchain.toml pins the machine's toolchain; if rustup lacks that exact name but the default
# toolchain is the same release, use it rather than trying (and failing) to download.
pinned="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^${pinned}-"; then
  if rustc +stable --version 2>/dev/null | grep -q " ${pinned} "; then
    export RUSTUP_TOOLCHAIN=stable
  fi
fi
step "toolchain: $(rustc --version)"

# --- Python tools (cfn-lint, moto) in a venv keyed by the requirements file ------------------------
venv="$cache/venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum infra/requirements-test.txt | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  step "installing Python test tools into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

# --- Chromium for the dashboard's browser tests: the distribution's packages, nothing else ----------
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  step "installing the distribution's chromium and chromium-driver"
  as_root=(); [[ "$(id -u)" -ne 0 ]] && as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium chromium-driver
fi

# --- PostgreSQL -------------------------------------------------------------------------------------
pg_host_port="${DATABASE_URL#*@}"; pg_host_port="${pg_host_port%%/*}"
pg_host="${pg_host_port%%:*}"; pg_port="${pg_host_port##*:}"; [[ "$pg_port" == "$pg_host" ]] && pg_port=5432
if ! pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    step "starting the machine's PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$pg_host" -p "$pg_port" && break; sleep 1; done
  pg_isready -h "$pg_host" -p "$pg_port" || { echo "PostgreSQL is not reachable at $pg_host:$pg_port" >&2; exit 1; }
fi

# --- Checks -----------------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "template lint (cfn-lint, as written and expanded)"
python infra/scripts/lint_template.py template.yaml

step "cargo test"
cargo test --workspace --locked
