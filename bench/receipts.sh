#!/usr/bin/env bash
# Emails per second from the outbox to a loopback SMTP sink, and webhook ingest with the
# outbox worker sending (sink up) against ingest with it idle (sink down), on PostgreSQL.
source "$(dirname "$0")/lib.sh"
build
source "$ROOT/scripts/pg.sh"
trap 'stop_pg; cleanup' EXIT
EVENTS=${EVENTS:-3000}

run() { # run NAME SMTP_PORT: a fresh database and service, then EVENTS paid events
  psql -q "$PG_URL" -c "CREATE DATABASE $1"
  DATABASE_URL="postgres://coopfund@127.0.0.1:$PG_PORT/$1" APP_ADDR=127.0.0.1:18184 RUST_LOG=warn \
    STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_API_BASE=http://127.0.0.1:9 \
    SMTP_URL="smtp://127.0.0.1:$2" "$BIN/coopfund" serve & local pid=$!
  wait_http http://127.0.0.1:18184/readyz
  "$BIN/examples/webhook_load" http://127.0.0.1:18184/webhooks/stripe whsec_bench "$EVENTS" 32
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "webhook ingest, outbox worker idle (SMTP down):"
idle=$(run bench_idle 9 | tee /dev/stderr | awk '{print $(NF-1)}')

python3 "$ROOT/bench/smtp_sink.py" 18025 "$WORK/count" & PIDS+=($!)
sleep 0.5

# Drain: the idle run left EVENTS receipts waiting; send them all to the sink.
DATABASE_URL="postgres://coopfund@127.0.0.1:$PG_PORT/bench_idle" APP_ADDR=127.0.0.1:18184 RUST_LOG=warn \
  SMTP_URL=smtp://127.0.0.1:18025 "$BIN/coopfund" serve & drain=$!
# The sink rewrites the file as it counts: read as 0 while it is empty.
count() { local n; n=$(cat "$WORK/count" 2>/dev/null); echo "${n:-0}"; }
for _ in $(seq 600); do [ "$(count)" -gt 0 ] && break; sleep 0.05; done
start=$(date +%s.%N)
for _ in $(seq 1200); do [ "$(count)" -ge "$EVENTS" ] && break; sleep 0.05; done
end=$(date +%s.%N)
kill "$drain"; wait "$drain" 2>/dev/null || true
sent=$(count)
echo "outbox to SMTP sink: $sent of $EVENTS emails in $(python3 -c "print(f'{$end-$start:.2f}')") s: $(python3 -c "print(f'{($sent-1)/($end-$start):.1f}')") emails/s"

echo "webhook ingest, outbox worker sending (SMTP up):"
busy=$(run bench_busy 18025 | tee /dev/stderr | awk '{print $(NF-1)}')
echo "ingest with the worker sending ÷ idle: $(ratio "$busy" "$idle")"
