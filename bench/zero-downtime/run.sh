#!/usr/bin/env bash
# Installs what bench/zero-downtime/run.py needs (Debian: python3, python3-matplotlib; the images
# come from docker/build-app-images.sh, which run.py calls), then runs it with the system python3
# (Debian's matplotlib is built for it). All arguments go to run.py, e.g. `--quick`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1; then
  echo "zero-downtime: installing python3-matplotlib" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q python3 python3-matplotlib >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q python3 python3-matplotlib >/dev/null; }
fi
exec /usr/bin/python3 "$here/run.py" "$@"
