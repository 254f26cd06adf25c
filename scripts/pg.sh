# Sourced by scripts/test and bench/: starts a throwaway PostgreSQL cluster on loopback,
# installing the server with apt-get when it is missing, and stops it on exit.
# Sets PG_URL (a superuser URL to the `postgres` database) and PG_BIN.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
  echo "PostgreSQL is missing: installing it with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(pg_bin)
[ -x "$PG_BIN/initdb" ] || { echo "error: no PostgreSQL server binaries found" >&2; exit 1; }

# initdb refuses to run as root, so the cluster belongs to the postgres user.
PGDATA=$(mktemp -d /tmp/coopfund-pg.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PG_PORT=${COOPFUND_PG_PORT:-$(free_port)}
stop_pg() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDATA"; }
trap stop_pg EXIT
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U coopfund -A trust -E UTF8 --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w start \
  -o "-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1 -c max_connections=400 ${PG_OPTIONS:-}" >/dev/null \
  || { cat "$PGDATA/server.log" >&2; echo "error: PostgreSQL did not start" >&2; exit 1; }
PG_URL="postgres://coopfund@127.0.0.1:$PG_PORT/postgres"
