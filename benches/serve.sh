#!/usr/bin/env bash
# Serve benchmark (issue 13's figures), each against a baseline measured in the same run:
#
#  1. throughput and p99 of a sync webhook whose script makes one `invoke_url` (through an
#     api_key connection) to nginx, against benches/serve_baseline (axum + reqwest doing the
#     same call), both driven by wrk (2 threads, CONNS connections, DURATION s), interleaved
#     twice (A B A B). Targets: throughput >= 0.5x, p99 <= 3x.
#  2. the screen pop: the sandbox adds 100 ms to each answer; 20 calls ring at once (wrk, 20
#     connections posting `ringing` to triggers/call_events.toml); p99 of the answer. Target:
#     <= 100 ms + 25 ms.
#  3. Org A create -> lead in Org B through the workflow webhook (triggers/lead_to_org_b.toml):
#     median of LEADS leads. Target: < 1 s.
#  4. serve's peak RSS (VmHWM) over 1 and 2. Target: < 64 MiB.
#
#   benches/serve.sh      # DURATION=10 CONNS=16 LEADS=20; BENCH_KEEP=1 keeps the temp dir
#
# Needs nginx and wrk (Debian: apt-get install nginx-light wrk). Exit 1 when a step fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
LEADS=${LEADS:-20}
# shellcheck source=support/build.sh
. "$ROOT/benches/support/build.sh"
for tool in wrk; do command -v "$tool" >/dev/null || die "\`$tool\` is not installed (apt-get install wrk)"; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is not installed (apt-get install nginx-light)"
step "building the baseline (cargo build --release -p serve-baseline)"
(cd "$ROOT" && cargo build --release -p serve-baseline >&2) || die "the baseline did not build"
BASELINE="$TARGET_DIR/release/serve-baseline"
[ -x "$BASELINE" ] || die "no baseline at $BASELINE"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkrun-serve-bench.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${BENCH_KEEP:-}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
cd "$TMP"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_KEY="nginx-key-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"

# --- nginx ---------------------------------------------------------------------------------
NPORT=$(free_port)
mkdir -p nginx/tmp
cat >nginx/nginx.conf <<EOF
daemon off;
master_process off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp;
    proxy_temp_path $TMP/nginx/tmp;
    fastcgi_temp_path $TMP/nginx/tmp;
    uwsgi_temp_path $TMP/nginx/tmp;
    scgi_temp_path $TMP/nginx/tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT;
        default_type application/json;
        location /x {
            if (\$http_x_api_key != "$API_KEY") { return 401 '{"error":"bad key"}'; }
            return 200 '{"ok":true,"lead":{"id":"4150868000000224005","Last_Name":"Ng"}}';
        }
    }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >nginx/stdout 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null -H "X-Api-Key: $API_KEY" "http://127.0.0.1:$NPORT/x" && break; sleep 0.05; done

# --- linkrun serve on a home with an api_key connection to nginx ----------------------------
export LINKRUN_HOME="$TMP/home"
cat >nginx_api.toml <<EOF
link_name = "nginx_api"
name = "nginx"
auth = "api_key"
placement = "header"
base_url = "http://127.0.0.1:$NPORT"
allowed_hosts = ["127.0.0.1"]
[[params]]
key = "X-Api-Key"
label = "API key"
secret = true
EOF
"$BIN" service add nginx_api.toml >/dev/null
"$BIN" connection create nginx --service nginx_api --param "X-Api-Key=$API_KEY" >/dev/null
echo 'invoke_url(#{ url: "/x", connection: "nginx" })' >bench.rhai
printf 'name = "bench"\nscript = "bench.rhai"\n[webhook]\npath = "/hooks/bench"\n' >bench.toml
KEY=$("$BIN" trigger add bench.toml --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
printf '[runs]\nkeep = 1000000\n' >"$LINKRUN_HOME/linkrun.toml"

start_serve() { # args: extra flags; sets SERVE_PID SERVE_URL
    "$BIN" serve --bind 127.0.0.1:0 --no-local-triggers "$@" 2>"$TMP/serve.log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    for _ in $(seq 200); do grep -q 'listening: ' "$TMP/serve.log" 2>/dev/null && break; sleep 0.05; done
    SERVE_URL=$(grep -o 'listening: http://[0-9.:]*' "$TMP/serve.log" | head -1 | sed 's/listening: //')
    [ -n "$SERVE_URL" ] || die "serve did not start: $(tail -3 "$TMP/serve.log")"
}
stop_serve() { kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

start_serve
BPORT_FILE="$TMP/baseline.port"
"$BASELINE" "$KEY" "http://127.0.0.1:$NPORT/x" "$API_KEY" >"$BPORT_FILE" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$BPORT_FILE" ] && break; sleep 0.05; done
BASE_URL="http://127.0.0.1:$(sed 's/PORT //' "$BPORT_FILE")"

cat >post.lua <<EOF
wrk.method = "POST"
wrk.body = '{"lead":{"Last_Name":"Ng","Email":"ng@example.com"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Linkrun-Key"] = "$KEY"
EOF
for u in "$SERVE_URL" "$BASE_URL"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Linkrun-Key: $KEY" "$u/hooks/bench")" = 200 ] ||
        die "$u/hooks/bench does not answer 200"
done
# wrk's report -> "requests/s p50_ms p99_ms"; any non-2xx answer is a failure.
wrk_figures() {
    python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), t, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errors:
    sys.exit("non-2xx answers: %s\n%s" % (errors.group(1), t))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
print(f"{rps:.0f} {ms('50%'):.2f} {ms('99%'):.2f}")
PY
}
measure() { # name url -> "rps p50_ms p99_ms"
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s post.lua "$2/hooks/bench" >"$TMP/wrk.$1.txt" 2>&1
    wrk_figures "$TMP/wrk.$1.txt"
}
step "figure 1: wrk -t2 -c$CONNS -d${DURATION}s, linkrun serve and the baseline interleaved twice"
R=()
for round in 1 2; do
    R+=("$(measure "serve$round" "$SERVE_URL")")
    step "  linkrun serve, round $round: ${R[-1]} (runs/s, p50 ms, p99 ms)"
    R+=("$(measure "base$round" "$BASE_URL")")
    step "  baseline, round $round: ${R[-1]}"
done
SERVE_HWM=$(hwm_kib "$SERVE_PID")
RUNS_OK=$("$BIN" runs list --trigger bench --status ok --json --limit 100000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
stop_serve

# --- the screen pop and the lead flow against the sandbox, 100 ms per answer ------------------
"$BIN" sandbox --port 0 --latency-ms 100 >"$TMP/banner.txt" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q '127.0.0.1:' "$TMP/banner.txt" 2>/dev/null && break; sleep 0.1; done
SB=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMP/banner.txt" | head -1)
[ -n "$SB" ] || die "the sandbox did not start"
export LINKRUN_SANDBOX_URL="$SB"
# The banner's clients: Org A, Org B, ServiceNow (client, secret, user, password).
read -r A_ID A_SECRET B_ID B_SECRET SN_ID SN_SECRET SN_USER SN_PASS < <(python3 - "$TMP/banner.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
a = re.search(r"Org A \(us\): client_id (\S+)\s+client_secret (\S+)", t)
b = re.search(r"Org B \(in\): client_id (\S+)\s+client_secret (\S+)", t)
s = re.search(r"ServiceNow instance: client_id (\S+)\s+client_secret (\S+)\s+integration user (\S+) / (\S+)", t)
print(*a.groups(), *b.groups(), *s.groups())
PY
)
[ -n "${SN_PASS:-}" ] || die "cannot read the clients from the sandbox banner"
connect_zoho() { # link client secret
    local code
    "$BIN" connection create "$1" --service zoho_crm --dc sandbox --param "client_id=$2" --param "client_secret=$3" >/dev/null
    code=$(curl -sf -X POST "$SB/oauth/v2/self-client/code?client_id=$2&scope=ZohoCRM.modules.ALL" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
    "$BIN" connection authorize "$1" --code "$code" >/dev/null
}
connect_zoho crm_a "$A_ID" "$A_SECRET"
connect_zoho crm_b "$B_ID" "$B_SECRET"
"$BIN" connection create sn --service servicenow --instance sandbox --param "client_id=$SN_ID" \
    --param "client_secret=$SN_SECRET" --param "username=$SN_USER" --param "password=$SN_PASS" >/dev/null
"$BIN" connection authorize sn >/dev/null
CALL_KEY=$("$BIN" trigger add "$ROOT/triggers/call_events.toml" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
LEAD_KEY=$("$BIN" trigger add "$ROOT/triggers/lead_to_org_b.toml" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# Scripts blocked on a 100 ms answer hold their worker: 20 calls at once need 20 workers or more.
start_serve --workers 32
# A seeded ServiceNow contact's number (the seed is deterministic; the check below says so if not).
PHONE="+1 415-555-0165"
cat >ring.lua <<EOF
wrk.method = "POST"
wrk.body = '{"event":"ringing","call_id":"bench","from":"$PHONE","to":"+15550100"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Linkrun-Key"] = "$CALL_KEY"
EOF
[ "$(curl -s -o "$TMP/pop.json" -w '%{http_code}' -X POST -H "X-Linkrun-Key: $CALL_KEY" -H 'Content-Type: application/json' \
    -d "{\"event\":\"ringing\",\"call_id\":\"x\",\"from\":\"$PHONE\"}" "$SERVE_URL/hooks/phone/events")" = 200 ] ||
    die "the ringing webhook does not answer 200: $(cat "$TMP/pop.json")"
grep -q '"sys_id"' "$TMP/pop.json" || die "the screen pop found no contact for $PHONE: $(cat "$TMP/pop.json")"
step "figure 2: 20 calls ringing at once for ${DURATION}s, 100 ms per sandbox answer"
wrk -t2 -c20 -d"${DURATION}s" --latency -s ring.lua "$SERVE_URL/hooks/phone/events" >"$TMP/wrk.ring.txt" 2>&1
POP=$(wrk_figures "$TMP/wrk.ring.txt")
POP_HWM=$(hwm_kib "$SERVE_PID")
# The provider alone: the same lookup the script sends, 20 at once, straight to the sandbox.
SN_TOKEN=$(curl -sf -X POST "$SB/oauth_token.do" --data-urlencode grant_type=password \
    --data-urlencode "client_id=$SN_ID" --data-urlencode "client_secret=$SN_SECRET" \
    --data-urlencode "username=$SN_USER" --data-urlencode "password=$SN_PASS" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
printf 'wrk.headers["Authorization"] = "Bearer %s"\nwrk.headers["Accept"] = "application/json"\n' "$SN_TOKEN" >sn.lua
SN_PATH="/api/now/table/customer_contact?sysparm_query=phoneLIKE0165%5EORmobile_phoneLIKE0165&sysparm_fields=sys_id,first_name,last_name,email,account,phone,mobile_phone&sysparm_limit=200"
wrk -t2 -c20 -d"${DURATION}s" --latency -s sn.lua "$SB$SN_PATH" >"$TMP/wrk.sn.txt" 2>&1
PROVIDER=$(wrk_figures "$TMP/wrk.sn.txt")

step "figure 3: $LEADS leads created in Org A, each timed until it is in Org B"
curl -sf -X POST "$SB/_sandbox/events/crm" -H 'content-type: application/json' \
    -d "{\"org\":\"us\",\"module\":\"Leads\",\"url\":\"$SERVE_URL/hooks/zoho/lead?key=$LEAD_KEY\"}" >/dev/null
cat >lead_timer.rhai <<'EOF'
// Creates a lead in Org A and waits until the webhook has copied it into Org B: ms between.
let email = `bench.${args.n}.${timestamp().elapsed}@example.com`;
let t = timestamp();
invoke_url(#{ url: "/crm/v7/Leads", type: "POST", connection: "crm_a",
    body: #{ data: [#{ Last_Name: "Bench", Email: email }] } });
loop {
    let r = invoke_url(#{ url: "/crm/v7/Leads/search", parameters: #{ email: email }, connection: "crm_b" });
    if type_of(r) == "map" && type_of(r.data) == "array" { break; }
    sleep(0.005);
}
t.elapsed * 1000.0
EOF
: >"$TMP/leads.txt"
for n in $(seq "$LEADS"); do "$BIN" run lead_timer.rhai --arg n="$n" >>"$TMP/leads.txt" 2>/dev/null || die "lead_timer.rhai failed"; done
stop_serve

python3 - "$CONNS" "$DURATION" "$SERVE_HWM" "$POP_HWM" "$RUNS_OK" "$TMP/leads.txt" "${R[@]}" "$POP" "$PROVIDER" <<'PY'
import statistics, sys
conns, dur, hwm1, hwm2, runs_ok, leads_file = sys.argv[1:7]
r = [tuple(map(float, x.split())) for x in sys.argv[7:11]]
pop = tuple(map(float, sys.argv[11].split()))
provider = tuple(map(float, sys.argv[12].split()))
leads = [float(x) for x in open(leads_file).read().split()]
serve = [r[0], r[2]]
base = [r[1], r[3]]
rps_ratio = statistics.mean(s[0] for s in serve) / statistics.mean(b[0] for b in base)
p99_ratio = statistics.mean(s[2] for s in serve) / statistics.mean(b[2] for b in base)
print(f"figure 1: sync webhook with one invoke_url to nginx, wrk -t2 -c{conns} -d{dur}s (two rounds each)")
print("| server | runs/s | p50 ms | p99 ms |")
print("|---|---|---|---|")
for name, rows in (("linkrun serve", serve), ("axum + reqwest baseline", base)):
    for x in rows:
        print(f"| {name} | {x[0]:.0f} | {x[1]:.2f} | {x[2]:.2f} |")
print(f"throughput {rps_ratio:.2f}x the baseline (target >= 0.5x); p99 {p99_ratio:.2f}x (target <= 3x); {runs_ok} runs recorded ok")
print(f"figure 2: screen pop, 20 calls ringing at once, 100 ms per sandbox answer: {pop[0]:.0f} answers/s, p50 {pop[1]:.1f} ms, p99 {pop[2]:.1f} ms (target <= 125 ms)")
print(f"          the provider alone (the same lookup, 20 at once, straight to the sandbox): p50 {provider[1]:.1f} ms, p99 {provider[2]:.1f} ms; serve adds {pop[1] - provider[1]:.1f} ms at p50, {pop[2] - provider[2]:.1f} ms at p99")
print(f"figure 3: Org A create -> lead in Org B: median {statistics.median(leads):.0f} ms, max {max(leads):.0f} ms over {len(leads)} leads (target: median < 1000 ms; the sandbox adds 100 ms to each of the create, the webhook's upsert and each search)")
print(f"figure 4: serve's peak RSS: {int(hwm1)/1024:.1f} MiB under figure 1, {int(hwm2)/1024:.1f} MiB under figure 2 with 32 workers (target < 64 MiB)")
PY
