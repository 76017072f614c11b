#!/bin/sh
# First start: a cluster in $PGDATA whose superuser is $POSTGRES_USER (default postgres) with the password
# $POSTGRES_PASSWORD, and the database $POSTGRES_DB (default: the user's name). Every start: the server, on
# every address. Anything else given as the command runs instead (e.g. `psql`).
set -eu

case "${2:-}" in
    -V | --version | -'?' | --help | --describe-config) exec "$@" ;;  # no server: nothing to create
esac

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --pgdata="$PGDATA" >/dev/null
    rm -f "$pwfile"
    # initdb allows loopback only; other containers of the network come with their password.
    echo 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        # Single-user mode: no server answers (nor looks healthy) before the database exists.
        printf 'CREATE DATABASE "%s" OWNER "%s"\n' "$db" "$user" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "autobots-postgres: created the cluster in $PGDATA (user $user, database $db)"
fi

if [ "${1:-}" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
