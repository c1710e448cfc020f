#!/usr/bin/env bash
# Builds every grace-init Docker image from the static release binary, offline (FROM scratch
# only, nothing is pulled). Idempotent: re-running rebuilds only what changed (Docker's cache).
#
#   docker/build-images.sh            # runs `cargo build --release` first
#   GRACE_INIT_BIN=/path/to/grace-init docker/build-images.sh   # use this binary, skip cargo
#
# Images (tag = ${GRACE_INIT_TAG:-test}):
#   grace-init/grace-init        docker/Dockerfile: only /grace-init
#   grace-init/busybox           docker/base/busybox: scratch + busybox-static (base of the rest)
#   grace-init/script-entrypoint docker/examples/script-entrypoint
#   grace-init/httpd-rewrite     docker/examples/httpd-rewrite
#   grace-init/env-config        docker/examples/env-config
#   grace-init/testkit           docker/testkit (tests/docker_e2e.rs)
# The Debian-based images (real applications, zero-downtime replicas): docker/build-app-images.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${GRACE_INIT_TAG:-test}"
ctx="$root/target/docker-context"   # target/ is git-ignored

log() { echo "build-images: $*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need $* installed (apt-get install $*), and not root"; exit 1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

# A binary that will run in a FROM-scratch image has no ELF interpreter (PT_INTERP).
is_static() {
  [ -x "$1" ] || return 1
  ! LC_ALL=C grep -aq '/lib64/ld-linux\|/lib/ld-linux\|/lib/ld-musl' <(head -c 4096 "$1")
}

# 1. the grace-init binary
if [ -n "${GRACE_INIT_BIN:-}" ]; then
  bin="$GRACE_INIT_BIN"
else
  log "cargo build --release"
  (cd "$root" && cargo build --release --quiet)
  bin="$root/target/x86_64-unknown-linux-musl/release/grace-init"
fi
is_static "$bin" || { log "$bin is missing or not a static binary"; exit 1; }

# 2. busybox-static (Debian's `busybox` package is dynamic and conflicts with it) and tini-static
if ! is_static /usr/bin/busybox || ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt_install busybox-static
fi
if ! is_static /usr/bin/tini-static; then
  apt_install tini
fi

command -v docker >/dev/null || { log "docker is not installed"; exit 1; }

# 3. build contexts (fresh copies every run; Docker's cache keys on the content)
mkdir -p "$ctx/grace-init" "$ctx/busybox"
install -m 0755 "$bin" "$ctx/grace-init/grace-init"
install -m 0755 /usr/bin/busybox "$ctx/busybox/busybox"
cp "$root/docker/base/busybox/Dockerfile" "$ctx/busybox/Dockerfile"

build() { # build NAME CONTEXT [docker build args...]
  local name="$1" context="$2"; shift 2
  log "grace-init/$name:$tag"
  local out
  if ! out="$(DOCKER_BUILDKIT=0 docker build -q "$@" \
      --build-arg "GRACE_INIT_IMAGE=grace-init/grace-init:$tag" \
      --build-arg "BASE_IMAGE=grace-init/busybox:$tag" \
      -t "grace-init/$name:$tag" "$context" 2>&1)"; then
    echo "$out" >&2
    log "building grace-init/$name:$tag failed"
    exit 1
  fi
}

build grace-init "$ctx/grace-init" -f "$root/docker/Dockerfile"
build busybox "$ctx/busybox"
for example in script-entrypoint httpd-rewrite env-config; do
  build "$example" "$root/docker/examples/$example"
done
build testkit "$root/docker/testkit"
log "done ($(docker image ls --format '{{.Repository}}:{{.Tag}}' 'grace-init/*' | grep -c ":$tag\$") images tagged :$tag)"
