#!/usr/bin/env bash
# Runs a command beside a throw-away PostgreSQL cluster of its own: initdb in a temporary
# directory, as an unprivileged user, on a free loopback port; then CMD with
# SPRIG_TEST_DATABASE_URL=postgres://sprig@127.0.0.1:PORT/postgres exported; then the cluster is
# stopped and the directory removed, whether CMD passed, failed or was interrupted. It never
# touches a system service or the system cluster. CMD's exit status is the script's.
#
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#   e.g. scripts/with-postgres.sh scripts/with-keystore.sh cargo test -p sprig-server
#
# The server binaries come from PG_BIN, else the newest /usr/lib/postgresql/*/bin (Debian's
# `postgresql` package; `make test` installs it). initdb refuses to run as root, so as root the
# cluster runs as SPRIG_PG_USER (default `postgres`, created as a system user if missing).
# Durability settings are off (fsync, synchronous_commit): the cluster is deleted afterwards,
# and the tests check Sprig's logic, not Postgres's crash safety.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

pg_bin="${PG_BIN:-}"
if [ -z "$pg_bin" ]; then
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
    echo "$0: no PostgreSQL server binaries found (looked in ${pg_bin:-/usr/lib/postgresql/*/bin});" \
        "install Debian's 'postgresql' package (make setup does) or set PG_BIN" >&2
    exit 127
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/sprig-pg.XXXXXX")"
as_user=()
if [ "$(id -u)" = 0 ]; then
    pg_user="${SPRIG_PG_USER:-postgres}"
    if ! id "$pg_user" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
    fi
    chown "$pg_user" "$dir"
    as_user=(runuser -u "$pg_user" --)
fi

started=""
cleanup() {
    local status=$?
    if [ -n "$started" ]; then
        "${as_user[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
            "${as_user[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_user[@]}" "$pg_bin/initdb" -D "$dir/data" -A trust -U sprig -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    echo "$0: initdb failed" >&2
    exit 1
}

# A free port: a random one nobody answers on; if another process takes it before the server
# does, the start fails and the next attempt picks another.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}
for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if "${as_user[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        started=1
        break
    fi
    if [ "$attempt" = 5 ]; then
        cat "$dir/server.log" >&2 || true
        echo "$0: the PostgreSQL cluster did not start" >&2
        exit 1
    fi
done

export SPRIG_TEST_DATABASE_URL="postgres://sprig@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" \
    "(SPRIG_TEST_DATABASE_URL), data in $dir" >&2

# Not exec: the trap must stop the cluster and remove its directory.
set +e
"$@"
status=$?
set -e
exit "$status"
