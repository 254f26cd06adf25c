#!/usr/bin/env bash
# The live ticker: the figures and the widget page against bare axum serving the same bytes,
# then 10,000 live readers on one instance (memory per reader, commit → reader delay).
# Loopback only, bounded runs.
source "$(dirname "$0")/lib.sh"
need wrk wrk
build

# Every reader is one socket at each end.
ulimit -n "$(ulimit -Hn)"
SUBSCRIBERS=${SUBSCRIBERS:-10000}
(( $(ulimit -n) > SUBSCRIBERS + 100 )) || { echo "error: open files limit $(ulimit -n) is too low" >&2; exit 1; }

DB=$WORK/bench.db
COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$DB?mode=rwc" APP_ADDR=127.0.0.1:18184 RUST_LOG=warn \
  STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_API_BASE=http://127.0.0.1:9 \
  SMTP_URL=smtp://127.0.0.1:9 "${SERVER_CPU[@]}" "$BIN/coopfund" serve 2>/dev/null & PIDS+=($!)
SERVER=$!
wait_http http://127.0.0.1:18184/healthz
curl -sf http://127.0.0.1:18184/api/campaigns/current > "$WORK/body.json"
curl -sf http://127.0.0.1:18184/widget/fund > "$WORK/widget.html"
"${SERVER_CPU[@]}" "$BIN/examples/baseline" 127.0.0.1:18185 "$WORK/body.json" & PIDS+=($!)
"${SERVER_CPU[@]}" "$BIN/examples/baseline" 127.0.0.1:18186 "$WORK/widget.html" & PIDS+=($!)
wait_http http://127.0.0.1:18185/
wait_http http://127.0.0.1:18186/

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
etag=$(curl -sfI http://127.0.0.1:18184/api/campaigns/current | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
DURATION=3 rps http://127.0.0.1:18185/ >/dev/null
DURATION=3 rps http://127.0.0.1:18184/api/campaigns/current >/dev/null
base=(); json=(); notmod=(); wbase=(); widget=()
for _ in 1 2 3; do
  base+=("$(rps http://127.0.0.1:18185/api/campaigns/current)")
  json+=("$(rps http://127.0.0.1:18184/api/campaigns/current)")
  notmod+=("$(rps http://127.0.0.1:18184/api/campaigns/current -H "If-None-Match: $etag")")
  wbase+=("$(rps http://127.0.0.1:18186/widget/fund)")
  widget+=("$(rps http://127.0.0.1:18184/widget/fund)")
done
b=$(median "${base[@]}"); j=$(median "${json[@]}"); n=$(median "${notmod[@]}")
wb=$(median "${wbase[@]}"); w=$(median "${widget[@]}")
echo "baseline (JSON bytes) $b req/s; /api/campaigns/current $j req/s (ratio $(ratio "$j" "$b")); 304s $n req/s (ratio $(ratio "$n" "$b"))"
echo "baseline (widget bytes) $wb req/s; /widget/fund $w req/s (ratio $(ratio "$w" "$wb")); ÷ the JSON baseline $(ratio "$w" "$b")"
echo "[medians of 3 alternating ${DURATION:-5} s rounds, ${CONNECTIONS:-32} connections, server on core 0, wrk on core 1]"

"${LOAD_CPU[@]}" "$BIN/examples/sse_load" 127.0.0.1:18184 "$SERVER" whsec_bench "$SUBSCRIBERS" "${CHANGES:-20}"
