#!/usr/bin/env bash
# Pagination benchmark: 10,000 Zoho CRM leads read from `linkrun sandbox` on 127.0.0.1, 50 pages
# of 200, through `invoke_pages` (the service's `[pagination]`, benches/pages/pages.rhai)
# against the same pages fetched by a hand-written `invoke_url` loop following `page_token`
# (benches/pages/hand.rhai), in the same run, interleaved round-robin (benches/support/timer.py),
# each a fresh process, after one warm-up round; the median of RUNS runs of each.
#
#   benches/pages.sh        # RUNS=5; BENCH_ENFORCE=1 exits 3 when the figure misses its target
#
# The target: invoke_pages at 0.9x the hand loop's throughput or better, i.e. a time ratio of at
# most 1.11. `invoke_records` (all records in one list) is shown for information. Every script
# must count RECORDS records with RECORDS distinct ids (checked before timing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
RECORDS=${RECORDS:-10000}
TARGET=1.11
TIMER="python3 $ROOT/benches/support/timer.py"
NAME=linkrun-pages-bench
# shellcheck source=support/sandbox_setup.sh
. "$ROOT/benches/support/sandbox_setup.sh"
B="$ROOT/benches/pages"

# Org A starts with 300 leads: add the rest.
"$BIN" run "$B/seed.rhai" --arg "n=$((RECORDS - 300))" >/dev/null || die "seeding $RECORDS leads failed"
want="[$RECORDS,$RECORDS]"
for s in hand pages records; do
    got=$("$BIN" run "$B/$s.rhai" --json) || die "linkrun run $s.rhai failed"
    [ "$got" = "$want" ] || die "$s.rhai counted $got (records, distinct ids), not $want"
done
pages=$("$BIN" --verbose run "$B/pages.rhai" 2>&1 >/dev/null | grep -c '^linkrun: GET .*/crm/v7/Leads')
hand=$("$BIN" --verbose run "$B/hand.rhai" 2>&1 >/dev/null | grep -c '^linkrun: GET .*/crm/v7/Leads')
[ "$pages" = "$hand" ] || die "invoke_pages made $pages requests, the hand loop $hand"
step "each script reads $RECORDS leads in $pages requests"

$TIMER measure --runs "$RUNS" --warmup 1 --out "$TMP/t.json" \
    --cmd hand "$BIN run $B/hand.rhai" \
    --cmd pages "$BIN run $B/pages.rhai" \
    --cmd records "$BIN run $B/records.rhai"

echo
echo "linkrun pagination benchmark: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPU(s), $RECORDS records in $pages pages"
enforce=()
[ "${BENCH_ENFORCE:-}" = 1 ] && enforce=(--enforce)
T="$TMP/t.json"
$TIMER report ${enforce[@]+"${enforce[@]}"} \
    --figure "invoke_pages / hand-written invoke_url loop" "$T:pages" "$T:hand" "$TARGET" \
    --info-figure "invoke_records / hand-written invoke_url loop" "$T:records" "$T:hand" "$TARGET" \
    --cold "hand.rhai (invoke_url, page_token by hand)" "$T:hand" \
    --cold "pages.rhai (invoke_pages)" "$T:pages" \
    --cold "records.rhai (invoke_records)" "$T:records"
