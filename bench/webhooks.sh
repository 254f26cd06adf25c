#!/usr/bin/env bash
# Webhook ingest on PostgreSQL against pgbench -N on the same server, in one run.
# Distinct, signed, paid checkout.session.completed events, with an SMTP sink up so that the
# receipts are sent while the events come in; then the same on a database where 1,000 events
# are parked first (refunds of payments that never come). Loopback only, bounded counts.
source "$(dirname "$0")/lib.sh"
need pgbench postgresql-contrib
[ -n "${NO_BUILD:-}" ] || build
source "$ROOT/scripts/pg.sh"
trap 'cleanup; stop_pg' EXIT
psql -q "$PG_URL" -c "CREATE DATABASE pgbench"

EVENTS=${EVENTS:-20000}
CONC=${CONCURRENCY:-32}
PARKED=${PARKED:-1000}

python3 "$ROOT/bench/smtp_sink.py" 18026 "$WORK/sent" & PIDS+=($!)
sleep 0.5
sent() { local n; n=$(cat "$WORK/sent" 2>/dev/null); echo "${n:-0}"; }

ingest() { # ingest DATABASE PARKED: a fresh database and service, PARKED events first, then EVENTS paid ones
  psql -q "$PG_URL" -c "CREATE DATABASE $1"
  DATABASE_URL="postgres://coopfund@127.0.0.1:$PG_PORT/$1" APP_ADDR=127.0.0.1:18183 RUST_LOG=warn \
    STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_API_BASE=http://127.0.0.1:9 \
    SMTP_URL=smtp://127.0.0.1:18026 "$BIN/coopfund" serve & local pid=$!
  wait_http http://127.0.0.1:18183/readyz
  local before; before=$(sent)
  "$BIN/examples/webhook_load" http://127.0.0.1:18183/webhooks/stripe whsec_bench "$EVENTS" "$CONC" "$2"
  echo "receipts sent to the SMTP sink while ingesting: $(($(sent) - before))" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

fresh=$(ingest bench_fresh 0)
echo "coopfund: $fresh"
parked=$(ingest bench_parked "$PARKED")
echo "coopfund, $PARKED events parked: $parked"
rate=$(echo "$fresh" | awk '{print $(NF-1)}')
rate_parked=$(echo "$parked" | awk '{print $(NF-1)}')

pgbench -q -i -s 1 "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" >/dev/null 2>&1
tps=$(pgbench -N -c "$CONC" -j 2 -T "${DURATION:-10}" "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" 2>/dev/null | awk '/^tps/ {print $3; exit}')
echo "pgbench -N: $tps tps"
echo "webhook events/s ÷ pgbench -N tps: $(ratio "$rate" "$tps")"
echo "with $PARKED parked: $(ratio "$rate_parked" "$tps"); time per paid gift, parked ÷ fresh: $(ratio "$rate" "$rate_parked")"
