#!/bin/sh
# Pre-stop hook, run by grace-init inside the container when the stop signal arrives, alongside
# the stop delay (e.g. deregister from a service registry, tell a sidecar, flush a cache).
echo "pre-stop: [$(cut -d' ' -f1 /proc/uptime)] deregistering"
sleep 1
touch /tmp/pre-stop.done
echo "pre-stop: [$(cut -d' ' -f1 /proc/uptime)] done"
