# Shared set-up of the benchmarks that run against `linkrun sandbox` (sourced, not run):
# checks the tools, builds the release binary, makes a temp dir and home, starts the sandbox on
# a free loopback port and authorises connection `crm_a` (Org A) with a self-client code.
# Expects ROOT and NAME (the temp dir's prefix); sets BIN, TMP, BASE, PID, LINKRUN_HOME,
# LINKRUN_SANDBOX_URL, and the functions die and step. The temp dir and the sandbox go at exit.
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
TMP=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX")
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
cd "$TMP"
export LINKRUN_HOME="$TMP/home"

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
