#!/bin/sh
# The app under test: busybox httpd behind a minimal supervisor that behaves like most web servers
# on SIGTERM: it stops serving at once (closes the listener) and exits 0.
mkdir -p /www
echo "hello from $(hostname)" > /www/index.html
httpd -f -p 8080 -h /www &
httpd_pid=$!
trap 'echo "app: got SIGTERM, stopping now"; kill "$httpd_pid"; wait "$httpd_pid"; exit 0' TERM
echo "app: serving on :8080"
while kill -0 "$httpd_pid" 2>/dev/null; do
  wait "$httpd_pid"
done
