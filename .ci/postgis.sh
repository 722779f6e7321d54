#!/usr/bin/env bash
# A throwaway PostGIS for tests and benchmarks: Debian's packages, a cluster in a temp folder, loopback only.
#
#   bash .ci/postgis.sh start   # install if needed, init if needed, start if needed; prints the DSN (stdout)
#   bash .ci/postgis.sh dsn     # prints the DSN if the cluster runs, else exit 1
#   bash .ci/postgis.sh stop    # stops the cluster (keeps its folder; 'start' reuses it)
#   bash .ci/postgis.sh purge   # stops it and removes its folder
#
# Idempotent: 'start' on a running cluster only prints the DSN. As root the server runs as the
# 'postgres' user (created by Debian's postgresql-common). Settings from the environment:
#   GRIDCOVER_PG_DIR  (default /tmp/gridcover-pg)   GRIDCOVER_PG_PORT (default 55432)
#   GRIDCOVER_PG_DB   (default gridcover_test)
# Usage in CI: export GRIDCOVER_TEST_PG="$(bash .ci/postgis.sh start)". Progress goes to stderr.
set -euo pipefail

DIR="${GRIDCOVER_PG_DIR:-/tmp/gridcover-pg}"
PORT="${GRIDCOVER_PG_PORT:-55432}"
DB="${GRIDCOVER_PG_DB:-gridcover_test}"
PACKAGES="postgresql-15 postgresql-15-postgis-3"
DATA="$DIR/data"
SOCK="$DIR/sock"
LOG="$DIR/server.log"
DSN="postgresql://postgres@127.0.0.1:$PORT/$DB"

say() { echo "postgis.sh: $*" >&2; }

pg_bin() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$bin" ] && echo "$bin"
}

have_postgis() {
    ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 && [ -n "$(pg_bin || true)" ]
}

install() {
    have_postgis && return 0
    if [ "$(id -u)" != 0 ]; then
        say "PostGIS is not installed and this is not root: install $PACKAGES (apt-get) first"
        exit 1
    fi
    say "installing $PACKAGES from Debian"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends $PACKAGES >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends $PACKAGES >&2
    fi
}

# run a command as the server's user (postgres when we are root)
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    local bin
    bin="$(pg_bin)" || return 1
    [ -f "$DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    install
    local bin
    bin="$(pg_bin)"
    mkdir -p "$DIR" "$SOCK"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /usr/sbin/nologin postgres
        chown postgres: "$DIR" "$SOCK"
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        say "initialising a cluster in $DATA"
        as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
    fi
    if ! running; then
        say "starting PostgreSQL on 127.0.0.1:$PORT"
        as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2 || { tail -n 20 "$LOG" >&2; exit 1; }
    fi
    local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1)
    if [ -z "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE $DB" >&2
    fi
    "${psql[@]}" -d "$DB" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis" >&2
    echo "$DSN"
}

stop() {
    if running; then
        say "stopping the cluster in $DATA"
        as_owner "$(pg_bin)/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
}

case "${1:-start}" in
    start) start ;;
    dsn) running && echo "$DSN" ;;
    stop) stop ;;
    purge) stop; rm -rf "$DIR" ;;
    *) say "usage: $0 start|dsn|stop|purge"; exit 2 ;;
esac
