#!/usr/bin/env bash
# linkrun benchmark: each figure is a ratio against a baseline (curl) measured in the same run,
# against a fast local HTTP server on 127.0.0.1 (nginx if installed, else a std-only Rust server
# from benches/support/bench_server.rs). See benches/README.md.
#
#   benches/run.sh                      # build (release), measure, print the tables
#
# Environment:
#   COLD_RUNS=30        timed runs of each cold (one request per process) command
#   MANY_RUNS=5         timed runs of each 2,000-call command
#   CALLS=2000          requests in the "many" figure
#   BENCH_SERVER=auto   auto (nginx, else the Rust server) | nginx | rust
#   BENCH_ENFORCE=1     exit 3 when a figure misses its target (default: report only)
#   BENCH_KEEP=1        keep the temp dir (home, scripts, server config) and print its path
#
# Exit status: 0 measured; 1 a command failed or a check failed (named on stderr); 3 see above.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COLD_RUNS=${COLD_RUNS:-30}
MANY_RUNS=${MANY_RUNS:-5}
CALLS=${CALLS:-2000}
BENCH_SERVER=${BENCH_SERVER:-auto}
TIMER="python3 $ROOT/benches/support/timer.py"
TARGET_COLD=0.6
TARGET_MANY=0.8
TARGET_BUDGET=1.03 # figure 3: within 3% of `retry: false` and no budget

die() { echo "bench: $*" >&2; exit 1; }
step() { echo "bench: $*" >&2; }
for tool in cargo python3 curl; do
    command -v "$tool" >/dev/null || die "\`$tool\` is not installed; it is needed to run this benchmark"
done

step "building linkrun (cargo build --release)"
(cd "$ROOT" && cargo build --release --bin linkrun) || die "cargo build --release failed"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/linkrun"
[ -x "$BIN" ] || die "no binary at $BIN after the build"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/linkrun-bench.XXXXXX")
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

KEY="bench-key-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() {
    for _ in $(seq 1 100); do
        curl -q -s -o /dev/null "http://127.0.0.1:$PORT/__status" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start_nginx() {
    local nginx
    nginx=$(command -v nginx || true)
    [ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || return 1
    PORT=$(free_port)
    mkdir -p "$TMP/nginx/tmp"
    cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;   # one process: the benchmark pins it to a CPU by its pid
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp;
    proxy_temp_path $TMP/nginx/tmp;
    fastcgi_temp_path $TMP/nginx/tmp;
    uwsgi_temp_path $TMP/nginx/tmp;
    scgi_temp_path $TMP/nginx/tmp;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT;
        default_type application/json;
        location /x {
            if (\$http_x_api_key != "$KEY") { return 401 '{"error":"bad key"}'; }
            return 200 '{"ok":true}';
        }
        location /open { return 200 '{"ok":true}'; }
        location = /__status { stub_status; }
    }
}
EOF
    "$nginx" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout" 2>&1 &
    SERVER_PID=$!
    if ! wait_up; then
        step "nginx did not start: $(cat "$TMP/nginx/stdout" "$TMP/nginx/error.log" 2>/dev/null | tail -3)"
        kill "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 1
    fi
    SERVER="nginx $("$nginx" -v 2>&1 | sed 's/.*nginx\///'), one process"
}

start_rust_server() {
    command -v rustc >/dev/null || die "neither nginx nor rustc is available for the bench server"
    step "compiling the fallback server (benches/support/bench_server.rs)"
    rustc -O --edition 2021 -o "$TMP/bench_server" "$ROOT/benches/support/bench_server.rs" ||
        die "cannot compile benches/support/bench_server.rs"
    "$TMP/bench_server" "$KEY" >"$TMP/server.port" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do [ -s "$TMP/server.port" ] && break; sleep 0.05; done
    PORT=$(head -1 "$TMP/server.port")
    [ -n "$PORT" ] && wait_up || die "the fallback bench server did not start"
    SERVER="std-only Rust server (benches/support/bench_server.rs), thread per connection"
}

case "$BENCH_SERVER" in
    nginx) start_nginx || die "nginx is not installed or did not start (apt-get install nginx-light)" ;;
    rust) start_rust_server ;;
    auto) start_nginx || { step "nginx not available: using the fallback Rust server"; start_rust_server; } ;;
    *) die "BENCH_SERVER must be auto, nginx or rust, not \`$BENCH_SERVER\`" ;;
esac
BASE="http://127.0.0.1:$PORT"
step "server: $SERVER on $BASE"
command -v rustc >/dev/null || die "rustc is needed to compile benches/support/raw_client.rs"
rustc -O --edition 2021 -o "$TMP/raw_client" "$ROOT/benches/support/raw_client.rs" ||
    die "cannot compile benches/support/raw_client.rs"
RAW="$TMP/raw_client $PORT $KEY $CALLS"

# --- linkrun home: api_key service, one connection, key file as the vault key source ---
unset LINKRUN_MASTER_KEY LINKRUN_PASSPHRASE LINKRUN_HOME
H="$TMP/home"
cat >"$TMP/bench.toml" <<EOF
link_name = "bench"
name = "Bench"
auth = "api_key"
placement = "header"
base_url = "$BASE"

[[params]]
key = "X-Api-Key"
secret = true
EOF
"$BIN" --home "$H" service add "$TMP/bench.toml" >/dev/null || die "linkrun service add failed"
"$BIN" --home "$H" connection create b --service bench --param "X-Api-Key=$KEY" >/dev/null ||
    die "linkrun connection create failed"
# The same service through a connection with a rate budget that never binds, for figure 3.
"$BIN" --home "$H" connection create bl --service bench --param "X-Api-Key=$KEY" >/dev/null ||
    die "linkrun connection create failed"
"$BIN" --home "$H" connection limits bl --max-concurrency 64 --requests-per-second 100000 >/dev/null ||
    die "linkrun connection limits failed"
[ -f "$H/master.key" ] || die "no key file at $H/master.key: the vault key source is not the key file"

# --- scripts ---
: >"$TMP/empty.rhai"
echo "invoke_url(#{ url: \"$BASE/open\" })" >"$TMP/noconn.rhai"
echo 'invoke_url(#{ url: "/x", connection: "b" })' >"$TMP/one.rhai"
cat >"$TMP/many.rhai" <<EOF
for i in 0..$CALLS {
    let r = invoke_url(#{ url: "/x?i=" + i, connection: "b" });
    if r.ok != true { throw "unexpected response " + r; }
}
EOF
# Figure 3: retries on (the defaults) and a budget, against one attempt and no budget.
cat >"$TMP/many_budget.rhai" <<EOF
for i in 0..$CALLS {
    let r = invoke_url(#{ url: "/x?i=" + i, connection: "bl" });
    if r.ok != true { throw "unexpected response " + r; }
}
EOF
cat >"$TMP/many_bare.rhai" <<EOF
for i in 0..$CALLS {
    let r = invoke_url(#{ url: "/x?i=" + i, connection: "b", retry: false });
    if r.ok != true { throw "unexpected response " + r; }
}
EOF
cat >"$TMP/many_noconn.rhai" <<EOF
for i in 0..$CALLS {
    let r = invoke_url(#{ url: "$BASE/open?i=" + i });
    if r.ok != true { throw "unexpected response " + r; }
}
EOF
cat >"$TMP/loop_only.rhai" <<EOF
for i in 0..$CALLS {
    let r = #{ url: "/x?i=" + i, connection: "b" };
    if r.url == "" { throw "never"; }
}
EOF
# curl reads ~/.curlrc unless -q comes first: the baseline must not depend on it.
{
    echo 'silent'
    echo "header = \"X-Api-Key: $KEY\""
    for ((i = 0; i < CALLS; i++)); do echo "url = \"$BASE/x?i=$i\""; done
} >"$TMP/many.curl"

LR="$BIN --home $H run"
CURL_ONE="curl -q -s -f -H X-Api-Key:$KEY $BASE/x"
CURL_MANY="curl -q -K $TMP/many.curl"

# --- checks: right answers, credentials sent, one kept-alive connection for the many case ---
[ "$($LR "$TMP/one.rhai")" = '{"ok":true}' ] || die "linkrun run one.rhai did not print {\"ok\":true}"
[ "$($LR "$TMP/noconn.rhai")" = '{"ok":true}' ] || die "linkrun run noconn.rhai did not print {\"ok\":true}"
[ "$($CURL_ONE)" = '{"ok":true}' ] || die "curl did not get {\"ok\":true} with the key"
status() { curl -q -s "$BASE/__status" | awk 'NR==3 { print $1, $3 }'; }
conns_and_requests() { # runs "$@", prints "TCP-connections requests" the server saw for it
    local a b
    a=$(status)
    "$@" >/dev/null || die "\`$*\` failed"
    b=$(status)
    # the second status request is counted too (one connection, one request)
    echo "$a $b" | awk '{ print $3 - $1 - 1, $4 - $2 - 1 }'
}
read -r lr_conns lr_reqs <<<"$(conns_and_requests $LR "$TMP/many.rhai")"
read -r curl_conns curl_reqs <<<"$(conns_and_requests $CURL_MANY)"
[ "$lr_reqs" = "$CALLS" ] || die "linkrun made $lr_reqs requests for $CALLS calls"
[ "$curl_reqs" = "$CALLS" ] || die "curl made $curl_reqs requests for $CALLS URLs"
codes=$($CURL_MANY -w '\n%{http_code} %{num_connects}\n' | awk 'NF == 2 && $1 ~ /^[0-9]+$/')
[ "$(echo "$codes" | awk '$1 == 200' | wc -l)" = "$CALLS" ] || die "curl got non-200 answers in the many case"
curl_connects=$(echo "$codes" | awk '{ s += $2 } END { print s }')
[ "$curl_connects" = 1 ] || die "curl opened $curl_connects connections for $CALLS URLs (expected 1: keep-alive)"
step "checks passed: linkrun used $lr_conns TCP connection(s) for $CALLS calls, curl $curl_conns (num_connects $curl_connects)"

# --- measurements (commands interleaved round-robin; medians) ---
step "cold runs: $COLD_RUNS x 6 commands"
$TIMER measure --runs "$COLD_RUNS" --warmup 3 --out "$TMP/cold.json" \
    --cmd spawn "/bin/true" \
    --cmd version "$BIN --version" \
    --cmd empty "$LR $TMP/empty.rhai" \
    --cmd noconn "$LR $TMP/noconn.rhai" \
    --cmd conn "$LR $TMP/one.rhai" \
    --cmd curl "$CURL_ONE"
step "$CALLS-call runs: $MANY_RUNS x 7 commands"
$TIMER measure --runs "$MANY_RUNS" --warmup 1 --out "$TMP/many.json" \
    --cmd floor "$RAW" \
    --cmd bare "$LR $TMP/many_bare.rhai" \
    --cmd budget "$LR $TMP/many_budget.rhai" \
    --cmd loop "$LR $TMP/loop_only.rhai" \
    --cmd noconn "$LR $TMP/many_noconn.rhai" \
    --cmd conn "$LR $TMP/many.rhai" \
    --cmd curl "$CURL_MANY"

# Sequential request/response over loopback is sensitive to where the scheduler puts client and
# server: on the same CPU each reply is a plain context switch, on two CPUs every reply is a
# cross-CPU wake-up (an IPI, and in a VM an exit). Measure both placements too, so a change in
# the headline ratio can be told apart from a change in placement.
PLACED=()
CPUS=($(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
if command -v taskset >/dev/null && [ "${#CPUS[@]}" -ge 2 ]; then
    FIRST=${CPUS[0]}
    LAST=${CPUS[${#CPUS[@]} - 1]}
    ALL=$(IFS=,; echo "${CPUS[*]}")
    for placement in same split; do
        server_cpu=$FIRST
        [ "$placement" = split ] && server_cpu=$LAST
        taskset -apc "$server_cpu" "$SERVER_PID" >/dev/null || die "cannot pin the server to CPU $server_cpu"
        step "$CALLS-call runs, client on CPU $FIRST, server on CPU $server_cpu: $MANY_RUNS x 3 commands"
        $TIMER measure --runs "$MANY_RUNS" --warmup 1 --out "$TMP/many_$placement.json" \
            --cmd floor "taskset -c $FIRST $RAW" \
            --cmd conn "taskset -c $FIRST $LR $TMP/many.rhai" \
            --cmd curl "taskset -c $FIRST $CURL_MANY"
    done
    taskset -apc "$ALL" "$SERVER_PID" >/dev/null || true
    PLACED=(
        --info-figure "   pinned: client and server on one CPU" "$TMP/many_same.json:conn" "$TMP/many_same.json:curl" "$TARGET_MANY"
        --info-figure "   pinned: client and server on two CPUs" "$TMP/many_split.json:conn" "$TMP/many_split.json:curl" "$TARGET_MANY"
    )
    for placement in same split; do
        [ "$placement" = same ] && where="one CPU" || where="two CPUs"
        PLACED+=(
            --many "pinned to $where: floor (raw client)" "$TMP/many_$placement.json:floor"
            --many "pinned to $where: linkrun" "$TMP/many_$placement.json:conn"
            --many "pinned to $where: curl" "$TMP/many_$placement.json:curl"
            --per-call "linkrun, pinned to $where" "$TMP/many_$placement.json:conn" "$TMP/many_$placement.json:floor" "$CALLS"
            --per-call "curl, pinned to $where" "$TMP/many_$placement.json:curl" "$TMP/many_$placement.json:floor" "$CALLS"
        )
    done
else
    step "taskset or a second CPU is missing: skipping the pinned runs"
fi

echo
echo "linkrun benchmark: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(nproc) CPU(s), server: $SERVER"
enforce=()
[ "${BENCH_ENFORCE:-}" = 1 ] && enforce=(--enforce)
C="$TMP/cold.json"
M="$TMP/many.json"
$TIMER report ${enforce[@]+"${enforce[@]}"} \
    --figure "1. cold run, one invoke_url (api_key)" "$C:conn" "$C:curl" "$TARGET_COLD" \
    --figure "2. $CALLS sequential invoke_url, one process" "$M:conn" "$M:curl" "$TARGET_MANY" \
    --figure "3. retries + rate budget, nothing failing" "$M:budget" "$M:bare" "$TARGET_BUDGET" \
    --cold "spawn floor: /bin/true" "$C:spawn" \
    --cold "linkrun --version" "$C:version" \
    --cold "linkrun run empty.rhai" "$C:empty" \
    --cold "linkrun run: invoke_url, no connection" "$C:noconn" \
    --cold "linkrun run: invoke_url, connection b" "$C:conn" \
    --cold "curl -H X-Api-Key (baseline)" "$C:curl" \
    --many "floor: minimal blocking client (raw_client.rs)" "$M:floor" \
    --many "linkrun: loop building the maps, no HTTP" "$M:loop" \
    --many "linkrun: $CALLS x invoke_url, no connection" "$M:noconn" \
    --many "linkrun: $CALLS x invoke_url, connection b" "$M:conn" \
    --many "linkrun: connection b, retry: false (figure 3 baseline)" "$M:bare" \
    --many "linkrun: connection bl, retries + budget" "$M:budget" \
    --many "curl -K: $CALLS URLs, one connection (baseline)" "$M:curl" \
    --per-call "linkrun, unpinned" "$M:conn" "$M:floor" "$CALLS" \
    --per-call "curl, unpinned" "$M:curl" "$M:floor" "$CALLS" \
    ${PLACED[@]+"${PLACED[@]}"} \
    --steps "exec + dynamic loading + clap (--version minus /bin/true)" "$C:version" "$C:spawn" \
    --steps "run setup: home, tokio runtime, Rhai engine, compile (empty)" "$C:empty" "$C:version" \
    --steps "first HTTP request, no connection (client, connect, GET)" "$C:noconn" "$C:empty" \
    --steps "connection: vault open, key file, unseal, catalog, placement" "$C:conn" "$C:noconn"
