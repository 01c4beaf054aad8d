#!/usr/bin/env bash
# linkrun benchmark: an OAuth 2.0 token that expires in the middle of a batch of requests.
# 1,000 requests through `invoke_all` (concurrency 8) against a local server answering in about
# 20 ms, once with a fresh token and once with a token that expires part-way through; the expiring
# run must cost exactly one refresh and at most 1.2x the time of the fresh run. The server is
# benches/support/oauth2_server.py (Python standard library). See benches/README.md.
#
#   benches/oauth2_refresh.sh           # build (release), measure, print the table
#
# Environment:
#   RUNS=5              timed runs of each kind (fresh, expiring), interleaved; plus one warm-up pair
#   CALLS=1000          requests per run
#   EXPIRES_IN=2        lifetime in seconds of the token the expiring runs start with
#   DELAY_MS=20         API answer time; TOKEN_DELAY_MS=20 token endpoint answer time
#   BENCH_ENFORCE=1     exit 3 when the time ratio misses its target (default: report only)
#   BENCH_KEEP=1        keep the temp dir (home, script, server log, per-run JSON) and print its path
#
# Exit status: 0 measured; 1 a command failed or a check failed (every run must print CALLS, the
# server must answer CALLS requests with 200 and none with 401, a fresh run must make no token
# request, an expiring run exactly one, during the run); 3 see above.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
CALLS=${CALLS:-1000}
EXPIRES_IN=${EXPIRES_IN:-2}
DELAY_MS=${DELAY_MS:-20}
TOKEN_DELAY_MS=${TOKEN_DELAY_MS:-20}
TARGET=1.2

die() { echo "bench: $*" >&2; exit 1; }
step() { echo "bench: $*" >&2; }
for tool in cargo python3; do
    command -v "$tool" >/dev/null || die "\`$tool\` is not installed; it is needed to run this benchmark"
done

step "building linkrun (cargo build --release)"
(cd "$ROOT" && cargo build --release --bin linkrun) || die "cargo build --release failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/linkrun"
[ -x "$BIN" ] || die "no binary at $BIN after the build"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkrun-bench-oauth2.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP:-}" = 1 ]; then
        echo "bench: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
cd "$TMP"   # no ./connections here: linkrun loads only its built-in and installed services

# --- the server ---
CLIENT_ID="bench-client-$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
CLIENT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
python3 "$ROOT/benches/support/oauth2_server.py" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" \
    --delay-ms "$DELAY_MS" --token-delay-ms "$TOKEN_DELAY_MS" >"$TMP/server.port" 2>"$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/server.port" ] && break; sleep 0.05; done
PORT=$(head -1 "$TMP/server.port")
[ -n "$PORT" ] || die "the OAuth 2.0 bench server did not start: $(tail -3 "$TMP/server.log")"
BASE="http://127.0.0.1:$PORT"
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/__status", timeout=5)' "$BASE" ||
    die "the OAuth 2.0 bench server does not answer on $BASE"
step "server: benches/support/oauth2_server.py (Python $(python3 -c 'import platform; print(platform.python_version())'), thread per connection) on $BASE"

# --- linkrun home: oauth2 service, one connection, key file as the vault key source ---
quiet() { "$@" >"$TMP/cmd.log" 2>&1 || { cat "$TMP/cmd.log" >&2; return 1; }; }  # output only on failure
unset LINKRUN_MASTER_KEY LINKRUN_PASSPHRASE LINKRUN_HOME
H="$TMP/home"
cat >"$TMP/bench_oauth.toml" <<EOF
link_name = "bench_oauth"
name = "Bench OAuth"
auth = "oauth2"
placement = "header"
base_url = "$BASE"

[oauth2]
token_url = "$BASE/token"
grant_types = ["authorization_code", "client_credentials"]
refresh_margin = 300
EOF
quiet "$BIN" --home "$H" service add "$TMP/bench_oauth.toml" || die "linkrun service add failed"
quiet "$BIN" --home "$H" connection create b --service bench_oauth \
    --param "client_id=$CLIENT_ID" --param "client_secret=$CLIENT_SECRET" ||
    die "linkrun connection create failed"
[ -f "$H/master.key" ] || die "no key file at $H/master.key: the vault key source is not the key file"
quiet "$BIN" --home "$H" connection authorize b --grant client_credentials ||
    die "linkrun connection authorize b --grant client_credentials failed"

# --- the script: CALLS request maps, one invoke_all, every result checked ---
cat >"$TMP/many.rhai" <<EOF
let reqs = [];
for i in 0..$CALLS {
    reqs.push(#{ url: "/api/items?i=" + i, connection: "b" });
}
let res = invoke_all(reqs, #{ concurrency: 8 });
if res.len() != $CALLS { throw "invoke_all returned " + res.len() + " results for $CALLS requests"; }
let n = 0;
for (r, i) in res {
    if type_of(r) != "map" || r.ok != true || r.i != i { throw "request " + i + " got " + to_json(r); }
    n += 1;
}
n
EOF
cat >"$TMP/one.rhai" <<'EOF'
let r = invoke_url(#{ url: "/api/one?i=7", connection: "b" });
if r.ok == true && r.i == 7 { "ok" } else { to_json(r) }
EOF
one=$("$BIN" --home "$H" run "$TMP/one.rhai") || die "linkrun run one.rhai failed"
[ "$one" = ok ] || die "linkrun run one.rhai got $one, not {\"ok\":true,...}"
step "checks passed: one request with the connection's token is answered 200"

# --- measurements ---
step "$RUNS rounds (+1 warm-up) of a fresh-token run and an expiring-token run (expires_in $EXPIRES_IN s), $CALLS requests each"
enforce=()
[ "${BENCH_ENFORCE:-}" = 1 ] && enforce=(--enforce)
echo
echo "linkrun OAuth 2.0 refresh benchmark: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(nproc) CPU(s)"
python3 "$ROOT/benches/support/oauth2_driver.py" ${enforce[@]+"${enforce[@]}"} \
    --bin "$BIN" --home "$H" --base "$BASE" --script "$TMP/many.rhai" --calls "$CALLS" \
    --runs "$RUNS" --warmup 1 --expires-in "$EXPIRES_IN" --target "$TARGET" \
    --delay-ms "$DELAY_MS" --token-delay-ms "$TOKEN_DELAY_MS" --out "$TMP/runs.json"
