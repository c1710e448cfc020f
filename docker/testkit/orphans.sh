#!/bin/sh
# Test app that leaves orphans behind: each `( sleep 1 & )` subshell exits at once, so its sleep
# is re-parented to PID 1, then exits a second later. Nobody but PID 1 can reap those; the app
# then execs a long sleep, which never calls wait(). Without a reaping init they stay zombies.
for i in 1 2 3 4 5; do
  ( sleep 1 & )
done
echo "app: left 5 orphans behind"
exec sleep 300
