#!/usr/bin/env bash
# Builds every release artifact into dist/, for x86_64 and aarch64:
#
#   grace-init-x86_64, grace-init-aarch64            static, stripped binaries
#   grace-init_VERSION_{amd64,arm64}.deb             /usr/bin/grace-init, man page, copyright
#   grace_init-VERSION-py3-none-…_{x86_64,aarch64}.whl   pip puts grace-init on PATH
#   grace-init-image_VERSION_{amd64,arm64}.tar       `docker load` archive: FROM scratch + /grace-init
#   SHA256SUMS
#
# The version comes from Cargo.toml only (cargo metadata). The images are also loaded into the
# local Docker engine, if one is reachable, as grace-init/grace-init:TAG-{amd64,arm64} with
# TAG = $GRACE_INIT_TAG (default `test`; set it to the version for a real release).
# Needs help2man (scripts/setup.sh installs it) and dpkg-deb. scripts/check-release.sh installs
# the artifacts into containers and checks them.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "release: $*" >&2; }

meta=$(cargo metadata --no-deps --format-version 1 --locked)
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0][sys.argv[1]])' "$1" <<<"$meta"; }
version=$(field version)
summary=$(field description)
tag=${GRACE_INIT_TAG:-test}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
maintainer="grace-init developers <dev@grace-init.invalid>"

rm -rf dist target/release-work
mkdir -p dist target/release-work
work=target/release-work

# 1. binaries
for arch in x86_64 aarch64; do
    log "cargo build --release --target $arch-unknown-linux-musl"
    cargo build --release --locked --quiet --target "$arch-unknown-linux-musl"
    install -m 0755 "target/$arch-unknown-linux-musl/release/grace-init" "dist/grace-init-$arch"
    file "dist/grace-init-$arch" | grep -q "statically linked.*stripped" \
        || { log "dist/grace-init-$arch is not static and stripped"; exit 1; }
done
host_bin="dist/grace-init-$(uname -m)"
[ "$("$host_bin" --version)" = "grace-init $version" ] \
    || { log "$host_bin --version does not say $version"; exit 1; }

# 2. man page, from --help (identical on both architectures)
log "man page (help2man)"
install -m 0755 "$host_bin" "$work/grace-init"   # help2man names the page after the file
help2man --no-info --section 1 --name "$summary" --version-string "$version" \
    --output "$work/grace-init.1" "$work/grace-init"
gzip -9n "$work/grace-init.1"

# 3. Debian packages
deb() { # deb ARCH DEBARCH
    local root="$work/deb-$2" doc
    doc="$root/usr/share/doc/grace-init"
    mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" "$doc"
    install -m 0755 "dist/grace-init-$1" "$root/usr/bin/grace-init"
    install -m 0644 "$work/grace-init.1.gz" "$root/usr/share/man/man1/grace-init.1.gz"
    install -m 0644 packaging/copyright "$doc/copyright"
    (cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
    cat > "$root/DEBIAN/control" <<CONTROL
Package: grace-init
Version: $version
Architecture: $2
Maintainer: $maintainer
Installed-Size: $(du -sk --apparent-size "$root/usr" | cut -f1)
Section: admin
Priority: optional
Description: $summary
 grace-init is the ENTRYPOINT of a container: it starts the command in its own
 process group, forwards signals to it (translated if asked), reaps zombies and
 exits with the command's status. On a stop it can keep the application serving
 for a delay, run a pre-stop hook and SIGKILL what is left before the runtime's
 deadline, logging every step.
 .
 The binary is static (musl), so it can also be copied into any image.
CONTROL
    chmod -R u=rwX,go=rX "$root"
    dpkg-deb --root-owner-group -Zxz --build "$root" "dist/grace-init_${version}_$2.deb" >/dev/null
    log "dist/grace-init_${version}_$2.deb"
}
deb x86_64 amd64
deb aarch64 arm64

# 4. Python wheels and 5. FROM-scratch images
for pair in x86_64:amd64 aarch64:arm64; do
    arch=${pair%:*} debarch=${pair#*:}
    python3 packaging/wheel.py "dist/grace-init-$arch" "$version" "$arch" "$summary" dist >/dev/null
    python3 packaging/image.py "dist/grace-init-$arch" "$debarch" \
        "grace-init/grace-init:$tag-$debarch" "$version" "dist/grace-init-image_${version}_$debarch.tar" >/dev/null
    if docker info >/dev/null 2>&1; then
        docker load -q -i "dist/grace-init-image_${version}_$debarch.tar" >&2
    fi
done

(cd dist && sha256sum grace-init-x86_64 grace-init-aarch64 *.deb *.whl *.tar > SHA256SUMS)
log "dist/:"
(cd dist && ls -l) >&2
