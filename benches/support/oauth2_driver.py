#!/usr/bin/env python3
"""Runs and checks the rounds of benches/oauth2_refresh.sh (standard library only).

    oauth2_driver.py --bin LINKRUN --home DIR --base URL --script many.rhai --calls N
                     --runs R --warmup W --expires-in E --target T [--enforce] --out FILE.json

Each round runs two kinds of `linkrun run many.rhai` (N requests through invoke_all), in
alternating order from round to round:

  fresh     the server issues tokens for an hour; `connection authorize --grant client_credentials`
            right before the run; the run must make no token request at all.
  expiring  the server issues the client-credentials token for E seconds (refreshed tokens for an
            hour); the authorisation is started just after a whole second of the wall clock (linkrun
            keeps expiry times in whole seconds), so the token crosses linkrun's refresh point
            (E - min(refresh_margin, E/2) seconds after it was obtained) and then its real expiry
            part-way through the run; the run must make exactly one token request, and it must come
            after the first and before the last API request.

For both: the script must print N (it checks every result itself), the server must have answered
N API requests with 200 and none with 401. The authorisation and the stats reset are not timed;
the timed part is the `linkrun run` process alone (posix_spawn + wait4, as support/timer.py: wall
time and the child's user+sys CPU time).

Prints the table; exits 1 if any check failed (after printing what the server saw), 3 with
--enforce when the median ratio expiring/fresh is above the target, else 0.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def http(base, path, data=None):
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def spawn_and_wait(argv, out_fd, err_fd):
    actions = [(os.POSIX_SPAWN_DUP2, out_fd, 1), (os.POSIX_SPAWN_DUP2, err_fd, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3, os.waitstatus_to_exitcode(status)


def ms(v):
    if v is None:
        return "-"
    return "1h" if v > 600_000 else f"{v:.0f} ms"


def fmt(ms):
    return f"{ms / 1000:.3f} s" if ms >= 1000 else f"{ms:.1f} ms"


class Bench:
    def __init__(self, a):
        self.a = a
        self.lr = [a.bin, "--home", a.home]
        self.failures = []
        self.failed_rows = []
        self.results = {"fresh": [], "expiring": []}

    def authorize(self, align):
        if align:
            # start just after a whole second: linkrun's obtained_at/expires_at are whole seconds
            frac = time.time() % 1.0
            time.sleep((1.0 - frac + 0.02) % 1.0)
        p = subprocess.run(
            self.lr + ["connection", "authorize", "b", "--grant", "client_credentials"],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            sys.stderr.write(f"bench: `linkrun connection authorize b` exited {p.returncode}: {p.stderr.strip()}\n")
            sys.exit(1)
        return time.time()

    def one(self, kind, rnd, timed):
        a = self.a
        expiring = kind == "expiring"
        http(a.base, "/_config", json.dumps({
            "grant_expires_in": a.expires_in if expiring else 3600,
            "refresh_expires_in": 3600,
        }).encode())
        authorized_at = self.authorize(align=expiring)
        http(a.base, "/_stats/reset", b"")
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.time()
            wall, cpu, code = spawn_and_wait(self.lr + ["run", a.script], out.fileno(), err.fileno())
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace").strip()
            stderr = err.read().decode("utf-8", "replace").strip()
        stats = http(a.base, "/_stats")
        row = {
            "kind": kind,
            "round": rnd,
            "timed": timed,
            "wall_ms": wall,
            "cpu_ms": cpu,
            "exit": code,
            "stdout": stdout[:500],
            "stderr": stderr[-2000:],
            "run_started_ms_after_authorize": round((started - authorized_at) * 1000, 1),
            "stats": stats,
        }
        problems = []
        if code != 0:
            problems.append(f"`linkrun run` exited {code}: {stderr.splitlines()[-1] if stderr else '(no stderr)'}")
        elif stdout != str(a.calls):
            problems.append(f"the script printed {stdout[:200]!r}, not {a.calls}")
        if stats["api_ok"] != a.calls or stats["api_requests"] != a.calls:
            problems.append(
                f"the server answered {stats['api_requests']} API requests ({stats['api_ok']} with 200), not {a.calls}"
            )
        if stats["api_401"]:
            problems.append(f"the server refused {stats['api_401']} API requests with 401 {stats['api_401_reasons']}")
        want = 1 if expiring else 0
        if stats["token_requests_total"] != want:
            problems.append(
                f"{stats['token_requests_total']} token requests during the run (expected {want}): "
                f"{stats['token_requests']}, errors {stats['token_errors']}"
            )
        if expiring and stats["token_requests_total"] == 1:
            ev = stats["token_events"][0]
            if ev["grant_type"] != "refresh_token":
                problems.append(f"the token was renewed with grant_type={ev['grant_type']}, not refresh_token")
            if ev["outcome"] != "issued":
                problems.append(f"the renewal was refused: {ev['outcome']}")
            if not (0 < ev["api_requests_before"] < a.calls):
                problems.append(
                    f"the refresh came after {ev['api_requests_before']} of {a.calls} API requests: not during the run"
                )
        row["problems"] = problems
        for p in problems:
            self.failures.append(f"{kind} run (round {rnd}{'' if timed else ', warm-up'}): {p}")
        if problems:
            self.failed_rows.append(row)
        if timed:
            self.results[kind].append(row)
        tag = "ok" if not problems else "CHECK FAILED"
        ev = stats["token_events"]
        extra = ""
        if ev:
            extra = "; token requests: " + ", ".join(
                f"{e['grant_type']} {e['outcome']} after {e['api_requests_before']} API requests "
                f"({e['ms_after_first_api_request']} ms into them)" for e in ev
            )
        sys.stderr.write(
            f"bench: {'round ' + str(rnd) if timed else 'warm-up'} {kind:<8} {fmt(wall):>9} cpu {fmt(cpu):>9} "
            f"200s {stats['api_ok']} 401s {stats['api_401']}{extra} [{tag}]\n"
        )
        return row

    def run(self):
        a = self.a
        kinds = ["fresh", "expiring"]
        for rnd in range(a.warmup + a.runs):
            timed = rnd >= a.warmup
            order = kinds if rnd % 2 == 0 else kinds[::-1]
            for kind in order:
                self.one(kind, rnd - a.warmup + 1 if timed else 0, timed)

    def report(self):
        a = self.a
        F, E = self.results["fresh"], self.results["expiring"]
        med = lambda rows, k: statistics.median(r[k] for r in rows)
        fw, ew, fc, ec = med(F, "wall_ms"), med(E, "wall_ms"), med(F, "cpu_ms"), med(E, "cpu_ms")
        ratio, cpu_ratio = ew / fw, ec / fc
        ok = ratio <= a.target
        refreshes = [r["stats"]["token_requests_total"] for r in E]
        grants = sorted({e["grant_type"] for r in E for e in r["stats"]["token_events"]})
        print()
        print(
            f"{a.calls} requests through invoke_all (concurrency 8), API answering in ~{a.delay_ms:g} ms, "
            f"token endpoint ~{a.token_delay_ms:g} ms; {len(F)} runs of each, interleaved"
        )
        head = f"{'figure':<52} {'expiring':>10} {'fresh':>10} {'ratio':>6} {'target':>7}  {'result':<7} {'cpu ratio':>9}"
        print(head)
        print("-" * len(head))
        print(
            f"{'expiring token / fresh token (median wall time)':<52} {fmt(ew):>10} {fmt(fw):>10} {ratio:>6.2f} "
            f"{'<= ' + format(a.target, 'g'):>7}  {'ok' if ok else 'MISSED':<7} {cpu_ratio:>9.2f}"
        )
        one = all(n == 1 for n in refreshes)
        print(
            f"{'token requests per expiring run (all runs)':<52} {'/'.join(map(str, refreshes)):>10} "
            f"{'/'.join(str(r['stats']['token_requests_total']) for r in F):>10} {'':>6} {'== 1':>7}  "
            f"{'ok' if one else 'MISSED':<7}"
        )
        print(f"renewal grant seen by the server: {', '.join(grants) or '(none)'}")
        print()
        print("Runs (wall, client CPU user+sys; server counts; when the refresh came)")
        head = (
            f"{'run':<12} {'wall':>9} {'cpu':>9} {'200s':>5} {'401s':>5} {'tokens':>6} {'grant':<14} "
            f"{'refresh at':>11} {'after reqs':>10} {'expires at':>11} {'stale uses':>10}"
        )
        print(head)
        print("-" * len(head))
        for r in sorted(F + E, key=lambda r: (r["round"], r["kind"] != "fresh")):
            s = r["stats"]
            ev = s["token_events"][0] if s["token_events"] else None
            print(
                f"{r['kind'] + ' ' + str(r['round']):<12} {fmt(r['wall_ms']):>9} {fmt(r['cpu_ms']):>9} "
                f"{s['api_ok']:>5} {s['api_401']:>5} {s['token_requests_total']:>6} "
                f"{(ev['grant_type'] if ev else '-'):<14} "
                f"{(str(ev['ms_after_first_api_request']) + ' ms' if ev else '-'):>11} "
                f"{(str(ev['api_requests_before']) if ev else '-'):>10} "
                f"{ms(s['token_at_reset_expires_ms_after_first_api_request']):>11} {s['stale_token_uses']:>10}"
            )
        print()
        print(
            "  refresh at: when the token request reached the server, after the run's first API request;\n"
            "  after reqs: API requests that had reached the server before it; expires at: when the token\n"
            "  the run started with expired on the server, after the first API request ('1h' = an hour);\n"
            "  stale uses: accepted requests carrying a token older than the newest issued (sent before\n"
            "  the refresh finished, still valid)."
        )
        ideal = -(-a.calls // 8) * a.delay_ms
        print()
        print(
            f"Time above the ideal {fmt(ideal)} ({a.calls} requests / 8 at a time x {a.delay_ms:g} ms), medians: "
            f"fresh {fw - ideal:+.0f} ms, expiring {ew - ideal:+.0f} ms; "
            f"the refresh cost {ew - fw:+.0f} ms wall, {ec - fc:+.1f} ms CPU"
        )
        with open(a.out, "w") as f:
            json.dump({"fresh": F, "expiring": E, "failures": self.failures}, f, indent=1)
        return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--home", required=True)
    p.add_argument("--base", required=True)
    p.add_argument("--script", required=True)
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--expires-in", type=int, default=2)
    p.add_argument("--target", type=float, default=1.2)
    p.add_argument("--delay-ms", type=float, default=20)
    p.add_argument("--token-delay-ms", type=float, default=20)
    p.add_argument("--enforce", action="store_true")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.runs < 1:
        p.error("--runs must be at least 1")
    b = Bench(a)
    b.run()
    ok = b.report()
    if b.failures:
        print()
        print("CHECKS FAILED (what linkrun and the server did):")
        for f in b.failures:
            print(f"  - {f}")
        print("server stats of the failing runs:")
        for r in b.failed_rows:
            print(f"  {r['kind']} round {r['round'] if r['timed'] else '(warm-up)'}, exit {r['exit']}, "
                  f"stdout {r['stdout'][:120]!r}: {json.dumps(r['stats'])}")
            if r["stderr"]:
                print("    stderr: " + r["stderr"].replace("\n", "\n    "))
        sys.exit(1)
    if a.enforce and not ok:
        sys.exit(3)


if __name__ == "__main__":
    main()
