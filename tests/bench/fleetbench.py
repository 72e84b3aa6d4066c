"""Figures 9 to 11 of the benchmark: cost that follows the roles in use,
and renewals that never stampede STS (docs/benchmarks.md).

  9  100 000 configured roles, none read: mount ready, ls, one lookup,
     RSS, idle CPU over a minute, STS calls; a reload of the file, with
     reads made during it.  Compared with the same on 10 000 roles.
  10 10 000 roles in use, credentials living 240 s, max_sts_rate = 200:
     the STS rate and what readers saw.
  11 50 daemons (host identities of their own, 100 roles each, started in
     the same second) against one STS with an account-wide rate: without
     and with refresh_jitter; the rate over time as a PNG.

They use the local STS of tests/integration/local_sts.py (moto answers
about a hundred exchanges a second and has no account-wide rate) and
rolereader (tests/bench/rolereader.c) as the consumers.  Each function
takes the Bench of bench.py and reports through it.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time

import harness
import plot
from local_sts import LocalSts

ACCOUNT = "123456789012"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def role_sections(names, extra=""):
    return "".join("[role %s]\nrole_arn = arn:aws:iam::%s:role/%s\n"
                   "subject = system:serviceaccount:bench:%s\n%s\n"
                   % (n, ACCOUNT, n, n, extra) for n in names)


def config(bench, sts_url, defaults, roles_text):
    return ("[credfs]\nregion = ap-northeast-1\nsts_endpoint = %s\n%s\n"
            "[signer]\nkey = %s\nissuer = https://oidc.example.com\n\n%s"
            % (sts_url, defaults, bench.key, roles_text))


def cpu_and_switches(m):
    """(CPU seconds, context switches) of all threads of the daemon of
    mount m: its supervisor and its worker."""
    cpu, switches = 0, 0
    for tid, task in [(t, "/proc/%d/task" % pid) for pid in m.pids()
                      for t in os.listdir("/proc/%d/task" % pid)]:
        try:
            with open(os.path.join(task, tid, "schedstat")) as f:
                cpu += int(f.read().split()[0])
            with open(os.path.join(task, tid, "status")) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except OSError:
            pass            # the thread ended meanwhile
    return cpu / 1e9, switches


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class Sampler(threading.Thread):
    """Reads MNT/metrics of each mount every `every` seconds and keeps the
    largest value seen of each gauge."""
    GAUGES = ("credfs_requests_in_flight", "credfs_requests_queued",
              "credfs_renewals_behind", "credfs_roles_in_use")

    def __init__(self, mounts, every):
        super().__init__(daemon=True)
        self.mounts, self.every = mounts, every
        self.peak = {g: 0 for g in self.GAUGES}
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.wait(self.every):
            for m in self.mounts:
                try:
                    text = m.read("metrics")
                except OSError:
                    continue
                for g in self.GAUGES:
                    v = metric(text, g)
                    if v is not None and v > self.peak[g]:
                        self.peak[g] = v

    def stop(self):
        self.stop_event.set()
        self.join(30)


class Readers:
    """rolereader over role directories: every role read once per period."""

    def __init__(self, bench, dirs, seconds, threads, period_ms, slow_ms=20):
        self.list = os.path.join(bench.dir, "roles-%d.list" % id(self))
        with open(self.list, "w") as f:
            f.write("".join(d + "\n" for d in dirs))
        self.out_path = self.list + ".out"
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen(
            [bench.rolereader, "-d", str(seconds), "-t", str(threads), "-p", str(period_ms),
             "-s", str(slow_ms), "-l", self.list], stdout=self.out)
        bench.note_pid(self.proc.pid)

    def wait(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.out.close()
        if self.proc.returncode:
            raise RuntimeError("rolereader failed (exit %d)" % self.proc.returncode)
        events, roles, total = [], {}, {}
        with open(self.out_path) as f:
            for line in f:
                w = line.split()
                if w[0] in ("error", "expired", "slow"):
                    events.append((w[0], w[1], int(w[2]) / 1e9, int(w[3]) / 1e9,
                                   int(w[4]) if len(w) > 4 else 0))
                elif w[0] == "role":
                    roles[w[1]] = {k: int(v) for k, v in (x.split("=") for x in w[2:])}
                elif w[0] == "total":
                    total = {k: int(v) for k, v in (x.split("=") for x in w[1:])}
        return events, roles, total


def timed(argv):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, check=True)
    return time.perf_counter() - t0, r.stdout.count(b"\n")


def wait_answering(path, t0, proc, timeout=60):
    """Seconds from t0 until a stat of path is answered."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("credfs exited (%d)" % proc.returncode)
        try:
            os.stat(path)
            return time.perf_counter() - t0
        except OSError:
            time.sleep(0.0005)
    raise RuntimeError("%s not answered within %d s" % (path, timeout))


# ---- figure 9 ------------------------------------------------------------------

def fig9_idle_roles(bench, n=100000, small=10000):
    """100 000 configured roles nobody reads, against 10 000."""
    sts = LocalSts()
    bench.note_pid(sts.proc.pid)
    try:
        _fig9(bench, sts, n, small)
    finally:
        sts.stop()


def _mount_timed(bench, name, text, probe_role):
    """(mount, seconds to mountinfo, seconds to the first answer, CPU
    seconds the daemon used until then)."""
    m, ready = bench.mount(name, text)
    t0 = time.perf_counter() - ready
    answered = wait_answering(m.path(probe_role), t0, m.proc)
    cpu, _ = cpu_and_switches(m)
    return m, ready, answered, cpu


def lookups(m, names):
    """Median seconds of a stat of each role directory (never looked up
    before: each is a LOOKUP the daemon answers)."""
    times = []
    for name in names:
        t0 = time.perf_counter()
        os.stat(m.path(name))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fig9(bench, sts, n, small):
    sizes = {}
    for count in (small, n):
        names = ["r%06d" % i for i in range(count)]
        text = config(bench, sts.url, "", role_sections(names))
        readies, answers, cpus = [], [], []
        for attempt in range(3):
            m, ready, answered, cpu = _mount_timed(bench, "idle%d" % count, text, names[-1])
            readies.append(ready)
            answers.append(answered)
            cpus.append(cpu)
            if attempt < 2:
                bench.unmount(m)
        first_ls, _ = timed(["ls", "-f", m.mnt])
        ls_f = statistics.median(timed(["ls", "-f", m.mnt])[0] for _ in range(5))
        ls_sorted = [timed(["ls", m.mnt]) for _ in range(5)]
        ls = statistics.median(dt for dt, _ in ls_sorted)
        # Lookups of 1 000 roles spread over the file, never looked up.
        picks = [names[(i * 7919) % count] for i in range(min(1000, count))]
        lookup = lookups(m, picks)
        sizes[count] = dict(m=m, ready=statistics.median(readies), readies=readies,
                            answer=statistics.median(answers), answers=answers,
                            cpu=statistics.median(cpus), first_ls=first_ls, ls_f=ls_f, ls=ls,
                            entries=ls_sorted[0][1], lookup=lookup, rss=m.rss_kb(), names=names)
        if count != n:
            bench.unmount(m)
    big, little = sizes[n], sizes[small]
    m = big["m"]
    bench.report("9 %d roles: mount ready, median of 3: %.3f s to the mount (%s), %.3f s to the "
                 "first answer (%s), daemon CPU %.3f s; %d roles: %.3f s / %.3f s "
                 "(target: first answer <= 1 s)"
                 % (n, big["ready"], " ".join("%.3f" % r for r in big["readies"]),
                    big["answer"], " ".join("%.3f" % r for r in big["answers"]), big["cpu"],
                    small, little["ready"], little["answer"]), big["answer"] <= 1.0)
    per_big, per_little = big["ls"] / n, little["ls"] / small
    bench.report("9 %d roles: ls of the root (%d entries), median of 5: %.3f s (ls -f %.3f s, "
                 "the first after the mount %.3f s); %d roles: %.4f s; per entry %.2f us vs "
                 "%.2f us, ratio %.2f (target: ratio <= 1.5, readdir stays linear)"
                 % (n, big["entries"], big["ls"], big["ls_f"], big["first_ls"], small,
                    little["ls"], per_big * 1e6, per_little * 1e6, per_big / per_little),
                 per_big / per_little <= 1.5)
    ratio = big["lookup"] / little["lookup"]
    bench.report("9 lookup of one role never looked up before (stat ROLE), median of 1000: "
                 "%.1f us at %d roles, %.1f us at %d roles, ratio %.2f (target <= 1.5: "
                 "independent of the roles configured)"
                 % (big["lookup"] * 1e6, n, little["lookup"] * 1e6, small, ratio), ratio <= 1.5)
    bench.report("9 %d roles: daemon RSS after mount, ls and lookups: %.1f MB (%d roles: "
                 "%.1f MB) (target <= 128 MB)" % (n, big["rss"] / 1024, small,
                                                    little["rss"] / 1024),
                 big["rss"] <= 128 * 1024)
    calls = sts.count()
    bench.report("9 %d roles: STS calls before anything is read: %d (target 0)" % (n, calls),
                 calls == 0)
    # Idle: a minute, nothing read.
    cpu0, sw0 = cpu_and_switches(m)
    time.sleep(60)
    cpu1, sw1 = cpu_and_switches(m)
    idle = (cpu1 - cpu0) / 60
    bench.report("9 %d roles: daemon CPU while idle, over 60 s: %.3f ms per second, %.1f "
                 "wake-ups per second (target < 0.5 ms/s)"
                 % (n, idle * 1000, (sw1 - sw0) / 60.0), idle < 0.0005)
    _fig9_reload(bench, m, big["names"], n)
    bench.unmount(m)


def _fig9_reload(bench, m, names, n):
    """SIGHUP with the same 100 000-role file, three times, while a reader
    reads status of roles it never read before (each read reaches the
    daemon: a lookup, a getattr and a read)."""
    times, worst, fails, reads = [], 0.0, 0, 0
    baseline = []
    stop = threading.Event()
    lock = threading.Lock()
    seen = {"during": [], "fails": 0}
    order = iter(names[1::2])

    def reader():
        while not stop.is_set():
            try:
                name = next(order)
            except StopIteration:
                return
            t0 = time.perf_counter()
            try:
                with open(m.path(name, "status")) as f:
                    ok = '"state"' in f.read()
            except OSError:
                ok = False
            dt = time.perf_counter() - t0
            with lock:
                seen["during"].append(dt)
                if not ok:
                    seen["fails"] += 1

    # Reads of status with no reload, for comparison.
    for name in names[0:400:2]:
        t0 = time.perf_counter()
        with open(m.path(name, "status")) as f:
            f.read()
        baseline.append(time.perf_counter() - t0)
    for _ in range(3):
        with open(m.log_path, errors="replace") as f:
            before = f.read().count("reloaded ")
        with lock:
            seen["during"] = []
        th = threading.Thread(target=reader, daemon=True)
        stop.clear()
        th.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        os.kill(m.proc.pid, signal.SIGHUP)
        while True:
            with open(m.log_path, errors="replace") as f:
                if f.read().count("reloaded ") > before:
                    break
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("the reload did not finish within 60 s")
            time.sleep(0.005)
        times.append(time.perf_counter() - t0)
        time.sleep(0.2)
        stop.set()
        th.join(10)
        with lock:
            reads += len(seen["during"])
            worst = max([worst] + seen["during"])
            fails += seen["fails"]
            seen["fails"] = 0
    bench.report("9 reload (SIGHUP) of the %d-role file, median of 3: %.3f s (%s); reads of "
                 "status of fresh roles during the reloads: %d, %d failed, slowest %.1f ms "
                 "(without a reload: median %.2f ms, slowest %.1f ms); RSS after %.1f MB "
                 "(target: reads keep working, 0 failed)"
                 % (n, statistics.median(times), " ".join("%.3f" % t for t in times), reads,
                    fails, worst * 1000, statistics.median(baseline) * 1000,
                    max(baseline) * 1000, m.rss_kb() / 1024), fails == 0 and reads > 0)


# ---- figure 10 ------------------------------------------------------------------

def waited_reads(events, requests, lifetime, role_of, slack=0.05):
    """The slow reads that waited for an exchange of their role: started
    before its answer and ended within `slack` after it.  Returns (those
    made while the role held valid credentials, the others)."""
    by_role = {}
    for r in requests:
        if r.answered is not None:
            by_role.setdefault(r.role_arn, []).append(r)
    valid_wait, cold_wait = [], []
    for kind, d, start, end, _ in events:
        if kind != "slow":
            continue
        mine = by_role.get(role_of(d), [])
        hit = [r for r in mine if start <= r.answered <= end <= r.answered + slack]
        if not hit:
            continue
        # Credentials obtained before the read, still valid (1 s margin).
        valid = any(r.outcome == "ok" and r.answered < start < r.answered + lifetime - 1
                    for r in mine)
        (valid_wait if valid else cold_wait).append((d, start, end))
    return valid_wait, cold_wait


def fig10_in_use(bench, n=10000, rate=200, inflight=32, lifetime=240, seconds=330):
    """10 000 roles in use, credentials living 240 s, max_sts_rate = 200."""
    sts = LocalSts(lifetime=lifetime, latency=0.05)
    bench.note_pid(sts.proc.pid)
    sampler = None
    try:
        names = ["u%05d" % i for i in range(n)]
        defaults = ("max_sts_rate = %d\nmax_sts_inflight = %d\nrefresh_fraction = 0.5\n"
                    "min_validity = 60\nrefresh_jitter = 0.1\nwait_timeout = 120\n"
                    % (rate, inflight))
        m, _ = bench.mount("inuse", config(bench, sts.url, defaults, role_sections(names)))
        sampler = Sampler([m], 5)
        sampler.start()
        cpu0, _ = cpu_and_switches(m)
        start = time.monotonic()
        readers = Readers(bench, [m.path(x) for x in names], seconds, 256, 2000)
        events, roles, total = readers.wait(seconds + 180)
        elapsed = time.monotonic() - start
        cpu1, _ = cpu_and_switches(m)
        sampler.stop()
        reqs = sts.snapshot()
        _fig10_report(bench, sts, m, names, reqs, events, roles, total, start, elapsed,
                     rate, inflight, lifetime, sampler.peak, cpu1 - cpu0)
        hwm = m.status_kb("VmHWM")
        bench.report("10 daemon RSS with %d roles in use: %.1f MB now, %.1f MB at most "
                     "(reference)" % (n, m.rss_kb() / 1024, hwm / 1024))
        bench.unmount(m)
    finally:
        if sampler and sampler.is_alive():
            sampler.stop()
        sts.stop()


def _fig10_report(bench, sts, m, names, reqs, events, roles, total, start, elapsed, rate,
                 inflight, lifetime, peak, cpu):
    n = len(names)
    fill_end = max((v["first_ok_ns"] / 1e9 for v in roles.values() if v["first_ok_ns"]),
                   default=start)
    bins = sts.per_second(start, int(elapsed) + 1, requests=reqs)
    peak1 = sts.peak_rate(1.0, requests=reqs)
    peak10 = sts.peak_rate(10.0, requests=reqs)
    after_fill = [r for r in reqs if r.arrived > fill_end]
    bench.report("10 %d roles in use, max_sts_rate = %d, credentials living %d s, %.0f s: "
                 "%d STS requests (%d after every role had credentials, renewals); most in "
                 "any 1 s: %d, in any 10 s: %d (%.1f/s), most in one clock second: %d "
                 "(target: <= %d in any 1 s and <= %.1f/s over 10 s, as the STS sees "
                 "them: the bucket lets rate + 1 go in a second, a request that leaves a "
                 "few ms late can add one)"
                 % (n, rate, lifetime, elapsed, len(reqs), len(after_fill), peak1, peak10,
                    peak10 / 10, max(bins), rate + 2, rate + 0.2),
                 peak1 <= rate + 2 and peak10 <= 10 * rate + 2)
    state = sts.state()
    bench.report("10 requests in flight at once: at most %d at the STS, %d in the daemon's "
                 "metrics (sampled every 5 s) (target <= max_sts_inflight = %d)"
                 % (state["peak_in_flight"], peak["credfs_requests_in_flight"], inflight),
                 state["peak_in_flight"] <= inflight)

    def role_of(d):
        return "arn:aws:iam::%s:role/%s" % (ACCOUNT, os.path.basename(d))

    valid_wait, cold_wait = waited_reads(events, reqs, lifetime, role_of)
    slow = sum(1 for e in events if e[0] == "slow")
    bench.report("10 reads that waited on STS while the role held valid credentials: %d "
                 "(of %d reads, %d slower than 20 ms; %d first reads waited for the "
                 "first credentials, the fill took %.0f s) (target 0)"
                 % (len(valid_wait), total.get("reads", 0), slow, len(cold_wait),
                    fill_end - start), not valid_wait)
    bad = {e[1] for e in events if e[0] in ("error", "expired")}
    never = sum(1 for v in roles.values() if not v["first_ok_ns"])
    bench.report("10 roles that ever served expired credentials or failed a read: %d (%d "
                 "expired reads, %d failed reads; %d roles never served); renewals behind "
                 "their min_validity point, largest sampled: %d; daemon CPU %.1f ms/s "
                 "(target 0 roles)"
                 % (len(bad), total.get("expired", 0), total.get("errors", 0), never,
                    peak["credfs_renewals_behind"], cpu / elapsed * 1000),
                 not bad and not never and total.get("reads", 0) > 0)


# ---- figure 11 -----------------------------------------------------------------

def fig11_fleet(bench, hosts=50, per_host=100, account_rate=100, lifetime=200,
                fraction=0.8, jitter=0.5, seconds=360):
    """A fleet started in the same second, without and with refresh_jitter."""
    runs = []
    for j in (0.0, jitter):
        runs.append(_fleet_run(bench, hosts, per_host, account_rate, lifetime, fraction, j,
                               seconds))
    for r in runs:
        _fleet_report(bench, r, hosts, per_host, account_rate, lifetime, fraction)
    png = os.path.join(ROOT, "docs", "fleet-sts-rate.png")
    panels = []
    for r in runs:
        label = ("without refresh_jitter" if not r["jitter"] else
                 "refresh_jitter = %g" % r["jitter"])
        panels.append(("%s: %d throttled" % (label, r["throttled"]),
                       [("accepted", (40, 90, 200), r["ok_bins"]),
                        ("throttled", (220, 40, 40), r["thr_bins"])]))
    top = max(max(a + b for a, b in zip(r["ok_bins"], r["thr_bins"])) for r in runs)
    plot.chart(png, "sts requests per second, %d hosts x %d roles" % (hosts, per_host),
               panels, max(top, account_rate * 1.2),
               line=(account_rate, "account rate %d/s" % account_rate),
               subtitle=("all started in the same second; credentials live %d s, "
                         "refresh_fraction %g; the account allows %d/s, %d at once"
                         % (lifetime, fraction, account_rate, account_rate)))
    data = os.path.join(ROOT, "docs", "fleet-sts-rate.json")
    with open(data, "w") as f:
        json.dump([{k: r[k] for k in ("jitter", "ok_bins", "thr_bins", "throttled")}
                   for r in runs], f, separators=(",", ":"))
        f.write("\n")
    bench.report("11 plot of the STS request rate, both runs: %s, from %s (accepted and "
                 "throttled requests per second at the STS) (reference)"
                 % (os.path.relpath(png, ROOT), os.path.relpath(data, ROOT)))


def _fleet_run(bench, hosts, per_host, account_rate, lifetime, fraction, jitter, seconds):
    sts = LocalSts(rate=account_rate, lifetime=lifetime, latency=0.02)
    bench.note_pid(sts.proc.pid)
    mounts, sampler = [], None
    try:
        names = ["f%03d" % i for i in range(per_host)]
        texts = []
        for h in range(hosts):
            defaults = ("host_id = host-%02d\nmax_sts_rate = 10\nmax_sts_inflight = 4\n"
                        "refresh_fraction = %g\nmin_validity = 30\nrefresh_jitter = %g\n"
                        "wait_timeout = 60\n" % (h, fraction, jitter))
            roles = "".join("[role %s]\nrole_arn = arn:aws:iam::%s:role/%s\n"
                            "subject = system:serviceaccount:fleet:%s\n"
                            "session_name = h%02d-%s\n\n" % (n, ACCOUNT, n, n, h, n)
                            for n in names)
            texts.append(config(bench, sts.url, defaults, roles))
        # Written first, then every daemon started within the same second.
        t_start = time.monotonic()
        for h, text in enumerate(texts):
            cfg = os.path.join(bench.dir, "fleet%02d.conf" % h)
            with open(cfg, "w") as f:
                f.write(text)
        procs = []
        for h in range(hosts):
            m = FleetMount(bench, os.path.join(bench.dir, "fleet%02d.conf" % h),
                           os.path.join(bench.dir, "fleet%02d" % h))
            m.spawn()
            procs.append(m)
            mounts.append(m)
        spawn_span = time.monotonic() - t_start
        for m in mounts:
            m.wait_mounted()
        start = time.monotonic()
        sampler = Sampler(mounts, 10)
        sampler.start()
        dirs = [m.path(n) for m in mounts for n in names]
        readers = Readers(bench, dirs, seconds, 512, 2000)
        events, roles, total = readers.wait(seconds + 120)
        elapsed = time.monotonic() - start
        sampler.stop()
        reqs = sts.snapshot()
        throttled_metric = 0
        for m in mounts:
            try:
                throttled_metric += metric(m.read("metrics"), "credfs_throttled_total") or 0
            except OSError:
                pass
        secs = int(elapsed) + 1
        ok_bins = sts.per_second(start, secs, outcome="ok", requests=reqs)
        thr_bins = sts.per_second(start, secs, outcome="throttled", requests=reqs)
        firsts = [v["first_ok_ns"] / 1e9 for v in roles.values() if v["first_ok_ns"]]
        fill_end = max(firsts) if firsts else start
        def after_first(e):
            return roles[e[1]]["first_ok_ns"] and e[2] > roles[e[1]]["first_ok_ns"] / 1e9

        bad = [e for e in events if e[0] in ("error", "expired") and after_first(e)]
        bad_roles = {e[1] for e in bad}
        start_failures = sum(1 for e in events if e[0] == "error" and not after_first(e))
        return dict(jitter=jitter, start=start, elapsed=elapsed, spawn_span=spawn_span,
                    ok_bins=ok_bins, thr_bins=thr_bins,
                    requests=len(reqs), throttled=sum(1 for r in reqs if r.outcome == "throttled"),
                    throttled_after=sum(1 for r in reqs if r.outcome == "throttled"
                                        and r.arrived > fill_end),
                    after=sum(1 for r in reqs if r.arrived > fill_end),
                    fill=fill_end - start, peak_after=max(
                        [a + b for a, b in zip(ok_bins[int(fill_end - start) + 1:],
                                               thr_bins[int(fill_end - start) + 1:])] or [0]),
                    never=sum(1 for v in roles.values() if not v["first_ok_ns"]),
                    lost=len(bad_roles), expired=total.get("expired", 0),
                    errors=total.get("errors", 0), reads=total.get("reads", 0),
                    bad_after=len(bad), start_failures=start_failures,
                    behind=sampler.peak["credfs_renewals_behind"],
                    throttled_seen=throttled_metric)
    finally:
        if sampler and sampler.is_alive():
            sampler.stop()
        for m in reversed(mounts):
            try:
                m.stop()
            except Exception as e:      # noqa: BLE001 - keep cleaning
                print("bench: unmounting %s: %s" % (m.mnt, e))
        sts.stop()


def _fleet_report(bench, r, hosts, per_host, account_rate, lifetime, fraction):
    label = "without refresh_jitter" if not r["jitter"] else "refresh_jitter = %g" % r["jitter"]
    bench.report("11 fleet, %s: %d daemons (started within %.2f s) x %d roles, account rate "
                 "%d/s, credentials %d s, refresh_fraction %g, %.0f s: %d STS requests, %d "
                 "throttled; after every role had credentials (%.0f s): %d requests, %d "
                 "throttled, busiest second %d; the daemons counted %d throttled answers "
                 "(reference)"
                 % (label, hosts, r["spawn_span"], per_host, account_rate, lifetime, fraction,
                    r["elapsed"], r["requests"], r["throttled"], r["fill"], r["after"],
                    r["throttled_after"], r["peak_after"], r["throttled_seen"]))
    bench.report("11 fleet, %s: roles that lost valid credentials after their first: %d (%d "
                 "failed or expired reads after it); of %d reads %d expired, %d failed, all "
                 "the others before a role's first credentials, at the start; roles never "
                 "served %d; renewals behind their min_validity point, most sampled in one "
                 "daemon %d (target 0 roles lost, every role served)"
                 % (label, r["lost"], r["bad_after"], r["reads"], r["expired"], r["errors"],
                    r["never"], r["behind"]), r["lost"] == 0 and r["never"] == 0)


class FleetMount(harness.Mount):
    """A credfs daemon of the fleet: started without waiting, so that all
    of them start in the same second; stopped as the tests' mounts are."""

    def __init__(self, bench, config_path, mnt):
        super().__init__(config_path, mnt)
        self.bench = bench
        self.args = [bench.credfs, "-f", config_path, mnt]

    def spawn(self):
        os.makedirs(self.mnt, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self.bench.note_pid(self.proc.pid)

    def wait_mounted(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if harness.is_mounted(self.mnt):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("credfs exited (%d) before mounting; see %s"
                                   % (self.proc.returncode, self.log_path))
            time.sleep(0.01)
        raise RuntimeError("%s did not mount within %d s" % (self.mnt, timeout))
