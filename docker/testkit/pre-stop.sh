#!/bin/sh
# Pre-stop hook for the tests: takes 2 s, then leaves /tmp/pre-stop.done.
echo "pre-stop: [$(cut -d' ' -f1 /proc/uptime)] started"
sleep 2
touch /tmp/pre-stop.done
echo "pre-stop: [$(cut -d' ' -f1 /proc/uptime)] done"
