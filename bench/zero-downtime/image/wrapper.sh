#!/bin/sh
# The shell wrapper many images use: start the server in the background, pass SIGTERM on, wait.
nginx -g 'daemon off;' &
pid=$!
trap 'kill -TERM "$pid"' TERM
wait "$pid"
trap - TERM
wait "$pid"
