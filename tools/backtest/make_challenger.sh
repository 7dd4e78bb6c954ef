#!/usr/bin/env bash
# Writes a challenger of the example strategy into DEST: the champion arm's score cut-off
# raised from 495 to 520 (stricter), and the large-amount referral lifted from 15,000 to
# 25,000 (more straight-through approvals of big loans). Used by tools/backtest/example.sh and
# the back-test tests; a lender would keep its challenger as its own package.
#
#   tools/backtest/make_challenger.sh DEST
set -euo pipefail
dest="${1:?usage: make_challenger.sh DEST}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$dest"
cp -r "$root/examples/consumer-loan" "$dest"
sed -i 's/^name: consumer-loan$/name: consumer-loan-challenger/' "$dest/strategy.yaml"
sed -i 's/champion_cutoff, values: {score_cutoff: "495"}/champion_cutoff, values: {score_cutoff: "520"}/' \
  "$dest/flows/application.yaml"
sed -i 's/when: "requested_amount > 15000", outcome: refer/when: "requested_amount > 25000", outcome: refer/' \
  "$dest/flows/application.yaml"
# The embedded cases describe the champion; the challenger is compared by back-test, not cases.
sed -i '/^tests:/,/^$/d' "$dest/strategy.yaml"
grep -q 'score_cutoff: "520"' "$dest/flows/application.yaml"
grep -q 'requested_amount > 25000' "$dest/flows/application.yaml"
echo "$dest"
