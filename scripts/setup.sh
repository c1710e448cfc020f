#!/usr/bin/env bash
# Installs what building and testing grace-init needs on a Debian machine with Rust (rustup):
# the musl target, and the Debian packages the tests, images and benchmarks use.
# Idempotent: installs only what is missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl

# command → Debian package
needed=(
    busybox:busybox-static   # shell, httpd and sleep for the FROM-scratch test images
    unshare:util-linux       # PID namespaces: grace-init as PID 1
    python3:python3          # zero-downtime harness and benchmark driver
    tini:tini                # peers measured by the benchmark
    dumb-init:dumb-init
    catatonit:catatonit
    file:file                # "statically linked" check
    mmdebstrap:mmdebstrap    # the Debian base image of the application examples (docker/base/debian)
)
missing=()
for pair in "${needed[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
python3 -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
