#!/usr/bin/env bash
# Lighthouse (npm) on `/` of a release build, on loopback, as a phone (Lighthouse's default
# mobile emulation and throttling): prints the four scores and any audit that lost points.
# The goal is 100 for each (issue 18). Uses Debian's Chromium; installs Lighthouse once.
# First prints what each page weighs on the wire (the goal: about 2 KB). COOPFUND_BIN=path
# measures that binary instead of a release build (a debug one scores the same on loopback).
source "$(dirname "$0")/lib.sh"
if [ -n "${COOPFUND_BIN:-}" ]; then
  BIN=$(dirname "$COOPFUND_BIN")
else
  (cd "$ROOT" && cargo build --release --quiet --bin coopfund)
fi
CHROME_PATH=${COOPFUND_TEST_CHROMIUM:-$(command -v chromium)}
export CHROME_PATH
LH=${LIGHTHOUSE_DIR:-/var/tmp/coopfund-lighthouse}
[ -x "$LH/node_modules/.bin/lighthouse" ] ||
  npm install --prefix "$LH" --no-audit --no-fund --loglevel=error lighthouse@13.5.0 >/dev/null

ADDR=127.0.0.1:18191
export COOPFUND_NOW=2026-11-17T12:00:00Z DATABASE_URL="sqlite://$WORK/lh.db?mode=rwc" MAIL_DIR=$WORK/mail
APP_ADDR=$ADDR RUST_LOG=warn "$BIN/coopfund" serve 2>/dev/null & PIDS+=($!)
wait_http "http://$ADDR/healthz"
for amount in 25 10 50; do
  "$BIN/coopfund" gift add --campaign fighting-fund-2026-11 --amount $amount --method cheque --date 2026-11-16 >/dev/null
done

printf '%-18s %8s %8s %8s\n' page plain gzip br
for path in / /join /gifts /donate/thanks /widget/fund /widget/fund.js; do
  size() { curl -s -H "Accept-Encoding: $1" "http://$ADDR$path" | wc -c; }
  printf '%-18s %8s %8s %8s\n' "$path" "$(size identity)" "$(size gzip)" "$(size br)"
done

"$LH/node_modules/.bin/lighthouse" "http://$ADDR/" --quiet --form-factor=mobile \
  --only-categories=performance,accessibility,best-practices,seo \
  --chrome-flags="--headless --no-sandbox --disable-gpu" --output=json --output-path="$WORK/report.json"
node -e '
const report = require(process.argv[1]);
for (const c of Object.values(report.categories)) console.log(`${c.title}: ${Math.round(c.score * 100)}`);
for (const a of Object.values(report.audits))
  if (a.score !== null && a.score < 1 && a.scoreDisplayMode !== "informative") console.log(`  lost: ${a.id} (${a.score}) ${a.displayValue || ""}`);
' "$WORK/report.json"
