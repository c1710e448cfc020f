#!/usr/bin/env bash
# Installs the artifacts scripts/release.sh put in dist/ the way users install them, each into a
# fresh container of its architecture, and runs docker/smoke-test.sh there (exit code, signal,
# reap, stop). arm64 containers run here through binfmt_misc and qemu-user-static.
#
#   image  grace-init/grace-init:TAG-ARCH: checked to be one layer holding only /grace-init, then
#          tested with Debian's busybox-static of that architecture added on top
#   .deb   its files checked, then `dpkg -i`, then `apt-get install ./…deb`, into the Debian base
#          image (docker/base/debian/build.sh --arch ARCH; its dpkg skips man pages, as slim
#          images do)
#   README the multi-architecture Dockerfile snippet of the README's "Install", built for ARCH
#   wheel  `pip install` into a Debian python image (build.sh --arch ARCH python3-pip); pip must
#          also accept it for musllinux_1_1 (checked with pip's --platform)
#
#   scripts/check-release.sh [amd64] [arm64]      # default: both
#
# TAG = $GRACE_INIT_TAG (default `test`), as for release.sh. Needs root and a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "check-release: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

version=$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
tag=${GRACE_INIT_TAG:-test}
work=target/release-check
rm -rf "$work"
mkdir -p "$work"
(cd dist && sha256sum --quiet -c SHA256SUMS) || die "dist/SHA256SUMS does not match dist/"

# Debian's busybox-static for ARCH, extracted into DIR/bin/busybox.
busybox() { # busybox ARCH DIR
    if [ "$1" != "$(dpkg --print-architecture)" ] \
        && ! dpkg --print-foreign-architectures | grep -qx "$1"; then
        log "dpkg --add-architecture $1 (to download busybox-static:$1)"
        dpkg --add-architecture "$1"
        apt-get update -q >/dev/null
    fi
    mkdir -p "$2"
    (cd "$2" && { apt-get download -q "busybox-static:$1" 2>/dev/null \
        || { apt-get update -q >/dev/null && apt-get download -q "busybox-static:$1"; }; })
    dpkg-deb -x "$2"/busybox-static_*.deb "$2"
}

# Writes TEXT as CONTEXT/Dockerfile and builds IMAGE from it with the classic builder, which gives
# the image the architecture of its base image. Nothing here needs a network.
build() { # build IMAGE CONTEXT TEXT [docker build options...]
    local image=$1 context=$2
    printf '%s\n' "$3" > "$context/Dockerfile"
    shift 3
    DOCKER_BUILDKIT=0 docker build -q --network none "$@" -t "$image" "$context" \
        >/dev/null 2>"$context/build.log" \
        || { cat "$context/build.log" >&2; die "building $image"; }
}

arch_of() { docker image inspect -f '{{.Architecture}}' "$1"; }

[ $# -gt 0 ] || set -- amd64 arm64
for arch in "$@"; do
    case "$arch" in
        amd64) cpu=x86_64 ;;
        arm64) cpu=aarch64 ;;
        *) die "unknown architecture $arch (amd64 or arm64)" ;;
    esac
    platform=linux/$arch

    log "$arch: the FROM-scratch image"
    image=grace-init/grace-init:$tag-$arch
    archive=dist/grace-init-image_${version}_$arch.tar
    docker load -q -i "$archive" >/dev/null
    [ "$(docker image inspect -f '{{len .RootFS.Layers}} {{.Architecture}}' "$image")" = "1 $arch" ] \
        || die "$image is not one layer for $arch"
    layer=$(tar -xOf "$archive" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Layers"][0])')
    [ "$(tar -xOf "$archive" "$layer" | tar -t)" = grace-init ] || die "$image holds more than /grace-init"
    busybox "$arch" "$work/busybox-$arch"
    install -m 0755 "$work/busybox-$arch/bin/busybox" "$work/busybox-$arch/busybox"
    build "grace-init/smoke-scratch:$tag-$arch" "$work/busybox-$arch" 'ARG BASE
FROM $BASE
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]' --build-arg "BASE=$image"
    [ "$(arch_of "grace-init/smoke-scratch:$tag-$arch")" = "$arch" ] || die "smoke image is not $arch"
    docker/smoke-test.sh "grace-init/smoke-scratch:$tag-$arch" "$platform" /grace-init

    log "$arch: the Debian package"
    files=$(dpkg-deb --fsys-tarfile "dist/grace-init_${version}_$arch.deb" | tar -t | grep -v '/$' | sort | paste -sd' ')
    [ "$files" = "./usr/bin/grace-init ./usr/share/doc/grace-init/copyright ./usr/share/man/man1/grace-init.1.gz" ] \
        || die "the .deb holds: $files"
    debian=$(docker/base/debian/build.sh --arch "$arch")
    mkdir -p "$work/deb-$arch"
    cp "dist/grace-init_${version}_$arch.deb" "$work/deb-$arch/grace-init.deb"
    # dpkg -i, then removed again and installed the README's way, with apt
    build "grace-init/smoke-deb:$tag-$arch" "$work/deb-$arch" 'ARG BASE
FROM $BASE
COPY grace-init.deb /tmp/
RUN dpkg -i /tmp/grace-init.deb && dpkg --purge grace-init \
 && apt-get install -y -q /tmp/grace-init.deb && rm /tmp/grace-init.deb' --build-arg "BASE=$debian"
    out=$(docker run --rm --network none --platform "$platform" --entrypoint dpkg-query \
        "grace-init/smoke-deb:$tag-$arch" -W -f '${Package} ${Version} ${Architecture} ${Status}' grace-init)
    [ "$out" = "grace-init $version $arch install ok installed" ] || die "dpkg-query says: $out"
    out=$(docker run --rm --network none --platform "$platform" --entrypoint /usr/bin/grace-init \
        "grace-init/smoke-deb:$tag-$arch" --version)
    [ "$out" = "grace-init $version" ] || die "/usr/bin/grace-init --version says: $out"
    docker/smoke-test.sh "grace-init/smoke-deb:$tag-$arch" "$platform" /usr/bin/grace-init

    log "$arch: the README's multi-architecture Dockerfile"
    mkdir -p "$work/snippet-$arch"
    snippet=$(awk '/multi-arch snippet/ { found = 1; next }
        found && /^```dockerfile/ { inside = 1; next }
        inside && /^```/ { exit }
        inside' README.md)
    grep -q 'FROM grace-init/grace-init:'"$version"'-${TARGETARCH}' <<<"$snippet" \
        || die "README's multi-arch snippet not found, or not for version $version"
    snippet=$(sed "s|grace-init/grace-init:$version-|grace-init/grace-init:$tag-|; s|debian:bookworm-slim|$debian|" <<<"$snippet")
    build "grace-init/smoke-multiarch:$tag-$arch" "$work/snippet-$arch" "$snippet" --build-arg "TARGETARCH=$arch"
    [ "$(arch_of "grace-init/smoke-multiarch:$tag-$arch")" = "$arch" ] || die "snippet image is not $arch"
    docker/smoke-test.sh "grace-init/smoke-multiarch:$tag-$arch" "$platform" /usr/local/bin/grace-init

    log "$arch: the Python wheel"
    python=$(docker/base/debian/build.sh --arch "$arch" python3-pip)
    mkdir -p "$work/wheel-$arch"
    wheel=$(cd dist && ls grace_init-"$version"-py3-none-*_"$cpu".whl)
    cp "dist/$wheel" "$work/wheel-$arch/"
    build "grace-init/smoke-wheel:$tag-$arch" "$work/wheel-$arch" "ARG BASE
FROM \$BASE
COPY $wheel /tmp/
RUN pip install -q --dry-run --no-index --no-deps --only-binary=:all: --platform musllinux_1_1_$cpu \\
        --target /tmp/musl /tmp/$wheel \\
 && pip install -q --no-index --break-system-packages /tmp/$wheel && rm /tmp/$wheel" \
        --build-arg "BASE=$python"
    out=$(docker run --rm --network none --platform "$platform" --entrypoint sh \
        "grace-init/smoke-wheel:$tag-$arch" -c 'command -v grace-init && grace-init --version')
    [ "$out" = "/usr/local/bin/grace-init
grace-init $version" ] || die "the wheel's grace-init: $out"
    docker/smoke-test.sh "grace-init/smoke-wheel:$tag-$arch" "$platform" grace-init
done
log "all artifacts installed and checked on $*"
