#!/usr/bin/env bash
# Installs what building and testing grace-init needs on a Debian machine with Rust (rustup):
# the musl targets (x86_64, aarch64), and the Debian packages the tests, images and benchmarks use.
# Idempotent: installs only what is missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done

# command → Debian package
needed=(
    busybox:busybox-static   # shell, httpd and sleep for the FROM-scratch test images
    unshare:util-linux       # PID namespaces: grace-init as PID 1
    python3:python3          # zero-downtime harness and benchmark driver
    tini:tini                # peers measured by the benchmark
    dumb-init:dumb-init
    catatonit:catatonit
    file:file                # "statically linked" check
    podman:podman            # podman --init with grace-init as its init-path (tests/docker_e2e.rs)
    ip:iproute2              # a private bridge for the test's own dockerd (--init-path)
    qemu-aarch64-static:qemu-user-static   # runs the aarch64 binary (tests, arm64 containers)
    update-binfmts:binfmt-support          # registers qemu-aarch64 with binfmt_misc
    help2man:help2man                      # the man page in the Debian packages (release.sh)
    mmdebstrap:mmdebstrap    # the Debian base image of the application examples (docker/base/debian)
)
missing=()
for pair in "${needed[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# Debian's matplotlib is for Debian's python3 (the harness runs /usr/bin/python3), not a pyenv one.
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
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

# The aarch64 binary runs here through binfmt_misc: qemu-user-static registers qemu-aarch64 with
# the F flag (the interpreter is opened once, so it also works inside containers).
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ] && [ "$(id -u)" = 0 ]; then
    mountpoint -q "$binfmt" || mount -t binfmt_misc binfmt_misc "$binfmt" \
        || echo "setup: cannot mount $binfmt; aarch64 binaries will not run here" >&2
    if [ -e "$binfmt/register" ]; then update-binfmts --enable qemu-aarch64; fi
fi
