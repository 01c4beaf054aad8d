# Shared set-up of the benchmarks that run against `linkrun sandbox` (sourced, not run):
# checks the tools, builds the release binary, makes a temp dir and home, starts the sandbox on
# a free loopback port and authorises connection `crm_a` (Org A) with a self-client code.
# Expects ROOT and NAME (the temp dir's prefix); sets BIN, TMP, BASE, PID, LINKRUN_HOME,
# LINKRUN_SANDBOX_URL, and the functions die and step. The temp dir and the sandbox go at exit.
# shellcheck source=build.sh
. "$ROOT/benches/support/build.sh"
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
