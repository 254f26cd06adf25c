#!/usr/bin/env bash
# Webhook ingest on PostgreSQL against pgbench -N on the same server, in one run.
# Distinct, signed, paid checkout.session.completed events; loopback only, bounded counts.
source "$(dirname "$0")/lib.sh"
need pgbench postgresql-contrib
build
source "$ROOT/scripts/pg.sh"
trap 'cleanup; stop_pg' EXIT
psql -q "$PG_URL" -c "CREATE DATABASE coopfund_bench" -c "CREATE DATABASE pgbench"

EVENTS=${EVENTS:-20000}
CONC=${CONCURRENCY:-32}
DATABASE_URL="postgres://coopfund@127.0.0.1:$PG_PORT/coopfund_bench" APP_ADDR=127.0.0.1:18183 RUST_LOG=warn \
  STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_API_BASE=http://127.0.0.1:9 \
  SMTP_URL=smtp://127.0.0.1:9 "$BIN/coopfund" serve & PIDS+=($!)
wait_http http://127.0.0.1:18183/readyz

ingest=$("$BIN/examples/webhook_load" http://127.0.0.1:18183/webhooks/stripe whsec_bench "$EVENTS" "$CONC")
echo "coopfund: $ingest"
rate=$(echo "$ingest" | awk '{print $(NF-1)}')
# Stopped before pgbench runs: its outbox worker would go on retrying thousands of receipts
# against the closed SMTP port and take the server's time from pgbench.
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

pgbench -q -i -s 1 "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" >/dev/null 2>&1
tps=$(pgbench -N -c "$CONC" -j 2 -T "${DURATION:-10}" "postgres://coopfund@127.0.0.1:$PG_PORT/pgbench" 2>/dev/null | awk '/^tps/ {print $3; exit}')
echo "pgbench -N: $tps tps"
echo "webhook events/s ÷ pgbench -N tps: $(ratio "$rate" "$tps")"

