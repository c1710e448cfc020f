#!/usr/bin/env bash
# Benchmark grace-init against tini, tini-static, dumb-init and catatonit.
#
#   bench/run.sh            full run (a few minutes), Markdown report on stdout
#   bench/run.sh --quick    CI smoke run (seconds): checks that everything works, not speed
#
# Needs root (PID namespaces via unshare) and Debian/Ubuntu (missing peers are apt-get installed).
# Builds grace-init (release) and bench/workload.rs (example bench-workload) first;
# honours CARGO_TARGET_DIR. Extra arguments go to bench/bench.py (e.g. --only tini,grace-init).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: needs root (unshare --pid)" >&2
    exit 2
fi

missing=()
for pair in tini:tini tini-static:tini dumb-init:dumb-init catatonit:catatonit file:file; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
fi

target="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release"
cargo build --release --quiet --bin grace-init --example bench-workload >&2

exec python3 bench/bench.py --grace-init "$target/grace-init" --workload "$target/examples/bench-workload" "$@"
