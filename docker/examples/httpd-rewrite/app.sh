#!/bin/sh
# Stands in for a server whose SIGTERM is a *fast* stop that drops open connections, and whose
# graceful stop is another signal (nginx, php-fpm, Unicorn: QUIT; Apache httpd: WINCH).
# It supervises busybox httpd and logs every signal it gets, so you can see what arrived.
PORT="${PORT:-8080}"
log() { echo "app: $*"; }
mkdir -p /www
echo "hello from $(hostname)" > /www/index.html
httpd -f -p "$PORT" -h /www &
httpd_pid=$!
log "serving http on :$PORT (httpd pid $httpd_pid)"

stop_httpd() { kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null; }
trap 'log "got SIGHUP: reloading configuration"' HUP
trap 'log "got SIGUSR1: reopening log files"' USR1
trap 'log "got SIGUSR2"' USR2
trap 'log "got SIGWINCH"' WINCH
trap 'log "got SIGINT: fast stop"; stop_httpd; exit 130' INT
trap 'log "got SIGTERM: FAST stop, dropping open connections"; stop_httpd; exit 143' TERM
trap 'log "got SIGQUIT: graceful stop, finishing open requests"; sleep 1; stop_httpd; log "graceful stop done"; exit 0' QUIT

# `wait` returns early whenever a trapped signal arrives; keep waiting while httpd lives.
while kill -0 "$httpd_pid" 2>/dev/null; do
  wait "$httpd_pid"
done
log "httpd exited on its own"
exit 1
