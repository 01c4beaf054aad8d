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
die() { echo "bench: $*" >&2; exit 1; }
step() { echo "bench: $*" >&2; }
for tool in cargo python3 curl; do
    command -v "$tool" >/dev/null || die "\`$tool\` is not installed; it is needed to run this benchmark"
done
step "building linkrun (cargo build --release)"
(cd "$ROOT" && cargo build --release --bin linkrun >&2) || die "cargo build --release failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/linkrun"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkrun-deluge-bench.XXXXXX")
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
cd "$TMP"
export LINKRUN_HOME="$TMP/home"
B="$ROOT/benches/deluge"

"$BIN" sandbox --port 0 > "$TMP/banner.txt" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q '127.0.0.1:' "$TMP/banner.txt" 2>/dev/null && break; sleep 0.1; done
BASE=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMP/banner.txt" | head -1)
[ -n "$BASE" ] || die "the sandbox did not start: $(cat "$TMP/banner.txt")"
export LINKRUN_SANDBOX_URL="$BASE"
CLIENT=$(grep -o 'client_id=[^ ]*' "$TMP/banner.txt" | head -1 | cut -d= -f2)
SECRET=$(grep -o 'client_secret=[^ ]*' "$TMP/banner.txt" | head -1 | cut -d= -f2)
"$BIN" connection create crm_a --service zoho_crm --dc sandbox --param "client_id=$CLIENT" \
    --param "client_secret=$SECRET" >/dev/null
CODE=$(curl -sf -X POST "$BASE/oauth/v2/self-client/code?client_id=$CLIENT&scope=ZohoCRM.modules.ALL" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
"$BIN" connection authorize crm_a --code "$CODE" >/dev/null
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
