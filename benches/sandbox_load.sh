#!/usr/bin/env bash
# Sandbox load: Zoho CRM record reads per second from `linkrun sandbox` on this machine, measured
# with wrk (Debian package `wrk`; installed with apt-get when missing), against a baseline in the
# same run: the same wrk load on the sandbox's cheapest route (an unauthenticated request that is
# refused at once), so the figure is also given as a share of what the HTTP stack alone serves.
#
#   benches/sandbox_load.sh            # DURATION=10 CONNECTIONS=16 THREADS=2
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
die() { echo "bench: $*" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk (apt-get install -y wrk)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || die "wrk is missing and could not be installed: apt-get install wrk"
fi
(cd "$ROOT" && cargo build --release --bin linkrun >&2) || die "cargo build --release failed"
BIN="$ROOT/target/release/linkrun"
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" sandbox --port "$PORT" > "$TMP/banner.txt" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/_sandbox/knobs" >/dev/null && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT"
CLIENT=$(grep -o 'client_id [^ ]*' "$TMP/banner.txt" | head -1 | cut -d' ' -f2)
SECRET=$(grep -o 'client_secret [^ ]*' "$TMP/banner.txt" | head -1 | cut -d' ' -f2)
CODE=$(curl -sf -X POST "$BASE/oauth/v2/self-client/code?client_id=$CLIENT&scope=ZohoCRM.modules.ALL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
TOKEN=$(curl -sf -X POST "$BASE/oauth/v2/token" -d "grant_type=authorization_code&client_id=$CLIENT&client_secret=$SECRET&code=$CODE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
ID=$(curl -sf -H "Authorization: Zoho-oauthtoken $TOKEN" "$BASE/crm/v7/Leads?fields=Last_Name&per_page=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
run() {
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$@")
    if [ "${EXPECT_ERRORS:-0}" = 0 ] && grep -q "Non-2xx" <<<"$out"; then die "non-2xx answers under load: $out"; fi
    awk "/Requests\\/sec/ {print \$2}" <<<"$out"
}
READS=$(run -H "Authorization: Zoho-oauthtoken $TOKEN" "$BASE/crm/v7/Leads/$ID")
LIST=$(run -H "Authorization: Zoho-oauthtoken $TOKEN" "$BASE/crm/v7/Leads?fields=Last_Name,Email&per_page=10")
FLOOR=$(EXPECT_ERRORS=1 run "$BASE/crm/v7/Leads/$ID")
printf '%-52s %12s\n' "figure (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)" "requests/s"
printf '%-52s %12s\n' "GET /crm/v7/Leads/{id} (record read)" "$READS"
printf '%-52s %12s\n' "GET /crm/v7/Leads?fields=...&per_page=10" "$LIST"
printf '%-52s %12s\n' "baseline: same URL without a token (refused at once)" "$FLOOR"
python3 -c "r=float('$READS'); f=float('$FLOOR'); print(f'record reads: {r:.0f}/s ({r/f:.2f} of the refusal baseline); target >= 5000/s: {\"ok\" if r >= 5000 else \"MISSED\"}')"
