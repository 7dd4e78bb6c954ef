#!/usr/bin/env bash
# Back-tests the example strategy against its challenger (tools/backtest/make_challenger.sh) on
# the German Credit and Lending Club application rows, writing the summaries, reports and diffs
# to OUT_DIR, and a screenshot of the Lending Club report to docs/screenshots/ when Chromium is
# installed.
#
#   tools/backtest/example.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/backtest-example}"
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/credence
tools/backtest/make_challenger.sh "$out/challenger" >/dev/null
for data in german_credit:purpose lending_club:grade; do
  name="${data%%:*}"
  by="${data##*:}"
  "$bin" backtest --strategy examples/consumer-loan --challenger "$out/challenger" \
    --flow application --input "data/backtest/${name}_applications.csv" --as-of 2026-11-29 \
    --by "$by" --summary-json "$out/$name.json" --report "$out/$name.html" --diff "$out/$name-diff.csv"
done
if [ -x /usr/bin/chromium ]; then
  /usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,2400 --screenshot="$PWD/docs/screenshots/backtest-report.png" \
    "file://$PWD/$out/lending_club.html" 2>/dev/null
  echo "docs/screenshots/backtest-report.png"
fi
echo "reports in $out"
