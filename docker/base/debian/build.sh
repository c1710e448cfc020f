#!/usr/bin/env bash
# Builds a Debian base image offline: mmdebstrap makes a root file system from Debian's packages
# (the Debian entries of this machine's apt sources), `docker import` turns it into an image.
# Nothing is pulled from a registry.
#
#   docker/base/debian/build.sh [--arch amd64|arm64] [--suite bookworm] [--tag NAME] [--rebuild] [PACKAGE...]
#
# Prints the image reference (NAME, default grace-init/debian:SUITE-ARCH-HASH) on stdout; all
# logs go to stderr. The image is cached by a hash of what went in: this script, the suite, the
# architecture, the sorted package list and the apt sources used. The hash is stored in the image
# label org.grace-init.debian.inputs and in the tag grace-init/debian-cache:HASH; a re-run with the
# same inputs finds it (`docker image inspect`) and does no work beyond, at most, a `docker tag`.
# --rebuild ignores the cache.
#
# A foreign --arch (arm64 on an amd64 machine, or the reverse) runs the packages' maintainer
# scripts under qemu-user through binfmt_misc; as root the script installs qemu-user-static when
# that is missing.
#
# Needs root (mmdebstrap's root mode; it installs mmdebstrap with apt-get when missing).
set -euo pipefail

script="$(readlink -f "${BASH_SOURCE[0]}")"
log() { echo "debian-base: $*" >&2; }
die() { log "$*"; exit 1; }

arch=amd64
suite=bookworm
tag=
rebuild=false
packages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
    --arch=*) arch="${1#*=}"; shift ;;
    --suite) suite="${2:?--suite needs a value}"; shift 2 ;;
    --suite=*) suite="${1#*=}"; shift ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --rebuild) rebuild=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$script" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    --) shift; packages+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) packages+=("$1"); shift ;;
  esac
done

case "$arch" in
  amd64) qemu=x86_64 ;;
  arm64) qemu=aarch64 ;;
  *) die "--arch must be amd64 or arm64, not $arch" ;;
esac
[[ "$suite" =~ ^[a-z]+$ ]] || die "bad suite name: $suite"
for p in ${packages[@]+"${packages[@]}"}; do
  [[ "$p" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "bad package name: $p"
done
sorted="$(printf '%s\n' ${packages[@]+"${packages[@]}"} | sed '/^$/d' | sort -u | paste -sd, -)"

need_root() { [ "$(id -u)" = 0 ] || die "$1 (run as root)"; }
apt_install() {
  need_root "need $* installed"
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

# The Debian entries of this machine's apt sources for SUITE, SUITE-updates and SUITE-security:
# deb822 stanzas from sources.list.d/*.sources, one-line "deb" entries from *.list files.
debian_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() {
        if (stanza != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled && keep) printf "%s\n", stanza
        stanza = ""; types = ""; enabled = 1; keep = 0
      }
      BEGIN { enabled = 1 }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      {
        stanza = stanza $0 "\n"
        if (tolower($1) == "types:") types = $0
        if (tolower($1) == "enabled:" && tolower($2) == "no") enabled = 0
        if (tolower($1) == "suites:")
          for (i = 2; i <= NF; i++) if ($i == suite || index($i, suite "-") == 1) keep = 1
      }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      $1 == "deb" {
        # deb [options] URI SUITE COMPONENTS...
        i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        s = $(i + 1)
        if (s == suite || index(s, suite "-") == 1) print
      }' "$f"
  done
}
sources="$(debian_sources)"
[ -n "$sources" ] || die "no apt source for $suite in /etc/apt/sources.list*"

hash="$( { sha256sum < "$script"; printf 'suite=%s\narch=%s\npackages=%s\n' "$suite" "$arch" "$sorted"; \
           printf '%s\n' "$sources"; } | sha256sum | cut -c1-16)"
cache_ref="grace-init/debian-cache:$hash"
ref="${tag:-grace-init/debian:$suite-$arch-$hash}"
label=org.grace-init.debian.inputs

command -v docker >/dev/null || die "docker is not installed"
label_of() { docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true; }

# One build per input hash at a time, also across checkouts sharing this engine.
lock="${TMPDIR:-/tmp}/grace-init-debian-$hash.lock"
exec 9>"$lock"
flock 9

if [ "$rebuild" = false ]; then
  if [ "$(label_of "$ref")" = "$hash" ]; then
    log "$ref is up to date (inputs $hash)"
    echo "$ref"; exit 0
  fi
  if [ "$(label_of "$cache_ref")" = "$hash" ]; then
    log "tagging cached $cache_ref as $ref"
    docker tag "$cache_ref" "$ref"
    echo "$ref"; exit 0
  fi
fi

command -v mmdebstrap >/dev/null || apt_install mmdebstrap
need_root "mmdebstrap runs in root mode"
host_arch="$(dpkg --print-architecture)"
if [ "$arch" != "$host_arch" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ]; then
  apt_install qemu-user-static binfmt-support
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ] || update-binfmts --enable "qemu-$qemu" >&2 || true
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ] \
    || die "no binfmt_misc entry for qemu-$qemu: cannot run $arch maintainer scripts on $host_arch"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/grace-init-debian.XXXXXX")"
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$sources" > "$work/debian.sources.list"
# One-line and deb822 entries cannot share a file: split them.
if grep -q '^deb ' "$work/debian.sources.list"; then
  grep '^deb ' "$work/debian.sources.list" > "$work/a.list"
fi
if grep -v '^deb ' "$work/debian.sources.list" | grep -q .; then
  grep -v '^deb ' "$work/debian.sources.list" > "$work/b.sources"   # stanzas, blank-line separated
fi
mirrors=()
[ -f "$work/a.list" ] && mirrors+=("$work/a.list")
[ -f "$work/b.sources" ] && mirrors+=("$work/b.sources")

log "mmdebstrap $suite/$arch${sorted:+ with $sorted} (inputs $hash)"
start=$SECONDS
include=()
[ -n "$sorted" ] && include=(--include="$sorted")
# variant apt: Essential packages + apt; the packages' dependencies come along. No documentation,
# no apt lists (mmdebstrap's clean-up), and no services started at install (its policy-rc.d).
# /usr/share/man/man1 stays as an empty directory: some maintainer scripts (openjdk's
# update-alternatives) put links there and fail without it.
if ! mmdebstrap --mode=root --variant=apt --architectures="$arch" \
      --format=tar --skip=output/mknod \
      --setup-hook='mkdir -p "$1/usr/share/man/man1"' \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      ${include[@]+"${include[@]}"} \
      "$suite" "$work/rootfs.tar" "${mirrors[@]}" >"$work/mmdebstrap.log" 2>&1; then
  tail -n 40 "$work/mmdebstrap.log" >&2
  die "mmdebstrap failed"
fi
log "rootfs $(du -h "$work/rootfs.tar" | cut -f1) in $((SECONDS - start)) s; docker import"

docker import \
  --platform "linux/$arch" \
  --change "LABEL $label=$hash" \
  --change "LABEL org.grace-init.debian.packages=$sorted" \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change 'CMD ["/bin/bash"]' \
  --message "mmdebstrap $suite $arch $sorted" \
  "$work/rootfs.tar" "$cache_ref" >/dev/null
# `docker import --platform` needs an experimental daemon; elsewhere the image says the engine's
# architecture. For a foreign --arch, rewrite the architecture in the image config (docker save,
# edit, docker load): the layer stays as it is, the image ID changes with the config.
if [ "$(docker image inspect -f '{{.Architecture}}' "$cache_ref")" != "$arch" ]; then
  log "setting the image architecture to $arch"
  imported="$(docker image inspect -f '{{.Id}}' "$cache_ref")"
  docker save -o "$work/image.tar" "$cache_ref"
  python3 - "$work/image.tar" "$work/fixed.tar" "$arch" <<'PY'
import hashlib, io, json, sys, tarfile
src, dst, arch = sys.argv[1:]
with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
    manifest = json.load(tin.extractfile("manifest.json"))
    old = manifest[0]["Config"]
    config = json.load(tin.extractfile(old))
    config["architecture"] = arch
    data = json.dumps(config, separators=(",", ":")).encode()
    new = hashlib.sha256(data).hexdigest() + ".json"
    manifest[0]["Config"] = new
    extra = {new: data, "manifest.json": json.dumps(manifest).encode()}
    for member in tin.getmembers():
        if member.name in (old, "manifest.json"):
            continue
        tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
    for name, blob in extra.items():
        info = tarfile.TarInfo(name)
        info.size = len(blob)
        tout.addfile(info, io.BytesIO(blob))
PY
  rm -f "$work/image.tar"
  docker load -q -i "$work/fixed.tar" >/dev/null
  [ "$(docker image inspect -f '{{.Architecture}}' "$cache_ref")" = "$arch" ] \
    || die "could not set the architecture of $cache_ref to $arch"
  docker rmi "$imported" >/dev/null 2>&1 || true   # the untagged original
fi
[ "$ref" = "$cache_ref" ] || docker tag "$cache_ref" "$ref"
[ "$(label_of "$ref")" = "$hash" ] || die "$ref does not carry label $label=$hash after the import"
log "built $ref in $((SECONDS - start)) s"
echo "$ref"
