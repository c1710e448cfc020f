#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run calls this script):
# formatting, the static size-budgeted release binary, unit and integration tests (as PID 1 in a
# PID namespace, as a subreaper, through a pseudo-terminal, inside Docker containers, real
# servers from Debian's packages in containers), the short zero-downtime run (a rolling update
# behind nginx) and the benchmark's quick mode.
#
# With CI=true a missing capability (unshare, a Docker engine) fails the run; otherwise the
# tests that need it skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "setup"
scripts/setup.sh

if cargo fmt --version >/dev/null 2>&1; then
    step "cargo fmt --check"
    cargo fmt --check
fi

if cargo clippy --version >/dev/null 2>&1; then
    step "cargo clippy"
    cargo clippy --all-targets --locked -- -D warnings
fi

step "release build: static, within the size budget"
cargo build --release --locked
binary=target/x86_64-unknown-linux-musl/release/grace-init
budget=800000
size=$(stat -c %s "$binary")
file "$binary"
file "$binary" | grep -q "statically linked" || { echo "FAIL: $binary is not statically linked" >&2; exit 1; }
echo "size: $size bytes (budget $budget)"
[ "$size" -le "$budget" ] || { echo "FAIL: $binary is $size bytes, over the $budget budget" >&2; exit 1; }

step "container images"
if docker info >/dev/null 2>&1; then
    bash docker/build-images.sh
    step "application images: Debian base (mmdebstrap, cached by inputs) and examples"
    start=$SECONDS
    bash docker/build-app-images.sh
    echo "application images: $((SECONDS - start)) s"
elif [ "${CI:-}" = true ]; then
    echo "FAIL: no Docker engine, and CI=true requires the container tests" >&2
    exit 1
else
    echo "SKIP: no Docker engine reachable; the container tests will skip" >&2
fi

step "unit and integration tests"
cargo test --locked

step "zero-downtime (short run: a rolling update behind nginx, baseline and grace-init with a delay)"
start=$SECONDS
bash bench/zero-downtime/run.sh --quick
echo "zero-downtime: $((SECONDS - start)) s"

step "benchmark (quick mode: checks it works, not speed)"
bash bench/run.sh --quick >/dev/null

step "all tests passed"
