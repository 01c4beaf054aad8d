#!/usr/bin/env python3
"""Timing helper for benches/run.sh (standard library only).

    timer.py measure --runs N --warmup W --out FILE.json --cmd LABEL 'COMMAND' [--cmd ...]
        Runs the commands round-robin (interleaved, so a burst of machine noise hits every
        command alike), each N times after W warm-up rounds, with stdout and stderr sent to
        /dev/null. A command is split with shlex and started with posix_spawn (no shell).
        Wall time is taken around spawn + wait; CPU time (user + sys) comes from wait4's rusage.
        Exits 1 naming the command if any run exits non-zero.

    timer.py report [--enforce] --figure NAME FILE.json:A FILE.json:B TARGET [--info-figure ...]
                    [--cold NAME FILE.json:LABEL]... [--many ...]... [--steps NAME A B]...
        Prints the result tables (see run.sh) and exits 0; with --enforce, exits 3 if a
        --figure (not an --info-figure) misses its target.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time


def spawn_and_wait(argv, devnull):
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    code = os.waitstatus_to_exitcode(status)
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3, code


def measure(args):
    cmds = [(label, shlex.split(text)) for label, text in args.cmd]
    devnull = os.open(os.devnull, os.O_WRONLY)
    wall = {label: [] for label, _ in cmds}
    cpu = {label: [] for label, _ in cmds}
    for rnd in range(args.warmup + args.runs):
        for label, argv in cmds:
            ms, cpu_ms, code = spawn_and_wait(argv, devnull)
            if code != 0:
                sys.stderr.write(
                    f"bench: `{label}` exited with {code}: {shlex.join(argv)}\n"
                    "       run it by hand to see its error\n"
                )
                sys.exit(1)
            if rnd >= args.warmup:
                wall[label].append(ms)
                cpu[label].append(cpu_ms)
    out = {}
    for label, argv in cmds:
        w = sorted(wall[label])
        out[label] = {
            "command": shlex.join(argv),
            "runs": len(w),
            "median_ms": statistics.median(w),
            "min_ms": w[0],
            "p25_ms": w[len(w) // 4],
            "p75_ms": w[(3 * len(w)) // 4],
            "cpu_median_ms": statistics.median(cpu[label]),
        }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def load(ref, cache):
    path, label = ref.rsplit(":", 1)
    if path not in cache:
        with open(path) as f:
            cache[path] = json.load(f)
    return cache[path][label]


def fmt(ms):
    return f"{ms / 1000:.3f} s" if ms >= 1000 else f"{ms:.2f} ms"


def report(args):
    cache = {}
    missed = False
    print()
    print("Figures (median wall time; ratio = linkrun / baseline, lower is better;")
    print("cpu ratio = the same for the client's user+sys CPU time)")
    head = (
        f"{'figure':<44} {'linkrun':>10} {'baseline':>10} {'ratio':>6} {'target':>7}  {'result':<7}"
        f" {'cpu ratio':>9}"
    )
    print(head)
    print("-" * len(head))
    rows = [(f, True) for f in args.figure] + [(f, False) for f in args.info_figure]
    rows.sort(key=lambda r: [i for i, x in enumerate(args.order) if x == r[0][0]] or [len(args.order)])
    for (name, a_ref, b_ref, target), enforced in rows:
        a, b = load(a_ref, cache), load(b_ref, cache)
        ratio = a["median_ms"] / b["median_ms"]
        cpu_ratio = a["cpu_median_ms"] / b["cpu_median_ms"] if b["cpu_median_ms"] else float("nan")
        ok = ratio <= float(target)
        if enforced:
            missed |= not ok
            result = "ok" if ok else "MISSED"
        else:
            result = "(ok)" if ok else "(miss)"
        print(
            f"{name:<44} {fmt(a['median_ms']):>10} {fmt(b['median_ms']):>10} {ratio:>6.2f} "
            f"{'<= ' + target:>7}  {result:<7} {cpu_ratio:>9.2f}"
        )
    for title, refs in (("Cold-run detail", args.cold), ("2,000-call detail", args.many)):
        if not refs:
            continue
        print()
        print(f"{title} (median / p25..p75 wall, median CPU user+sys)")
        head = f"{'command':<44} {'median':>10} {'p25..p75':>19} {'cpu':>10}  runs"
        print(head)
        print("-" * len(head))
        for name, ref in refs:
            r = load(ref, cache)
            spread = f"{fmt(r['p25_ms'])}..{fmt(r['p75_ms'])}"
            print(
                f"{name:<44} {fmt(r['median_ms']):>10} {spread:>19} {fmt(r['cpu_median_ms']):>10}  {r['runs']}"
            )
    if args.per_call:
        print()
        print("Per-call time above the floor client, (median - floor median) / calls")
        for name, a_ref, f_ref, n in args.per_call:
            a, f = load(a_ref, cache)["median_ms"], load(f_ref, cache)["median_ms"]
            print(f"  {name:<58} {(a - f) * 1000 / int(n):>7.1f} us")
    if args.steps:
        print()
        print("Cold-run attribution (differences of medians above; noise of a few tenths of a ms)")
        for name, a_ref, b_ref in args.steps:
            a = load(a_ref, cache)["median_ms"]
            b = load(b_ref, cache)["median_ms"] if b_ref != "-" else 0.0
            print(f"  {name:<58} {a - b:>+7.2f} ms")
    if missed and args.enforce:
        sys.exit(3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--runs", type=int, required=True)
    m.add_argument("--warmup", type=int, default=2)
    m.add_argument("--out", required=True)
    m.add_argument("--cmd", nargs=2, action="append", metavar=("LABEL", "COMMAND"), required=True)
    r = sub.add_parser("report")
    r.add_argument("--figure", nargs=4, action="append", default=[], metavar=("NAME", "A", "B", "TARGET"))
    r.add_argument("--info-figure", nargs=4, action="append", default=[], metavar=("NAME", "A", "B", "TARGET"),
                   help="like --figure, but never counted by --enforce")
    r.add_argument("--cold", nargs=2, action="append", default=[], metavar=("NAME", "REF"))
    r.add_argument("--many", nargs=2, action="append", default=[], metavar=("NAME", "REF"))
    r.add_argument("--steps", nargs=3, action="append", default=[], metavar=("NAME", "A", "B"))
    r.add_argument("--per-call", nargs=4, action="append", default=[], metavar=("NAME", "A", "FLOOR", "N"))
    r.add_argument("--enforce", action="store_true")
    args = p.parse_args()
    if args.what == "report":
        # figure rows print in command-line order (a figure's --info-figure rows follow it)
        args.order = [a for i, a in enumerate(sys.argv) if i and sys.argv[i - 1] in ("--figure", "--info-figure")]
    measure(args) if args.what == "measure" else report(args)


if __name__ == "__main__":
    main()
