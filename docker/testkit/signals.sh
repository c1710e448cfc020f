#!/bin/sh
# Test app: logs every signal it gets as "app: got SIG<NAME>". On SIGTERM it exits with
# $TERM_EXIT (default 42) after $TERM_DELAY seconds (default 0); IGNORE_TERM=1 makes it shrug
# SIGTERM off and keep running. Serves HTTP on $PORT when set. Children in the background
# + `wait`, so traps run as soon as a signal arrives.
log() { echo "app: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
if [ -n "$PORT" ]; then
  mkdir -p /www && echo ok > /www/index.html
  httpd -f -p "$PORT" -h /www &
  httpd_pid=$!
fi
for s in HUP INT QUIT USR1 USR2 ALRM WINCH CONT TSTP; do
  trap "log 'got SIG$s'" "$s"
done
on_term() {
  if [ -e /tmp/pre-stop.done ]; then hook=finished; else hook=not-finished; fi
  log "got SIGTERM (pre-stop hook: $hook)"
  if [ "${IGNORE_TERM:-0}" = 1 ]; then log "ignoring SIGTERM"; return; fi
  [ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null
  sleep "${TERM_DELAY:-0}"
  log "exiting ${TERM_EXIT:-42}"
  exit "${TERM_EXIT:-42}"
}
trap on_term TERM
log "ready"
while :; do
  sleep 1 & wait $!
done
