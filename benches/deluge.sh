#!/usr/bin/env bash
# Deluge benchmark: a Deluge function run by `linkrun run FILE.dg` (parse and translation
# included) against its hand-written Rhai equivalent, in the same run, interleaved round-robin
# (benches/support/timer.py), each a fresh process. See benches/README.md.
#
#   benches/deluge.sh        # RUNS=15; BENCH_ENFORCE=1 exits 3 when a figure misses 1.2x
#
# 1. CPU-bound: benches/deluge/cpu.dg vs cpu.rhai (10,000 rounds of map, list and text work).
# 2. Network-bound: benches/deluge/crm.dg vs crm.rhai (200 zoho.crm task calls against
#    `linkrun sandbox` on 127.0.0.1: 100 createRecord, 100 getRecordById).
# Both pairs must give the same result (checked before timing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-15}
TARGET=1.2
TIMER="python3 $ROOT/benches/support/timer.py"
NAME=linkrun-deluge-bench
# shellcheck source=support/sandbox_setup.sh
. "$ROOT/benches/support/sandbox_setup.sh"
B="$ROOT/benches/deluge"
"$BIN" connection default zoho_crm crm_a >/dev/null

same() {
    local a b
    a=$("$BIN" run "$B/$1.dg" --json) || die "linkrun run $1.dg failed"
    b=$("$BIN" run "$B/$1.rhai" --json) || die "linkrun run $1.rhai failed"
    [ "$a" = "$b" ] || die "$1.dg and $1.rhai disagree: $a vs $b"
    step "$1: both give $a"
}
same cpu
same crm

$TIMER measure --runs "$RUNS" --warmup 2 --out "$TMP/t.json" \
    --cmd cpu_dg "$BIN run $B/cpu.dg" \
    --cmd cpu_rhai "$BIN run $B/cpu.rhai" \
    --cmd crm_dg "$BIN run $B/crm.dg" \
    --cmd crm_rhai "$BIN run $B/crm.rhai" \
    --cmd empty "$BIN run $B/empty.rhai"

echo
echo "linkrun Deluge benchmark: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPU(s)"
enforce=()
[ "${BENCH_ENFORCE:-}" = 1 ] && enforce=(--enforce)
T="$TMP/t.json"
$TIMER report ${enforce[@]+"${enforce[@]}"} \
    --figure "1. CPU-bound: cpu.dg / cpu.rhai" "$T:cpu_dg" "$T:cpu_rhai" "$TARGET" \
    --figure "2. 200 zoho.crm calls: crm.dg / crm.rhai" "$T:crm_dg" "$T:crm_rhai" "$TARGET" \
    --cold "linkrun run empty.rhai (process floor)" "$T:empty" \
    --cold "linkrun run cpu.dg" "$T:cpu_dg" \
    --cold "linkrun run cpu.rhai" "$T:cpu_rhai" \
    --cold "linkrun run crm.dg" "$T:crm_dg" \
    --cold "linkrun run crm.rhai" "$T:crm_rhai"
