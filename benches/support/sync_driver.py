"""The sync benchmark's driver (benches/sync.sh): for each record count, a fresh sandbox and
home per contender, the same ServiceNow contacts seeded, then the timed run (posix_spawn +
wait4: wall time and peak RSS of the linkrun process). Prints a table and exits 1 when a
check fails (counts, call budget)."""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

BIN, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SIZES = [int(x) for x in os.environ.get("SIZES", "10000,50000").split(",")]
ROUNDS = int(os.environ.get("ROUNDS", "1"))
SEED = """
let n = parse_int(args.n); let from = parse_int(args.from);
let reqs = [];
for i in from..from + n {
    reqs.push(#{ url: "/api/now/table/customer_contact", type: "POST",
        body: #{ first_name: "Bench" + i, last_name: "Contact", email: "bench" + i + "@bench.test",
                 phone: "+1 415 555 " + (i % 10000), title: "Tester" }, connection: "sn" });
}
let bad = 0;
for r in invoke_all(reqs, #{ concurrency: 8 }) { if type_of(r) != "map" || !("result" in r) { bad += 1; } }
bad
"""
SYNC = """name = "bench_contacts"
object = "contacts"
type = "one_way"
direction = "servicenow_to_crm"
page_size = 1000
[[sides]]
kind = "servicenow"
connection = "sn"
table = "customer_contact"
query = "emailENDSWITH@bench.test"
[[sides]]
kind = "crm"
connection = "crm_a"
module = "Contacts"
[[fields]]
servicenow = "email"
crm = "Email"
key = true
normalize = "lower"
[[fields]]
servicenow = "first_name"
crm = "First_Name"
[[fields]]
servicenow = "last_name"
crm = "Last_Name"
default = "(unknown)"
[[fields]]
servicenow = "phone"
crm = "Phone"
normalize = "phone"
[[fields]]
servicenow = "title"
crm = "Title"
"""


def fail(msg):
    sys.exit("bench: " + msg)


def timed(args, env, cwd):  # noqa: ARG001 (posix_spawn has no cwd: the commands need none)
    """Runs args; returns (wall s, peak RSS KiB, stdout, stderr, code)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t0 = time.perf_counter()
    pid = os.posix_spawn(args[0], args, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    out.seek(0); err.seek(0)
    return wall, ru.ru_maxrss, out.read().decode(), err.read().decode(), os.waitstatus_to_exitcode(status)


class Sandbox:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="linkrun-sync-bench.")
        self.env = dict(os.environ, LINKRUN_HOME=os.path.join(self.dir, "home"))
        self.banner = open(os.path.join(self.dir, "banner.txt"), "w+")
        self.proc = subprocess.Popen([BIN, "sandbox", "--port", "0"], stdout=self.banner, stderr=subprocess.STDOUT)
        for _ in range(100):
            self.banner.seek(0)
            t = self.banner.read()
            m = re.search(r"http://127\.0\.0\.1:\d+", t)
            if m and "ServiceNow instance" in t:
                break
            time.sleep(0.1)
        else:
            fail("the sandbox did not start")
        self.url = m.group(0)
        self.env["LINKRUN_SANDBOX_URL"] = self.url
        a = re.search(r"Org A \(us\): client_id (\S+)\s+client_secret (\S+)", t)
        s = re.search(r"ServiceNow instance: client_id (\S+)\s+client_secret (\S+)\s+integration user (\S+) / (\S+)", t)
        self.run("connection", "create", "crm_a", "--service", "zoho_crm", "--dc", "sandbox",
                 "--param", "client_id=" + a.group(1), "--param", "client_secret=" + a.group(2))
        req = urllib.request.Request(f"{self.url}/oauth/v2/self-client/code?client_id={a.group(1)}&scope=ZohoCRM.modules.ALL", method="POST")
        code = json.load(urllib.request.urlopen(req))["code"]
        self.run("connection", "authorize", "crm_a", "--code", code)
        self.run("connection", "create", "sn", "--service", "servicenow", "--instance", "sandbox",
                 "--param", "client_id=" + s.group(1), "--param", "client_secret=" + s.group(2),
                 "--param", "username=" + s.group(3), "--param", "password=" + s.group(4))
        self.run("connection", "authorize", "sn")
        os.makedirs(os.path.join(self.dir, "syncs"))
        with open(os.path.join(self.dir, "syncs", "bench_contacts.toml"), "w") as f:
            f.write(SYNC)
        self.run("sync", "add", os.path.join(self.dir, "syncs", "bench_contacts.toml"))
        with open(os.path.join(self.dir, "seed.rhai"), "w") as f:
            f.write(SEED)

    def run(self, *args):
        r = subprocess.run([BIN, *args], env=self.env, cwd=self.dir, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"`linkrun {' '.join(args)}` failed: {r.stderr.strip()}")
        return r.stdout

    def seed(self, n):
        for start in range(0, n, 5000):
            bad = self.run("run", "seed.rhai", "--arg", f"n={min(5000, n - start)}", "--arg", f"from={start}").strip()
            if bad != "0":
                fail(f"seeding: {bad} contacts not created")

    def stats(self):
        return json.load(urllib.request.urlopen(self.url + "/_sandbox/requests"))

    def close(self):
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["rm", "-rf", self.dir])


def engine(n):
    sb = Sandbox()
    try:
        sb.seed(n)
        # ServiceNow stamps changes to the second, so a sync whose last read is within the second
        # of the last change must read that second again next time (a record changed later in it
        # would sort anywhere). A first sync scheduled after an import starts seconds after it;
        # seeding thousands of records and syncing in the same second would charge the second run
        # for re-reading the seed's last second (SAME_SECOND=1 measures that case).
        if os.environ.get("SAME_SECOND") != "1":
            time.sleep(2.1)
        wall, rss, out, err, code = timed([BIN, "sync", "run", "bench_contacts", "--json"], sb.env, sb.dir)
        if code != 0:
            fail(f"sync run failed ({code}): {err}")
        c = json.loads(out)["objects"]["contacts"]["servicenow_to_crm"]
        if c["created"] != n or c["failed"] != 0 or c["read"] != n:
            fail(f"the engine's counts are wrong for {n}: {c}")
        # 100 records changed in ServiceNow, then a second run.
        patch = (
            'let rows = invoke_url(#{ url: "/api/now/table/customer_contact", connection: "sn", parameters: '
            '#{ sysparm_query: "emailENDSWITH@bench.test^ORDERBYsys_id", sysparm_limit: "100", sysparm_fields: "sys_id" } }).result;'
            'let reqs = []; for r in rows { reqs.push(#{ url: "/api/now/table/customer_contact/" + r.sys_id, type: "PATCH", '
            'body: #{ title: "Changed" }, connection: "sn" }); } let n = 0; for r in invoke_all(reqs, #{ concurrency: 8 }) { if type_of(r) == "map" && "result" in r { n += 1; } } n')
        with open(os.path.join(sb.dir, "patch.rhai"), "w") as f:
            f.write(patch)
        if sb.run("run", "patch.rhai").strip() != "100":
            fail("could not change 100 contacts")
        wall2, _, out2, err2, code2 = timed([BIN, "sync", "run", "bench_contacts", "--json"], sb.env, sb.dir)
        if code2 != 0:
            fail(f"the second sync run failed: {err2}")
        c2 = json.loads(out2)["objects"]["contacts"]["servicenow_to_crm"]
        return wall, rss, c, c2
    finally:
        sb.close()


def script(n):
    sb = Sandbox()
    try:
        sb.seed(n)
        path = os.path.join(ROOT, "scripts", "servicenow_contacts_to_crm.rhai")
        wall, rss, out, err, code = timed([BIN, "run", path, "--json", "--arg", "object=contacts"], sb.env, sb.dir)
        if code != 0:
            fail(f"the script failed ({code}): {err}")
        r = json.loads(out)["sn_to_crm"]
        if r["inserted"] < n:
            fail(f"the script inserted {r['inserted']} of {n}")
        return wall, rss, r
    finally:
        sb.close()


rows = []
ok = True
for n in SIZES:
    for rnd in range(ROUNDS):
        ew, erss, c, c2 = engine(n)
        rows.append((n, "engine", ew, erss, c["api_calls"], c2["api_calls"], c2["updated"]))
        budget = n // 1000 + n // 100 + 6
        if c["api_calls"] > budget:
            print(f"bench: MISSED: {c['api_calls']} calls for {n} records (at most {budget})", file=sys.stderr)
            ok = False
        # The 100 changed contacts fit one page of 1,000: one read, one batch write.
        if os.environ.get("SAME_SECOND") != "1" and c2["api_calls"] > 2:
            print(f"bench: MISSED: the second run made {c2['api_calls']} calls (at most 2)", file=sys.stderr)
            ok = False
        if n == SIZES[0]:
            sw, srss, r = script(n)
            rows.append((n, "script", sw, srss, None, None, None))
            print(f"bench: {n} contacts: engine {ew:.2f} s, script {sw:.2f} s: ratio {ew / sw:.2f}x; "
                  f"{n / ew:.0f} records/s", file=sys.stderr)

print(f"{'records':>8} {'who':<7} {'wall s':>7} {'peak RSS MiB':>12} {'calls':>6} {'2nd run calls':>13} {'2nd updated':>11}")
for n, who, w, rss, calls, calls2, upd in rows:
    f = lambda v: "-" if v is None else str(v)
    print(f"{n:>8} {who:<7} {w:>7.2f} {rss / 1024:>12.1f} {f(calls):>6} {f(calls2):>13} {f(upd):>11}")
eng = {n: rss for n, who, w, rss, *_ in rows if who == "engine"}
if len(eng) > 1:
    lo, hi = min(eng.values()), max(eng.values())
    print(f"peak RSS of the engine, largest over smallest record count: {hi / lo:.2f}x (target <= 1.2x)")
    ok = ok and hi / lo <= 1.2
sys.exit(0 if ok else 1)
