#!/usr/bin/env python3
"""Builds a Python wheel that puts the static grace-init binary on PATH (pip installs
`<name>-<version>.data/scripts/*` into the environment's bin directory), as dumb-init's wheel does.

    packaging/wheel.py BINARY VERSION ARCH SUMMARY OUTDIR      # ARCH: x86_64 or aarch64

The binary is static, so one wheel per architecture fits every glibc (manylinux2014 = glibc 2.17
and newer) and musl (musllinux 1.1 and newer) Linux. Standard library only; the zip is
reproducible (fixed timestamps, sorted entries).
"""
import base64
import hashlib
import os
import sys
import zipfile

NAME = "grace-init"
DIST = "grace_init"  # the distribution name as wheel file names write it


def tags(arch):
    platforms = [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}", f"musllinux_1_1_{arch}"]
    return "py3", "none", platforms


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def main(binary, version, arch, summary, outdir):
    python, abi, platforms = tags(arch)
    info = f"{DIST}-{version}.dist-info"
    with open(binary, "rb") as f:
        program = f.read()
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {version}\n"
        f"Summary: {summary}\n"
        "License: MIT\n"
        "Requires-Python: >=3\n"
        "Description-Content-Type: text/plain\n"
        "\n"
        "The static grace-init binary, installed as `grace-init` on PATH. Use it as a\n"
        "container's ENTRYPOINT: ENTRYPOINT [\"grace-init\", \"--\"].\n"
    )
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: grace-init packaging/wheel.py\n"
        "Root-Is-Purelib: false\n"
        + "".join(f"Tag: {python}-{abi}-{p}\n" for p in platforms)
    )
    files = [
        (f"{DIST}-{version}.data/scripts/grace-init", program, 0o755),
        (f"{info}/METADATA", metadata.encode(), 0o644),
        (f"{info}/WHEEL", wheel.encode(), 0o644),
    ]
    record = "".join(record_line(p, d) + "\n" for p, d, _ in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode(), 0o644))

    out = os.path.join(outdir, f"{DIST}-{version}-{python}-{abi}-{'.'.join(platforms)}.whl")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data, mode in files:
            entry = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
