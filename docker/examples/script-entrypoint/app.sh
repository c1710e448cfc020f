#!/bin/sh
# The app: works until SIGTERM, then shuts down gracefully and exits with status 42 (a distinctive
# status, so a test can tell the app's own exit from a death by signal: 143 or 137).
echo "app: started as pid $$"
trap 'echo "app: got SIGTERM, shutting down gracefully"; sleep 1; echo "app: bye"; exit 42' TERM
while :; do
  # In the background + wait, so the trap runs as soon as the signal arrives.
  sleep 1 & wait $!
done
