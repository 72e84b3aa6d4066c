"""The credfs benchmark: the figures of the "Speed" targets, measured
against a local STS (moto behind the counting proxy of the integration
tests), on real mounts in a temporary directory.

Run it with scripts/bench, which builds credfs and readloop, finds the
Python that has moto, and cleans up after this script whatever happens.
Prints one line per figure with its target and PASS or MISS (lines marked
"reference" have no target), then a summary line.  Exit status: 0 when
every target is met, 1 when one is missed, 2 when the benchmark itself
failed.  docs/benchmarks.md explains each figure.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
from harness import Moto, is_mounted  # noqa: E402
from sts_proxy import StsProxy  # noqa: E402
import fleetbench  # noqa: E402

ACCOUNT = "123456789012"
REGION = "ap-northeast-1"
SYSTEM_AWS = "/usr/bin/aws"        # Debian's AWS CLI v2
# Credentials that live a few seconds: renewed at half their life.
SHORT = ("duration_seconds = 900\nrefresh_fraction = 0.5\nmin_validity = 1\n"
         "wait_timeout = 10\n")


def arn(name):
    return "arn:aws:iam::%s:role/%s-role" % (ACCOUNT, name)


class Bench:
    def __init__(self, args):
        self.credfs = os.path.abspath(args.credfs)
        self.readloop = os.path.abspath(args.readloop)
        self.signbench_exe = os.path.join(os.path.dirname(self.readloop), "signbench")
        self.rolereader = os.path.join(os.path.dirname(self.readloop), "rolereader")
        self.dir = os.path.abspath(args.dir)
        self.cli_runs = args.cli_runs
        self.mounts = []             # Mount objects still mounted
        self.tmpfs = None
        self.results = []            # (figure, passed or None)
        self.pidfile = os.path.join(self.dir, "pids")
        self.key = os.path.join(self.dir, "signer.pem")
        subprocess.run([self.credfs, "keygen", self.key], check=True,
                       stdout=subprocess.DEVNULL)
        self.moto = Moto()
        self.note_pid(self.moto.proc.pid)
        self.proxy = StsProxy(self.moto.port)
        # Answer like a production HTTP server: with Nagle's algorithm on,
        # http.server's separate writes of headers and body meet the
        # client's delayed ACK on a kept-alive connection (credfs keeps
        # its connection) and every exchange gains 40 ms that real STS
        # does not add (docs/benchmarks.md).
        self.proxy.server.RequestHandlerClass.disable_nagle_algorithm = True
        self.proxy.start()
        self._plain_rewrite = self.proxy._rewrite_expiration
        self.exchanges = []

    # -- plumbing ---------------------------------------------------------

    def note_pid(self, pid):
        """Records a process this script started, for scripts/bench's trap."""
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % pid)

    def report(self, text, passed=None):
        """One figure: passed True/False prints PASS/MISS, None a reference."""
        tail = "" if passed is None else (" PASS" if passed else " MISS")
        print(text + tail, flush=True)
        self.results.append((text, passed))

    def sts_delay(self, seconds):
        """Makes every successful exchange answer `seconds` late (0: at once),
        so a reader that waited for STS would show it.  Each delayed
        exchange's (arrival, answer) on time.monotonic() goes to
        self.exchanges."""
        plain = self._plain_rewrite
        self.exchanges = []
        if not seconds:
            self.proxy._rewrite_expiration = plain
            return

        def late(data):
            upstream_done = time.monotonic()
            time.sleep(seconds)
            out = plain(data)
            with self.proxy.lock:
                arrival = max((t for t, _, _ in self.proxy.times if t <= upstream_done),
                              default=upstream_done)
            self.exchanges.append((arrival, time.monotonic()))
            return out

        self.proxy._rewrite_expiration = late

    def config(self, roles, defaults="", extra_roles_text=""):
        text = ("[credfs]\nregion = %s\nsts_endpoint = %s\n%s\n"
                "[signer]\nkey = %s\nissuer = https://oidc.example.com\n\n"
                % (REGION, self.proxy.url, defaults, self.key))
        for name, body in roles.items():
            text += ("[role %s]\nrole_arn = %s\nsubject = system:serviceaccount:bench:%s\n%s\n"
                     % (name, arn(name), name, body))
        return text + extra_roles_text

    def mount(self, name, text, env=None):
        """Mounts text as a config at DIR/name; returns (mount, seconds
        from exec to the mount appearing in /proc/self/mountinfo)."""
        cfg = os.path.join(self.dir, name + ".conf")
        with open(cfg, "w") as f:
            f.write(text)
        m = Mount(self.credfs, cfg, os.path.join(self.dir, name), env)
        ready = m.start(self.note_pid)
        self.mounts.append(m)
        return m, ready

    def unmount(self, m):
        m.stop()
        self.mounts.remove(m)

    def make_tmpfs(self):
        """A tmpfs of our own (root), else a directory on /dev/shm."""
        path = os.path.join(self.dir, "tmpfs")
        os.makedirs(path)
        if os.geteuid() == 0:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700",
                            "credfs-bench", path], check=True)
            self.tmpfs = path
            return path
        path = tempfile.mkdtemp(prefix="credfs-bench-", dir="/dev/shm")
        self.tmpfs = path
        return path

    def copy_to_tmpfs(self, src, name):
        if not self.tmpfs:
            self.make_tmpfs()
        dst = os.path.join(self.tmpfs, name)
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:
            f.write(data)
        return dst

    def run_readloop(self, *args):
        proc = subprocess.Popen([self.readloop] + [str(a) for a in args],
                                stdout=subprocess.PIPE, text=True)
        self.note_pid(proc.pid)
        out, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError("readloop failed (exit %d)" % proc.returncode)
        return out

    def latency(self, seconds, threads, paths):
        """readloop's latency mode: per path a dict of its figures, with
        "slow_reads": [(start, seconds)] on time.monotonic()."""
        out = self.run_readloop("-d", seconds, "-t", threads, "-s", 50, "-v", *paths)
        found = {p: {"slow_reads": []} for p in paths}
        for line in out.splitlines():
            if line.startswith("slow "):
                _, path, start, dur = line.split()
                found[path]["slow_reads"].append((int(start) / 1e9, int(dur) / 1e9))
                continue
            path, *fields = line.split()
            found[path].update({k: int(v) for k, v in (f.split("=") for f in fields)})
        return [found[p] for p in paths]

    def waited_for_sts(self, slow_reads, slack=0.05):
        """The slow reads that look like waiting for an exchange: started
        no earlier than `slack` before it arrived at STS, and ended when it
        was answered (within `slack` after)."""
        return [(s, d) for s, d in slow_reads
                if any(a - slack <= s <= b and b <= s + d <= b + slack
                       for a, b in self.exchanges)]

    def close(self):
        for m in reversed(self.mounts):
            try:
                m.stop()
            except Exception as e:      # noqa: BLE001 - keep cleaning
                print("bench: unmounting %s: %s" % (m.mnt, e), file=sys.stderr)
        self.mounts = []
        if self.tmpfs and os.path.ismount(self.tmpfs):
            subprocess.run(["umount", self.tmpfs], check=False)
        elif self.tmpfs and self.tmpfs.startswith("/dev/shm/"):
            shutil.rmtree(self.tmpfs, ignore_errors=True)
        self.proxy.stop()
        self.moto.stop()

    # -- the figures ------------------------------------------------------

    def machine(self):
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f
                          if l.startswith("model name")), "unknown CPU")
        version = subprocess.run([self.credfs, "--version"], capture_output=True,
                                 text=True).stdout.strip()
        print("machine: %d CPUs, %s, Linux %s; %s; load average %s"
              % (os.cpu_count(), model, platform.release(), version, loadavg()), flush=True)

    def fig1_warm_read(self):
        """Warm open + read + close of app/credentials and keys.json against
        the same bytes on tmpfs, interleaved rounds, medians."""
        m, _ = self.mount("warm", self.config({"app": ""}))
        creds = m.path("app", "credentials")
        jwks = m.path("keys.json")
        self.make_tmpfs()
        t_creds = self.copy_to_tmpfs(creds, "credentials")
        t_jwks = self.copy_to_tmpfs(jwks, "keys.json")
        out = self.run_readloop("-r", 31, "-n", 2000, creds, t_creds, jwks, t_jwks)
        ns = {p: float(v) for p, v in (l.split() for l in out.splitlines())}
        for label, a, b, target in (("credentials", creds, t_creds, 1.5),
                                    ("keys.json", jwks, t_jwks, None)):
            ratio = ns[a] / ns[b]
            text = ("1 warm read %s (open+read+close, %d B): credfs %.1f us, tmpfs %.1f us, "
                    "ratio %.2f" % (label, os.path.getsize(b), ns[a] / 1000, ns[b] / 1000, ratio))
            if target is None:
                self.report(text + " (reference)")
            else:
                self.report(text + " (target <= %.1f)" % target, ratio <= target)
        self.unmount(m)

    def fig2_3_renewals(self):
        """Readers across renewals of credentials that live 6 s (renewed
        after 3 s), with STS answering 1 s late so a read that waited for it
        would take up to a second: read latency, the idle role, and one STS
        call per renewal under 64 readers."""
        lifetime, delay = 6, 1.0
        self.proxy.reset()
        self.proxy.lifetime = lifetime
        self.sts_delay(delay)
        try:
            m, _ = self.mount("renew", self.config({"busy": "", "idle": "", "hot": ""},
                                                   defaults=SHORT))
            busy = m.path("busy", "credentials")
            m.read("idle", "credentials")
            m.read("busy", "credentials")
            ref = self.copy_to_tmpfs(busy, "busy-credentials")
            before = m.status("busy")["renewals"]
            seconds, threads = 14, 2
            c, t = self.latency(seconds, threads, [busy, ref])
            renewals = m.status("busy")["renewals"] - before
            ok = (c["slow"] == 0 and c["errors"] == 0 and renewals >= 3)
            self.report("2 no reader waits on STS (%d readers x %d s, STS %d ms late, "
                        "credentials live %d s): %d renewals, %d reads, %d versions seen, "
                        "%d errors, p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.2f ms, "
                        "%d reads over 50 ms (tmpfs alongside: p99 %.0f us, p99.9 %.0f us, "
                        "max %.2f ms, %d over 50 ms) (target: 0 reads over 50 ms, "
                        ">= 3 renewals)"
                        % (threads, seconds, delay * 1000, lifetime, renewals,
                           c["reads"], c["versions"], c["errors"], c["p50_ns"] / 1e3,
                           c["p99_ns"] / 1e3, c["p999_ns"] / 1e3, c["max_ns"] / 1e6,
                           c["slow"], t["p99_ns"] / 1e3, t["p999_ns"] / 1e3,
                           t["max_ns"] / 1e6, t["slow"]), ok)
            waited = self.waited_for_sts(c["slow_reads"])
            self.report("2 reads that waited for STS (started during one of the %d delayed "
                        "exchanges and ended when it was answered): %d of %d slow reads "
                        "(tmpfs alongside, same test: %d of %d) (target 0)"
                        % (len(self.exchanges), len(waited), len(c["slow_reads"]),
                           len(self.waited_for_sts(t["slow_reads"])), len(t["slow_reads"])),
                        not waited and len(self.exchanges) >= 3)
            idle_calls = self.proxy.count(role_arn=arn("idle"))
            state = m.status("idle")["state"]
            self.report("2 idle role: %d STS call(s) in %d s, read once, credentials living %d s "
                        "(state now %s) (target 1)" % (idle_calls, seconds, lifetime, state),
                        idle_calls == 1)

            hot = m.path("hot", "credentials")
            m.read("hot", "credentials")
            ref = self.copy_to_tmpfs(hot, "hot-credentials")
            seconds, threads = 11, 64
            h, t = self.latency(seconds, threads, [hot, ref])
            st = m.status("hot")
            calls = self.proxy.count(role_arn=arn("hot"))
            ok = (calls == st["renewals"] and st["renewals"] >= 3 and h["errors"] == 0)
            self.report("3 one STS call per renewal (%d readers x %d s, STS %d ms late): "
                        "%d renewals (first fetch included), %d STS calls, %d versions seen "
                        "by readers, %d reads, %d errors, max read %.0f ms (tmpfs alongside: "
                        "%.0f ms) (target: calls == renewals, >= 3 renewals)"
                        % (threads, seconds, delay * 1000, st["renewals"], calls,
                           h["versions"], h["reads"], h["errors"], h["max_ns"] / 1e6,
                           t["max_ns"] / 1e6), ok)
            self.unmount(m)
        finally:
            self.sts_delay(0)
            self.proxy.lifetime = None

    def fig4_many_roles(self, n=10000):
        """Ten thousand roles: mount ready time, ls, RSS, STS calls."""
        self.proxy.reset()
        roles = "".join("[role r%05d]\nrole_arn = %s\nsubject = system:serviceaccount:bench:r%05d\n\n"
                        % (i, arn("r%05d" % i), i) for i in range(n))
        text = self.config({}, extra_roles_text=roles)
        readies = []
        for attempt in range(3):
            m, ready = self.mount("many", text)
            readies.append(ready)
            if attempt < 2:
                self.unmount(m)
        ready = statistics.median(readies)
        self.report("4 %d roles: mount ready (exec to mountinfo) median %.3f s of 3 "
                    "(%s) (target <= 1 s)" % (n, ready, ", ".join("%.3f" % r for r in readies)),
                    ready <= 1.0)

        def timed(argv):
            t0 = time.perf_counter()
            r = subprocess.run(argv, stdout=subprocess.PIPE, check=True)
            dt = time.perf_counter() - t0
            return dt, r.stdout.count(b"\n")

        cold, _ = timed(["ls", "-f", m.mnt])
        for flags in (["-f"], []):
            runs = [timed(["ls"] + flags + [m.mnt]) for _ in range(5)]
            med = statistics.median(dt for dt, _ in runs)
            extra = " (first ls -f after mount: %.3f s)" % cold if flags else ""
            self.report("4 %d roles: ls %s of the root, %d entries: median %.3f s of 5%s "
                        "(target <= 0.2 s)" % (n, " ".join(flags) or "(sorted)",
                                               runs[0][1], med, extra), med <= 0.2)
        long_dt, _ = timed(["ls", "-l", m.mnt])
        self.report("4 %d roles: ls -l of the root once (a lookup and getattr per role): %.3f s "
                    "(reference)" % (n, long_dt))
        rss = m.rss_kb()
        self.report("4 %d roles: daemon RSS after mount + ls: %.1f MB (target <= 64 MB)"
                    % (n, rss / 1024), rss <= 64 * 1024)
        calls = self.proxy.count()
        self.report("4 %d roles: STS calls before anything is read: %d (target 0)"
                    % (n, calls), calls == 0)
        cpu0 = m.cpu_seconds()
        time.sleep(2)
        idle_cpu = m.cpu_seconds() - cpu0
        self.report("4 %d roles: daemon CPU while idle: %.2f ms per second (reference)"
                    % (n, idle_cpu / 2 * 1000))
        self.unmount(m)

    def endpoint_config(self, roles, port, extra_roles_text=""):
        return (self.config(roles, extra_roles_text=extra_roles_text)
                + "[endpoint]\nlisten = 127.0.0.1:%d\n" % port)

    def fig12_endpoint(self, seconds=5):
        """GET /roles/app/credentials with 1, 16 and 64 keep-alive clients
        (wrk), beside the same bytes served as a static buffer by the same
        library (staticserve): requests per second, p50 and p99."""
        port, sport = free_port(), free_port()
        self.proxy.reset()
        m, _ = self.mount("http", self.endpoint_config({"app": ""}, port))
        token = m.read("app", "authorization_token")
        url = "http://127.0.0.1:%d/roles/app/credentials" % port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/roles/app/credentials", headers={"Authorization": token})
        body = conn.getresponse().read()
        conn.close()
        static = os.path.join(self.dir, "static.json")
        with open(static, "wb") as f:
            f.write(body)
        exe = os.path.join(os.path.dirname(self.readloop), "staticserve")
        ref = subprocess.Popen([exe, str(sport), static], stdout=subprocess.PIPE, text=True)
        self.note_pid(ref.pid)
        try:
            if ref.stdout.readline().strip() != "ready":
                raise RuntimeError("staticserve did not start")
            for clients in (1, 16, 64):
                c = wrk(url, clients, seconds, ["Authorization: " + token])
                r = wrk("http://127.0.0.1:%d/roles/app/credentials" % sport, clients, seconds)
                self.report("12 endpoint, %2d keep-alive clients: credfs %.0f req/s p50 %.3f ms "
                            "p99 %.3f ms; static buffer %.0f req/s p50 %.3f ms p99 %.3f ms; "
                            "ratio %.2f of static (errors %d) (reference)"
                            % (clients, c[0], c[1], c[2], r[0], r[1], r[2], c[0] / r[0], c[3]))
        finally:
            ref.terminate()
            ref.wait(10)
        calls = self.proxy.count()
        self.report("12 endpoint: STS calls for all of it: %d (target 1)" % calls, calls == 1)
        self.unmount(m)

    def fig13_scrape(self, n=10000):
        """A metrics scrape with n roles in use: its size and how long it
        takes to build, over HTTP."""
        import concurrent.futures
        self.proxy.reset()
        port = free_port()
        # Tokens from a file: what is measured is the scrape, not 10,000
        # signatures.
        token = os.path.join(self.dir, "scrape-token")
        with open(token, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl")
        roles = "".join("[role r%05d]\nrole_arn = %s\nweb_identity_token_file = %s\n\n"
                        % (i, arn("r%05d" % i), token) for i in range(n))
        m, _ = self.mount("scrape", self.endpoint_config({}, port, extra_roles_text=roles))
        t0 = time.monotonic()

        def use(i):
            with open(m.path("r%05d" % i, "expiry")) as f:
                f.read()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(use, range(n)))
        used = time.monotonic() - t0
        times, size = [], 0
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t1 = time.perf_counter()
            conn.request("GET", "/metrics")
            data = conn.getresponse().read()
            times.append(time.perf_counter() - t1)
            conn.close()
            size = len(data)
        in_use = data.count(b"credfs_credentials_expiry_timestamp_seconds{")
        self.report("13 metrics with %d roles in use (%d STS calls in %.0f s): scrape %.1f MB, "
                    "%d B per role, built and sent in %.2f s median of 3 (target <= 8 MB)"
                    % (in_use, self.proxy.count(), used, size / 1e6, size // max(in_use, 1),
                       statistics.median(times)), size <= 8e6 and in_use == n)
        self.unmount(m)

    def sts_round_trip(self, conn, token, name):
        """One AssumeRoleWithWebIdentity POST to the proxy on conn, a
        kept-alive connection as credfs uses, with the body credfs sends;
        returns seconds."""
        body = urllib.parse.urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": arn(name), "RoleSessionName": "credfs-" + name,
            "WebIdentityToken": token, "DurationSeconds": "3600"})
        t0 = time.perf_counter()
        conn.request("POST", "/", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        resp = conn.getresponse()
        data = resp.read()
        dt = time.perf_counter() - t0
        if resp.status != 200 or b"<AccessKeyId>" not in data:
            raise RuntimeError("direct STS exchange failed: HTTP %d" % resp.status)
        return dt

    def fig5_cold_read(self, samples=11):
        """First read of fresh roles against direct STS round trips, interleaved."""
        self.proxy.reset()
        names = ["c%d" % i for i in range(samples)]
        m, _ = self.mount("cold", self.config({n: "" for n in names + ["tok"]}))
        token = m.read("tok", "token")      # signs; no STS call
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        self.sts_round_trip(conn, token, "warmup")
        m.read("tok", "credentials")        # credfs's connection is open too
        cold, rt = [], []

        def first_read(name):
            t0 = time.perf_counter()
            with open(m.path(name, "credentials"), "rb") as f:
                data = f.read()
            cold.append(time.perf_counter() - t0)
            if b"aws_session_token" not in data:
                raise RuntimeError("cold read of %s gave no credentials" % name)

        # Interleaved, alternating which goes first.
        for i, name in enumerate(names):
            if i % 2:
                first_read(name)
            rt.append(self.sts_round_trip(conn, token, "rt%d" % i))
            if not i % 2:
                first_read(name)
        c, r = statistics.median(cold), statistics.median(rt)
        self.report("5 cold first read: median %.1f ms of %d roles, STS round trip median %.1f ms, "
                    "difference %.1f ms (target <= 5 ms)"
                    % (c * 1000, samples, r * 1000, (c - r) * 1000), c - r <= 0.005)
        conn.close()
        self.unmount(m)

    def fig6_cli(self):
        """Process starts of the AWS CLI against the same local STS."""
        self.proxy.reset()
        roles = {"clia": "", "clib": "", "clic": "config_style = process\n"}
        m, _ = self.mount("cli", self.config(roles))
        v1 = shutil.which("aws", path=os.path.dirname(sys.executable))
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": REGION,
                     "AWS_REGION": REGION, "AWS_PAGER": ""})
        variants = {
            "a": ("ROLE/credentials", "clia", {
                "AWS_SHARED_CREDENTIALS_FILE": m.path("clia", "credentials"),
                "AWS_CONFIG_FILE": "/dev/null"}),
            "b": ("AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE=ROLE/token", "clib", {
                "AWS_ROLE_ARN": arn("clib"),
                "AWS_WEB_IDENTITY_TOKEN_FILE": m.path("clib", "token"),
                "AWS_ENDPOINT_URL_STS": self.proxy.url,
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_CONFIG_FILE": "/dev/null"}),
            "c": ("credential_process = cat ROLE/process.json", "clic", {
                "AWS_CONFIG_FILE": m.path("clic", "config"),
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}),
        }
        # (b) needs the CLI to send its own exchange to the local STS: the
        # CLI v1 of the test Python (botocore 1.43) honours
        # AWS_ENDPOINT_URL_STS; Debian's CLI v2.9 has no such setting, so it
        # runs (a) and (c) only.
        clis = [("aws v1 (%s)" % cli_version(v1), v1, "abc")]
        if os.path.exists(SYSTEM_AWS):
            clis.append(("aws v2 (%s)" % cli_version(SYSTEM_AWS), SYSTEM_AWS, "ac"))
        times = {(c, v): [] for c, _, vs in clis for v in vs}
        calls = {(c, v): 0 for c, _, vs in clis for v in vs}
        for i in range(self.cli_runs):
            for c, exe, vs in clis:
                for v in vs:
                    _, role, extra = variants[v]
                    env = dict(base, HOME=tempfile.mkdtemp(dir=self.dir), **extra)
                    n0 = self.proxy.count(role_arn=arn(role))
                    t0 = time.perf_counter()
                    r = subprocess.run([exe, "sts", "get-caller-identity", "--output", "json",
                                        "--endpoint-url", self.proxy.url],
                                       env=env, capture_output=True, text=True)
                    times[(c, v)].append(time.perf_counter() - t0)
                    calls[(c, v)] += self.proxy.count(role_arn=arn(role)) - n0
                    shutil.rmtree(env["HOME"], ignore_errors=True)
                    if r.returncode != 0 or "/%s-role/" % role not in r.stdout:
                        raise RuntimeError("%s (%s), start %d, failed (exit %d): %s"
                                           % (c, v, i + 1, r.returncode,
                                              r.stderr.strip()[-300:]))
        for c, _, vs in clis:
            b_med = statistics.median(times[(c, "b")]) if "b" in vs else None
            for v in vs:
                label = variants[v][0]
                med = statistics.median(times[(c, v)])
                text = ("6 %s x%d, (%s) %s: median %.0f ms, STS exchanges %d"
                        % (c, self.cli_runs, v, label, med * 1000, calls[(c, v)]))
                if v == "b":
                    self.report(text + " (reference: the CLI exchanges on every start)")
                    continue
                if b_med is not None:
                    text += ", %+.0f ms vs (b)" % ((med - b_med) * 1000)
                self.report(text + " (target: <= 1 exchange for all starts)",
                            calls[(c, v)] <= 1)
        self.unmount(m)


    def signbench(self, *args):
        """signbench's lines, per key a dict of its figures."""
        proc = subprocess.Popen([self.signbench_exe] + [str(a) for a in args],
                                stdout=subprocess.PIPE, text=True)
        self.note_pid(proc.pid)
        out, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError("signbench failed (exit %d)" % proc.returncode)
        found = {}
        for line in out.splitlines():
            path, *fields = line.split()
            found[path] = dict(f.split("=") for f in fields)
        return found

    def fig7_tpm(self, n=101):
        """Signing one token with a key in a TPM (swtpm on loopback) beside
        a file key, medians of n signatures each made alone, then four
        signers at once; and a warm read of token either way."""
        from swtpm import Swtpm
        tpm = Swtpm(os.path.join(self.dir, "swtpm"))
        tpm.start()
        self.note_pid(tpm.proc.pid)
        os.environ["TPM2OPENSSL_TCTI"] = tpm.tcti     # for the daemons too
        try:
            keys = {}
            for kind in ("ec", "rsa"):
                keys[("file", kind)] = os.path.join(self.dir, "sign-%s.pem" % kind)
                keys[("tpm", kind)] = os.path.join(self.dir, "sign-%s.tpm" % kind)
                subprocess.run([self.credfs, "keygen", "--type", kind,
                                keys[("file", kind)]], check=True)
                subprocess.run([self.credfs, "keygen", "--tpm", "--type", kind,
                                keys[("tpm", kind)]], check=True)
            alone = self.signbench("-n", n, *keys.values())
            for kind, alg in (("ec", "ES256"), ("rsa", "RS256")):
                f, t = alone[keys[("file", kind)]], alone[keys[("tpm", kind)]]
                self.report("7 sign one %s token, median of %d (p10 / p90): file key %.3f ms "
                            "(%.3f / %.3f), TPM key (swtpm) %.1f ms (%.1f / %.1f) (reference)"
                            % (alg, n, int(f["median_us"]) / 1000, int(f["p10_us"]) / 1000,
                               int(f["p90_us"]) / 1000, int(t["median_us"]) / 1000,
                               int(t["p10_us"]) / 1000, int(t["p90_us"]) / 1000))
            burst = self.signbench("-n", 4 * n, "-t", 4, keys[("tpm", "ec")])
            b = burst[keys[("tpm", "ec")]]
            self.report("7 four signers at once, ES256 TPM key: %.1f ms per signature "
                        "(one TPM session shared while signatures wait) (reference)"
                        % (int(b["wall_us_per_signature"]) / 1000))
            # A warm read of token costs the same with either key: it is
            # the kernel's cached copy, no signature.
            mounts, paths = [], []
            for where in ("file", "tpm"):
                text = self.config({"app": ""}).replace(
                    "key = %s\n" % self.key, "key = %s\n" % keys[(where, "ec")])
                m, _ = self.mount("token-" + where, text)
                mounts.append(m)
                m.read("app", "token")
                paths.append(m.path("app", "token"))
            out = self.run_readloop("-r", 31, "-n", 2000, *paths)
            ns = {p: float(v) for p, v in (l.split() for l in out.splitlines())}
            ratio = ns[paths[1]] / ns[paths[0]]
            self.report("7 warm read of token (open+read+close): file key %.1f us, TPM key "
                        "%.1f us, ratio %.2f (target 0.8 .. 1.25)"
                        % (ns[paths[0]] / 1000, ns[paths[1]] / 1000, ratio),
                        0.8 <= ratio <= 1.25)
            for m in mounts:
                self.unmount(m)
            self.report("7 objects left in the TPM's transient slots: %d (target 0)"
                        % len(tpm.transient_handles()), tpm.transient_handles() == [])
        finally:
            os.environ.pop("TPM2OPENSSL_TCTI", None)
            tpm.stop()


    # -- figure 8: the mount across deaths and takeovers --------------------

    def under_readers(self, m, seconds, events):
        """readloop's latency mode on m for `seconds` while events() runs;
        per path its figures."""
        paths = [m.path("metrics"), m.path("r0", "status"), m.path("r1", "credentials"),
                 m.path("r2", "token")]
        out = {}
        t = threading.Thread(target=lambda: out.update(
            zip(paths, self.latency(seconds, 4, paths))))
        t.start()
        time.sleep(1)
        events()
        t.join()
        return [out[p] for p in paths]

    def report_pauses(self, label, figures, quiet):
        """One line: the longest read and the errors across label, beside
        the same readers with nothing happening."""
        longest = max(f["max_ns"] for f in figures) / 1e6
        errors = sum(f["errors"] for f in figures)
        reads = sum(f["reads"] for f in figures)
        calm = max(f["max_ns"] for f in quiet) / 1e6
        self.report("8 %s: %d reads, %d failed, longest %.1f ms (%.1f ms with nothing "
                    "happening, ratio %.1f) (target 0 failed, longest < 1000 ms)"
                    % (label, reads, errors, longest, calm, longest / max(calm, 0.001)),
                    errors == 0 and longest < 1000)

    def fig8_restarts(self, kills=6, takeovers=3):
        """Four readers on files that reach the daemon (metrics every time,
        status and token after their 1 s attribute timeout, credentials)
        while the serving process is SIGKILLed, then while credfs takes its
        own mount over again and again."""
        runtime = os.path.join(self.dir, "runtime")
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        env = dict(os.environ, CREDFS_RUNTIME_DIR=runtime)
        m, _ = self.mount("restart", self.config({"r%d" % i: "" for i in range(8)}), env=env)
        for i in range(3):
            m.read("r%d" % i, "credentials")
        quiet = self.under_readers(m, 6, lambda: None)

        def kill_workers():
            for _ in range(kills):
                w = harness.worker_of(m.proc.pid)
                if w is None:
                    raise RuntimeError("no worker under %d" % m.proc.pid)
                os.kill(w, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while harness.worker_of(m.proc.pid) in (None, w):
                    if time.monotonic() > deadline:
                        raise RuntimeError("no new worker within 5 s")
                    time.sleep(0.01)
                time.sleep(1.5)
        figures = self.under_readers(m, 2 + kills * 1.6, kill_workers)
        self.report_pauses("across %d SIGKILLs of the worker" % kills, figures, quiet)

        def take_over():
            for _ in range(takeovers):
                old = m.proc
                p = subprocess.Popen([self.credfs, "takeover", "-f", m.config, m.mnt],
                                     stdout=m.log, stderr=subprocess.STDOUT, env=env)
                self.note_pid(p.pid)
                if old.wait(15) != 0:
                    raise RuntimeError("the old credfs did not hand over")
                m.proc = p
                time.sleep(1.5)
        figures = self.under_readers(m, 2 + takeovers * 1.6, take_over)
        self.report_pauses("across %d takeovers" % takeovers, figures, quiet)
        self.unmount(m)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cli_version(exe):
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    words = (out.stdout + out.stderr).split()
    return words[0] if words else "unknown"


class Mount(harness.Mount):
    """The tests' mount (stop() always unmounts: fusermount3 -u, -uz, then
    kill), timed from exec to /proc/self/mountinfo."""

    def __init__(self, credfs, config, mnt, env=None):
        super().__init__(config, mnt, env=env)
        self.args = [credfs, "-f", config, mnt]

    def start(self, note_pid, timeout=20):
        os.makedirs(self.mnt, exist_ok=True)
        self.log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        note_pid(self.proc.pid)
        while time.perf_counter() - t0 < timeout:
            if is_mounted(self.mnt):
                return time.perf_counter() - t0
            if self.proc.poll() is not None:
                raise RuntimeError("credfs exited (%d) before mounting; see %s"
                                   % (self.proc.returncode, self.log_path))
            time.sleep(0.0005)
        self.stop()
        raise RuntimeError("credfs did not mount within %d s" % timeout)

    def describe(self, out):
        """Whether the daemon lives and is mounted, and its log's tail
        (credfs never logs a secret)."""
        alive = self.proc is not None and self.proc.poll() is None
        print("bench: %s: daemon %s, %s; its log ends:"
              % (self.mnt, "running" if alive else "exited (%s)" % (
                  self.proc.returncode if self.proc else "-"),
                 "mounted" if is_mounted(self.mnt) else "NOT mounted"), file=out)
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f.readlines()[-20:]:
                    print("  " + line.rstrip(), file=out)
        except OSError:
            pass


    def read(self, *parts):
        with open(self.path(*parts)) as f:
            return f.read()

    def status(self, role):
        return json.loads(self.read(role, "status"))

    def pids(self):
        """The daemon's processes: the supervisor and its worker."""
        w = harness.worker_of(self.proc.pid)
        return [self.proc.pid] + ([w] if w else [])

    def status_kb(self, field):
        """A /proc/PID/status figure (VmRSS, VmHWM) summed over pids()."""
        total = 0
        for pid in self.pids():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        return total

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def cpu_seconds(self):
        """CPU time of all the daemon's threads, to the nanosecond."""
        total = 0
        for pid in self.pids():
            task = "/proc/%d/task" % pid
            for tid in os.listdir(task):
                try:
                    with open(os.path.join(task, tid, "schedstat")) as f:
                        total += int(f.read().split()[0])
                except OSError:
                    pass            # the thread ended meanwhile
        return total / 1e9


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, clients, seconds, headers=()):
    """wrk with `clients` keep-alive connections on as many threads (at
    most 2): (requests per second, p50 ms, p99 ms, errors)."""
    argv = ["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", "%ds" % seconds,
            "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 30,
                         check=True).stdout

    def ms(word):
        for line in out.splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == word:
                v = f[1]
                for unit, k in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                    if v.endswith(unit):
                        return float(v[:-len(unit)]) * k
        raise RuntimeError("wrk printed no %s latency:\n%s" % (word, out))
    rps = next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec:"))
    errors = sum(int(x) for l in out.splitlines() if "Non-2xx" in l for x in l.split()[-1:])
    return rps, ms("50%"), ms("99%"), errors


FIGURES = {
    "1": "fig1_warm_read",
    "2": "fig2_3_renewals",
    "3": "fig2_3_renewals",
    "4": "fig4_many_roles",
    "5": "fig5_cold_read",
    "6": "fig6_cli",
    "7": "fig7_tpm",
    "8": "fig8_restarts",
    "9": "fig9_idle_roles",
    "10": "fig10_in_use",
    "11": "fig11_fleet",
    "12": "fig12_endpoint",
    "13": "fig13_scrape",
}


def interrupted(signum, frame):
    """SIGTERM unwinds like Ctrl-C, through main's cleanup."""
    raise KeyboardInterrupt()


def main():
    p = argparse.ArgumentParser(description="the credfs benchmark")
    p.add_argument("--credfs", required=True)
    p.add_argument("--readloop", required=True)
    p.add_argument("--dir", required=True, help="an empty scratch directory")
    p.add_argument("--cli-runs", type=int, default=20)
    p.add_argument("figures", nargs="*", help="figure numbers to run (default: all)")
    args = p.parse_args()
    wanted = []
    for f in args.figures or sorted(FIGURES, key=int):
        if f not in FIGURES:
            p.error("no figure %s" % f)
        if FIGURES[f] not in wanted:
            wanted.append(FIGURES[f])
    signal.signal(signal.SIGTERM, interrupted)
    started = time.time()
    bench = None
    try:
        bench = Bench(args)
        bench.machine()
        for name in wanted:
            t0 = time.monotonic()
            if hasattr(fleetbench, name):
                getattr(fleetbench, name)(bench)
            else:
                getattr(bench, name)()
            print("(%s took %.0f s)" % (name, time.monotonic() - t0), flush=True)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 2
    except Exception as e:      # noqa: BLE001 - report, clean up, fail
        print("bench: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        for m in bench.mounts if bench else []:
            m.describe(sys.stderr)
        return 2
    finally:
        if bench:
            bench.close()
    passed = sum(1 for _, ok in bench.results if ok is True)
    missed = sum(1 for _, ok in bench.results if ok is False)
    print("%d PASS, %d MISS (%.0f s, load average %s)"
          % (passed, missed, time.time() - started, loadavg()))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
