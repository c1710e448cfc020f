#!/usr/bin/env python3
"""Writes a `docker load` archive of a FROM-scratch image holding only /grace-init, for any
architecture: Docker's legacy builder labels a FROM-scratch image with the host's architecture
whatever --platform says, and this engine has no BuildKit, so the image is assembled here.

    packaging/image.py BINARY ARCH REPO:TAG VERSION OUT.tar     # ARCH: amd64 or arm64

Reproducible: fixed timestamps (SOURCE_DATE_EPOCH, else 0), sorted JSON.
"""
import hashlib
import io
import json
import os
import sys
import tarfile
import time


def tar_bytes(members):
    """An uncompressed tar of (name, bytes, mode) entries, owned by root, mtime fixed."""
    buf = io.BytesIO()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main(binary, arch, ref, version, out):
    with open(binary, "rb") as f:
        layer = tar_bytes([("grace-init", f.read(), 0o755)])
    layer_id = hashlib.sha256(layer).hexdigest()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                            time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "0"))))
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "Entrypoint": ["/grace-init"],
            "Labels": {"org.opencontainers.image.version": version},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": created, "created_by": "COPY grace-init /grace-init"}],
    }
    if arch == "arm64":
        config["variant"] = "v8"
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_json).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_id}/layer.tar"]}]
    archive = tar_bytes([
        (f"{layer_id}/layer.tar", layer, 0o644),
        (config_name, config_json, 0o644),
        ("manifest.json", json.dumps(manifest, sort_keys=True).encode(), 0o644),
    ])
    with open(out, "wb") as f:
        f.write(archive)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
