#!/usr/bin/env bash
# GET /api/campaigns/current against a bare axum handler serving the same bytes, in one run,
# first with a handful of ledger rows and then with 1,000,000. Loopback only, bounded runs.
#
# UNPINNED=1 measures as a user deploys it instead (issue 16): server and wrk share the cores
# unpinned, wrk -t1 -c64, two alternating 5 s rounds, 10 ledger rows only.
source "$(dirname "$0")/lib.sh"
need wrk wrk; need sqlite3 sqlite3
build
if [ -n "${UNPINNED:-}" ]; then
  SERVER_CPU=(); LOAD_CPU=(); CONNECTIONS=${CONNECTIONS:-64}; ROUNDS=${ROUNDS:-2}; SMALL_ONLY=1
fi

DB=$WORK/bench.db
COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$DB?mode=rwc" APP_ADDR=127.0.0.1:18181 RUST_LOG=warn \
  "${SERVER_CPU[@]}" "$BIN/coopfund" serve 2>/dev/null & PIDS+=($!)
wait_http http://127.0.0.1:18181/healthz
for i in $(seq 10); do
  COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$DB" "$BIN/coopfund" gift add \
    --campaign fighting-fund-2026-11 --amount "$i.50" --method cheque --date 2026-11-12 >/dev/null
done
sleep 1.2
curl -sf http://127.0.0.1:18181/api/campaigns/current > "$WORK/body.json"
"${SERVER_CPU[@]}" "$BIN/examples/baseline" 127.0.0.1:18182 "$WORK/body.json" & PIDS+=($!)
wait_http http://127.0.0.1:18182/

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

measure() { # measure LABEL: alternating rounds, medians reported; sets FUND to the figures' median req/s
  local etag base=() fund=() notmod=()
  etag=$(curl -sfI http://127.0.0.1:18181/api/campaigns/current | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
  for _ in $(seq "${ROUNDS:-3}"); do
    base+=("$(rps http://127.0.0.1:18182/api/campaigns/current)")
    fund+=("$(rps http://127.0.0.1:18181/api/campaigns/current)")
    notmod+=("$(rps http://127.0.0.1:18181/api/campaigns/current -H "If-None-Match: $etag")")
  done
  local b f n
  b=$(median "${base[@]}"); f=$(median "${fund[@]}"); n=$(median "${notmod[@]}")
  FUND=$f
  echo "$1: baseline $b req/s; current $f req/s (ratio $(ratio "$f" "$b")); 304s $n req/s (ratio $(ratio "$n" "$b")) [medians of ${ROUNDS:-3} alternating ${DURATION:-5} s rounds, -c${CONNECTIONS:-32}${UNPINNED:+, unpinned}]"
}

# Warm both up first: the first seconds of a new process are not what a reader meets.
DURATION=3 rps http://127.0.0.1:18182/api/campaigns/current >/dev/null
DURATION=3 rps http://127.0.0.1:18181/api/campaigns/current >/dev/null
measure "10 ledger rows"
[ -n "${SMALL_ONLY:-}" ] && exit 0
small=$FUND

# A million more rows, written as the service would (totals kept in the same transaction).
sqlite3 "$DB" >/dev/null <<'SQL'
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
SELECT 1, 100, 1, 'bench', 'bench-' || i, '2026-11-12 12:00:00+00:00', '2026-11-12 12:00:00+00:00' FROM n;
INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
VALUES (1, 15, 100000000, 1000000, '2026-11-12 12:00:00+00:00')
ON CONFLICT (campaign_id, shard) DO UPDATE SET
  raised_pence = raised_pence + excluded.raised_pence, gifts = gifts + excluded.gifts;
COMMIT;
SQL
sleep 1.2
echo "ledger rows now: $(sqlite3 "$DB" 'SELECT COUNT(*) FROM ledger')"
measure "1,000,000 ledger rows"
echo "current figures, 1,000,000 rows ÷ 10 rows: $(ratio "$FUND" "$small")"
