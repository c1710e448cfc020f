#!/usr/bin/env bash
# A short check of grace-init as PID 1 of a container of any architecture (an arm64 image runs
# here through binfmt_misc and qemu-user-static):
#
#   docker/smoke-test.sh IMAGE PLATFORM [GRACE_INIT]    # e.g. grace-init/x:test-arm64 linux/arm64
#
# GRACE_INIT is grace-init's path in the image (default /grace-init), run as the entrypoint. The
# image needs sh, sleep and grep. Checks, each failing the script with the container's log:
#   exit code  `grace-init -- sh -c 'exit 3'` exits 3
#   reap       three orphans re-parented to grace-init are reaped: logged, and no zombie of PID 1 left
#   signal     `docker kill -s USR1` reaches the app's trap
#   stop       `docker stop` reaches the app's TERM trap; the container exits with the app's 7,
#              well before docker's 20 s deadline
#
# The containers need no network (--network none), so they do not depend on Docker's bridge.
set -euo pipefail
image=$1 platform=$2 gi=${3:-/grace-init}
name="grace-init-smoke-$$"
log() { echo "smoke-test [$platform $image]: $*" >&2; }
fail() { log "FAIL: $*"; docker logs "$name" >&2 2>&1 || true; docker rm -f "$name" >/dev/null 2>&1; exit 1; }
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
# The container's log, whole (grep -q on a pipe would end `docker logs` early: SIGPIPE, pipefail).
logs() { docker logs "$name" 2>&1; }
wait_log() { # wait_log TEXT: until the container's log has TEXT (30 s, emulation is slow)
    for _ in $(seq 300); do
        grep -qF -- "$1" <<<"$(logs)" && return 0
        sleep 0.1
    done
    fail "no '$1' in the log within 30 s"
}

code=0
docker run --rm --network none --platform "$platform" --entrypoint "$gi" "$image" -- sh -c 'exit 3' \
    || code=$?
[ "$code" = 3 ] || fail "grace-init -- sh -c 'exit 3' exited $code"
log "exit code: ok (3)"

app='trap "echo app: got USR1" USR1
trap "echo app: got TERM; exit 7" TERM
for i in 1 2 3; do (sleep 0.3 &); done
echo app: ready
while :; do sleep 0.1; done'
docker run -d --name "$name" --network none --platform "$platform" --entrypoint "$gi" "$image" \
    -vv -- sh -c "$app" >/dev/null
wait_log "app: ready"

for _ in $(seq 300); do
    [ "$(grep -c 'reaped: exited with 0' <<<"$(logs)")" -ge 3 ] && break
    sleep 0.1
done
reaped=$(grep -c 'reaped: exited with 0' <<<"$(logs)" || true)
[ "$reaped" -ge 3 ] || fail "grace-init reaped $reaped of the 3 orphans"
zombies=$(docker exec "$name" sh -c 'for f in /proc/[0-9]*/status; do
    grep -qs "^State:.*Z" "$f" && grep -qs "^PPid:[[:space:]]*1$" "$f" && echo "$f"; done; true')
[ -z "$zombies" ] || fail "zombies left: $zombies"
log "reap: ok (3 orphans reaped, no zombie)"

docker kill -s USR1 "$name" >/dev/null
wait_log "app: got USR1"
log "signal: ok (USR1 reached the app)"

start=$(date +%s)
docker stop -t 20 "$name" >/dev/null
took=$(( $(date +%s) - start ))
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
grep -qF "app: got TERM" <<<"$(logs)" || fail "the app never got SIGTERM"
[ "$code" = 7 ] || fail "docker stop: the container exited $code, not the app's 7"
[ "$took" -lt 15 ] || fail "docker stop took ${took}s"
log "stop: ok (app got SIGTERM, exit code 7, ${took}s)"
