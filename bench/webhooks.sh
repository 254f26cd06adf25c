#!/usr/bin/env bash
# Webhook ingest on PostgreSQL against pgbench -N on the same server, in one run.
# Distinct, signed, paid checkout.session.completed events, with an SMTP sink up so that the
# receipts are sent while the events come in; then the same on a database where 1,000 events
# are parked first (refunds of payments that never come). Loopback only, bounded counts.
source "$(dirname "$0")/lib.sh"
need pgbench postgresql-contrib
[ -n "${NO_BUILD:-}" ] || build
# STATEMENTS=1: where PostgreSQL's time goes, from pg_stat_statements, after each ingest.
if [ -n "${STATEMENTS:-}" ]; then export PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"; fi
source "$ROOT/scripts/pg.sh"
trap 'cleanup; stop_pg' EXIT
psql -q "$PG_URL" -c "CREATE DATABASE pgbench"

EVENTS=${EVENTS:-20000}
CONC=${CONCURRENCY:-32}
PARKED=${PARKED:-1000}

python3 "$ROOT/bench/smtp_sink.py" 18026 "$WORK/sent" & PIDS+=($!)
SINK=$!
sleep 0.5
sent() { local n; n=$(cat "$WORK/sent" 2>/dev/null); echo "${n:-0}"; }

# CPU time in clock ticks: of one process (with its threads), and of the PostgreSQL server
# (every backend alive now, and those that ended, through the postmaster's children's time).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pg_ticks() {
  local postmaster total; postmaster=$(head -1 "$PGDATA/postmaster.pid")
  total=$(awk '{print $16 + $17}' "/proc/$postmaster/stat")
  for p in $(pgrep -u postgres) ; do total=$((total + $(ticks "$p" 2>/dev/null || echo 0))); done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
per_event() { python3 -c "print(f'{$1 * 1000 / $HZ / $2:.3f}')"; } # per_event TICKS EVENTS: ms

ingest() { # ingest DATABASE PARKED: a fresh database and service, PARKED events first, then EVENTS paid ones
  psql -q "$PG_URL" -c "CREATE DATABASE $1"
  [ -z "${STATEMENTS:-}" ] || psql -q "postgres://coopfund@127.0.0.1:$PG_PORT/$1" -c "CREATE EXTENSION pg_stat_statements"
  DATABASE_URL="postgres://coopfund@127.0.0.1:$PG_PORT/$1" APP_ADDR=127.0.0.1:18183 RUST_LOG=warn \
    STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_API_BASE=http://127.0.0.1:9 \
    SMTP_URL=smtp://127.0.0.1:18026 "$BIN/coopfund" serve & local pid=$!
  wait_http http://127.0.0.1:18183/readyz
  local before; before=$(sent)
  local service0 pg0 sink0 load; service0=$(ticks "$pid"); pg0=$(pg_ticks); sink0=$(ticks "$SINK")
  load=$(mktemp)
  /usr/bin/time -f '%U %S' -o "$load" \
    "$BIN/examples/webhook_load" http://127.0.0.1:18183/webhooks/stripe whsec_bench "$EVENTS" "$CONC" "$2"
  echo "receipts sent to the SMTP sink while ingesting: $(($(sent) - before))" >&2
  local n=$((EVENTS + $2)) service pg sink
  service=$(($(ticks "$pid") - service0)); pg=$(($(pg_ticks) - pg0)); sink=$(($(ticks "$SINK") - sink0))
  echo "CPU ms per event: service $(per_event "$service" "$n"), PostgreSQL $(per_event "$pg" "$n")," \
    "load generator $(python3 -c "u, s = open('$load').read().split(); print(f'{(float(u) + float(s)) * 1000 / $n:.3f}')")," \
    "SMTP sink $(per_event "$sink" "$n")" >&2
  rm -f "$load"
  [ -z "${STATEMENTS:-}" ] || psql -q "postgres://coopfund@127.0.0.1:$PG_PORT/$1" -P pager=off -c "
    SELECT calls, round(total_exec_time::numeric, 0) AS ms, round((total_exec_time / NULLIF(calls, 0))::numeric, 3) AS ms_each,
           round(total_plan_time::numeric, 0) AS plan_ms,
           left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time + total_plan_time DESC LIMIT 15" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# pgbench -N before and after the ingest runs: the machine's speed drifts (other guests), so the
# baseline is the mean of the two, and both are shown.
pgbench -q -i -s 1 "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" >/dev/null 2>&1
baseline() { # tps, with PostgreSQL's and pgbench's CPU per transaction on stderr
  local pg0 cpu out tps done_tx; pg0=$(pg_ticks); cpu=$(mktemp)
  out=$(/usr/bin/time -f '%U %S' -o "$cpu" \
    pgbench -N -c "$CONC" -j 2 -T "${DURATION:-10}" "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" 2>/dev/null)
  tps=$(echo "$out" | awk '/^tps/ {print $3; exit}')
  done_tx=$(echo "$out" | awk '/number of transactions actually processed/ {print $NF; exit}' | cut -d/ -f1)
  echo "pgbench -N: $tps tps; CPU ms per transaction: PostgreSQL $(per_event $(($(pg_ticks) - pg0)) "$done_tx")," \
    "pgbench $(python3 -c "u, s = open('$cpu').read().split(); print(f'{(float(u) + float(s)) * 1000 / $done_tx:.3f}')")" >&2
  rm -f "$cpu"
  echo "$tps"
}
before=$(baseline)
fresh=$(ingest bench_fresh 0)
echo "coopfund: $fresh"
parked=$(ingest bench_parked "$PARKED")
echo "coopfund, $PARKED events parked: $parked"
after=$(baseline)
rate=$(echo "$fresh" | awk '{print $(NF-1)}')
rate_parked=$(echo "$parked" | awk '{print $(NF-1)}')
tps=$(python3 -c "print(($before + $after) / 2)")
echo "pgbench -N: $before tps before, $after after"
echo "webhook events/s ÷ pgbench -N tps: $(ratio "$rate" "$tps")"
echo "with $PARKED parked: $(ratio "$rate_parked" "$tps"); time per paid gift, parked ÷ fresh: $(ratio "$rate" "$rate_parked")"
