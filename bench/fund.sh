#!/usr/bin/env bash
# GET /api/campaigns/current against a bare axum handler serving the same bytes, in one run,
# first with a handful of ledger rows and then with 1,000,000. Loopback only, bounded runs.
source "$(dirname "$0")/lib.sh"
need wrk wrk; need sqlite3 sqlite3
build

DB=$WORK/bench.db
COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$DB?mode=rwc" APP_ADDR=127.0.0.1:18181 RUST_LOG=warn \
  "$BIN/coopfund" serve & PIDS+=($!)
wait_http http://127.0.0.1:18181/healthz
for i in $(seq 10); do
  COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$DB" "$BIN/coopfund" gift add \
    --campaign fighting-fund-2026-11 --amount "$i.50" --method cheque --date 2026-11-12 >/dev/null
done
sleep 1.2
curl -sf http://127.0.0.1:18181/api/campaigns/current > "$WORK/body.json"
"$BIN/examples/baseline" 127.0.0.1:18182 "$WORK/body.json" & PIDS+=($!)
wait_http http://127.0.0.1:18182/

measure() {
  local base fund etag notmod
  base=$(rps http://127.0.0.1:18182/api/campaigns/current)
  fund=$(rps http://127.0.0.1:18181/api/campaigns/current)
  etag=$(curl -sfI http://127.0.0.1:18181/api/campaigns/current | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
  notmod=$(rps http://127.0.0.1:18181/api/campaigns/current -H "If-None-Match: $etag")
  echo "$1: baseline ${base} req/s, current ${fund} req/s (ratio $(ratio "$fund" "$base")), 304s ${notmod} req/s (ratio $(ratio "$notmod" "$base"))"
  echo "$fund"
}

small=$(measure "10 ledger rows" | tee /dev/stderr | tail -1)

# A million more rows, written as the service would (totals kept in the same transaction).
sqlite3 "$DB" <<'SQL'
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
SELECT 1, 100, 1, 'bench', 'bench-' || i, '2026-11-12 12:00:00+00:00', '2026-11-12 12:00:00+00:00' FROM n;
UPDATE campaigns SET raised_pence = raised_pence + 100000000, gifts = gifts + 1000000 WHERE id = 1;
COMMIT;
SQL
sleep 1.2
echo "ledger rows now: $(sqlite3 "$DB" 'SELECT COUNT(*) FROM ledger')" >&2
large=$(measure "1,000,000 ledger rows" | tee /dev/stderr | tail -1)
echo "1M rows vs 10 rows: $(ratio "$large" "$small")" >&2
