#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run calls this script): formatting, clippy, the
# static size-budgeted release binaries for x86_64 and aarch64, unit and integration tests (as PID
# 1 in a PID namespace, as a subreaper, through a pseudo-terminal, inside Docker containers, real
# servers from Debian's packages in containers), the integration tests again against the aarch64
# binary under qemu-user, `cargo package`, the release artifacts (scripts/release.sh) installed
# into containers of both architectures (scripts/check-release.sh), the short zero-downtime run
# (a rolling update behind nginx) and the benchmark's quick mode.
#
# With CI=true a missing capability (unshare, a Docker engine, qemu-aarch64 in binfmt_misc) fails
# the run; otherwise the tests that need it skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== [%ss] %s\n' "$SECONDS" "$*" >&2; }   # [seconds since the start]

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

# Both architectures: static, stripped, within the size budget. arm64 is linked by rust-lld
# (.cargo/config.toml), so no cross C toolchain is needed.
# 880,000 bytes: see the README's size accounting (issues 10, 11 and 13 cost 95 KB together).
budget=880000
release_build() { # release_build TARGET
    local binary=target/$1/release/grace-init size
    step "release build for $1: static, within the size budget"
    cargo build --release --locked --target "$1"
    file "$binary"
    file "$binary" | grep -q "statically linked" || { echo "FAIL: $binary is not statically linked" >&2; exit 1; }
    file "$binary" | grep -q ", stripped" || { echo "FAIL: $binary is not stripped" >&2; exit 1; }
    size=$(stat -c %s "$binary")
    echo "size: $size bytes (budget $budget)"
    [ "$size" -le "$budget" ] || { echo "FAIL: $binary is $size bytes, over the $budget budget" >&2; exit 1; }
}
release_build x86_64-unknown-linux-musl
release_build aarch64-unknown-linux-musl

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

step "aarch64 binary under qemu-user: the core integration tests but tests/qemu-user.skip"
if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    skips=()
    while read -r name _; do
        [[ -z "$name" || "$name" == \#* ]] || skips+=(--skip "$name")
    done < tests/qemu-user.skip
    GRACE_INIT_TEST_BIN="$PWD/target/aarch64-unknown-linux-musl/release/grace-init" \
        GRACE_INIT_TAG="${GRACE_INIT_TAG:-test}-qemu" \
        cargo test --locked --test signals --test reaping --test exit_codes --test child_state \
            --test cli --test logging --test timeline --test idle --test terminal --test docker_e2e \
            -- "${skips[@]}"
elif [ "${CI:-}" = true ]; then
    echo "FAIL: qemu-aarch64 is not registered with binfmt_misc (scripts/setup.sh does it as root)" >&2
    exit 1
else
    echo "SKIP: qemu-aarch64 is not registered with binfmt_misc (run scripts/setup.sh as root)" >&2
fi

step "cargo package (the crate as crates.io would get it, built from the package)"
cargo package --locked --allow-dirty --quiet

step "release artifacts: scripts/release.sh"
scripts/release.sh

step "release artifacts installed into containers of both architectures: scripts/check-release.sh"
if docker info >/dev/null 2>&1 && [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    scripts/check-release.sh
elif [ "${CI:-}" = true ]; then
    echo "FAIL: checking the release needs a Docker engine and qemu-aarch64 in binfmt_misc" >&2
    exit 1
else
    echo "SKIP: checking the release needs a Docker engine and qemu-aarch64 in binfmt_misc" >&2
fi

step "zero-downtime (short run: a rolling update behind nginx, baseline and grace-init with a delay)"
start=$SECONDS
bash bench/zero-downtime/run.sh --quick
echo "zero-downtime: $((SECONDS - start)) s"

step "benchmark (quick mode: checks it works, not speed)"
bash bench/run.sh --quick >/dev/null

step "all tests passed"
