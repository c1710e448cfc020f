#!/bin/sh
# Creates the cluster on first start, then replaces itself with the postmaster (exec), so that
# grace-init's child is postgres itself.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --auth=trust --username=postgres --encoding=UTF8 --locale=C.UTF-8 "$PGDATA" >/dev/null
    echo "host all all all trust" >> "$PGDATA/pg_hba.conf"
    echo "pg-start: initialised $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
