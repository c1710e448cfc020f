#!/bin/sh
# The classic entrypoint script: some set-up, then the app started WITHOUT `exec`, so the app is a
# grandchild of PID 1, not a child.
#
# Run as PID 1 itself (ENTRYPOINT ["/start.sh"]) this script swallows SIGTERM: the kernel only
# delivers to PID 1 the signals it has a handler for, and a shell never passes a signal on to the
# command it is waiting for. `docker stop` then waits out its timeout and SIGKILLs everything
# (exit code 137, no graceful shutdown). Under grace-init the stop signal goes to the whole process
# group, this shell and the app alike, so the app shuts down gracefully.
echo "start.sh: preparing configuration"

# grace-init signals this shell too. Without a trap it would die of SIGTERM at once (status 143)
# while the app is still shutting down, and the container would report 143 instead of the app's
# status. A trap that only logs keeps the shell waiting; a *handler* (never `trap '' TERM`, an
# ignore the app would inherit and could not undo) is reset to the default in the app on exec.
trap 'echo "start.sh: got SIGTERM; the app got it too, waiting for it"' TERM

/app.sh "$@"
status=$?
echo "start.sh: app exited with status $status"
exit "$status"
