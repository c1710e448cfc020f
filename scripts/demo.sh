#!/usr/bin/env bash
# Builds grace-init and runs it on a small shell-script app: the app keeps serving during the
# stop delay, then gets SIGTERM, drains and exits; every step of the timeline is logged.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl
cargo build --release --quiet
binary=target/x86_64-unknown-linux-musl/release/grace-init
ls -l "$binary"

app='trap "echo app: SIGTERM, draining; sleep 1; echo app: done; exit 0" TERM
echo app: serving; while :; do sleep 1 & wait $!; done'

echo "demo: grace-init -v --stop-delay 2s --grace-period 10s -- sh -c '<app>'"
"$binary" -v --stop-delay 2s --grace-period 10s -- sh -c "$app" &
init=$!
sleep 1
echo "demo: sending SIGTERM to grace-init (pid $init), as docker stop or the kubelet would"
kill -TERM "$init"
status=0
wait "$init" || status=$?
echo "demo: grace-init exited with $status, the app's own status"
