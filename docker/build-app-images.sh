#!/usr/bin/env bash
# Builds the real-application examples (docker/examples/{nginx,postgres,apache,gunicorn,redis,jvm})
# on a Debian base image made offline from Debian's packages (docker/base/debian/build.sh:
# mmdebstrap + docker import, cached by its inputs). Nothing is pulled. Idempotent: an unchanged
# package list reuses the base image, Docker's cache does the rest.
#
#   docker/build-app-images.sh            # runs `cargo build --release` first
#   GRACE_INIT_BIN=/path/to/grace-init docker/build-app-images.sh
#
# Images (tag = ${GRACE_INIT_TAG:-test}): grace-init/grace-init (only /grace-init),
# grace-init/debian-apps and grace-init/debian-jvm (the bases),
# grace-init/{nginx,postgres,apache,gunicorn,redis,jvm}, and
# grace-init/zd-replica (bench/zero-downtime/image, the replicas of the zero-downtime run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${GRACE_INIT_TAG:-test}"
ctx="$root/target/docker-context/apps"
log() { echo "build-app-images: $*" >&2; }

# Debian packages of the base image; the examples and bench/zero-downtime use them. dumb-init
# and tini are here for the zero-downtime comparison.
packages=(nginx-light postgresql apache2 gunicorn redis-server dumb-init tini procps)
apps=(nginx postgres apache gunicorn redis)
# The JVM example has its own base: Debian's headless JRE is large and changes on its own schedule.
jvm_packages=(default-jre-headless)

if [ -n "${GRACE_INIT_BIN:-}" ]; then
  bin="$GRACE_INIT_BIN"
else
  log "cargo build --release"
  (cd "$root" && cargo build --release --quiet)
  bin="$root/target/x86_64-unknown-linux-musl/release/grace-init"
fi
[ -x "$bin" ] || { log "no grace-init binary at $bin"; exit 1; }

start=$SECONDS
base="$("$root/docker/base/debian/build.sh" --tag "grace-init/debian-apps:$tag" "${packages[@]}")"
jvm_base="$("$root/docker/base/debian/build.sh" --tag "grace-init/debian-jvm:$tag" "${jvm_packages[@]}")"

build() { # build NAME CONTEXT [BASE [docker build args...]]
  local name="$1" context="$2" from="${3:-$base}"; shift 2; shift $(( $# > 0 ))
  log "grace-init/$name:$tag"
  local out
  if ! out="$(DOCKER_BUILDKIT=0 docker build -q "$@" \
      --build-arg "GRACE_INIT_IMAGE=grace-init/grace-init:$tag" \
      --build-arg "DEBIAN_IMAGE=$from" \
      -t "grace-init/$name:$tag" "$context" 2>&1)"; then
    echo "$out" >&2
    log "building grace-init/$name:$tag failed"
    exit 1
  fi
}

mkdir -p "$ctx/grace-init"
install -m 0755 "$bin" "$ctx/grace-init/grace-init"
build grace-init "$ctx/grace-init" "$base" -f "$root/docker/Dockerfile"
for app in "${apps[@]}"; do
  build "$app" "$root/docker/examples/$app"
done
build jvm "$root/docker/examples/jvm" "$jvm_base"
build zd-replica "$root/bench/zero-downtime/image"
log "done in $((SECONDS - start)) s"
