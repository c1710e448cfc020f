#!/bin/sh
# A typical web app: serves HTTP and, on SIGTERM, stops serving at once (closes its listener) and
# exits with 143, as a JVM does. Every line carries the container's uptime in seconds.
PORT="${PORT:-8080}"
log() { echo "app: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
mkdir -p /www
echo "hello from $(hostname)" > /www/index.html
httpd -f -p "$PORT" -h /www &
httpd_pid=$!
log "serving http on :$PORT"
on_term() {
  if [ -e /tmp/pre-stop.done ]; then hook=finished; else hook=not-finished; fi
  log "got SIGTERM (pre-stop hook: $hook); stopping now"
  kill "$httpd_pid" 2>/dev/null
  wait "$httpd_pid" 2>/dev/null
  exit 143
}
trap on_term TERM
while kill -0 "$httpd_pid" 2>/dev/null; do
  wait "$httpd_pid"
done
exit 1
