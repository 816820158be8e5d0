#!/bin/sh
# jobqueue-postgres:dev: a single PostgreSQL for trying the chart out.
# First start: initdb into $PGDATA (an emptyDir or a PVC), the superuser
# $POSTGRES_USER with $POSTGRES_PASSWORD, and the database $POSTGRES_DB.
# Then `postgres` listening on every address, password (scram) required
# for every TCP client.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
POSTGRES_USER="${POSTGRES_USER:-jobqueue}"
POSTGRES_DB="${POSTGRES_DB:-jobqueue}"
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "jobqueue-postgres: POSTGRES_PASSWORD is empty; refusing to initialize" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "jobqueue-postgres: initialized $PGDATA (database $POSTGRES_DB, user $POSTGRES_USER)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
