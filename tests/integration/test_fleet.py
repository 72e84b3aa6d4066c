"""Fleets (docs/engine.md, docs/operations.md), as a user sees them: the daemon-wide
limiter measured where STS sees it, a cold read ahead of queued background
renewals, throttling that slows the whole daemon and passes, refresh points
spread by refresh_jitter within their bounds and stable per host, and a
limit too low to keep up that says so in status, the log and metrics.

Rates and in-flight counts are measured at the STS: the counting proxy in
front of moto, or the local STS of local_sts.py where moto cannot do what
is needed (answer slowly, throttle, hand out short lifetimes).  The module
runs alone (SERIAL) so that another module's load does not bend the
timings it measures.  About 100 s.

Bad values of the new keys are refused with FILE:LINE by test_badconfig
(tests/data/config/bad-refresh-jitter-*, bad-max-sts-*, bad-host-id-*).
"""
import configparser
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (ACCOUNT, CREDFS, CredfsTestCase, Mount, keygen, rfc3339, wait_for,
                     write_config)
from local_sts import LocalSts, peak_in_window

SERIAL = True
# Consumers in a process of their own (tests/bench/rolereader.c), so that
# 500 reading threads do not share the interpreter with the proxy that
# stamps the arrivals.
ROLEREADER = os.path.join(os.path.dirname(os.path.dirname(CREDFS)), "tests", "bench",
                          "rolereader")


def arn(name):
    return "arn:aws:iam::%s:role/%s-role" % (ACCOUNT, name)


def metric(m, name):
    """The value of an unlabelled metric of mount m."""
    found = re.search(r"^%s (\S+)$" % re.escape(name), m.read("metrics"), re.M)
    return float(found.group(1)) if found else None


def access_key(text):
    ini = configparser.ConfigParser()
    ini.read_string(text)
    return ini["default"]["aws_access_key_id"]


def read_all(m, roles, name="credentials"):
    """Reads role/name of every role at once (a thread each); returns
    {role: text or the OSError}."""
    out, lock = {}, threading.Lock()
    start = threading.Barrier(len(roles))

    def one(role):
        start.wait()
        try:
            text = m.read(role, name)
        except OSError as e:
            text = e
        with lock:
            out[role] = text

    threads = [threading.Thread(target=one, args=(r,)) for r in roles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def jitter_u(host, role):
    """engine_jitter_u: the first 64 bits of HMAC-SHA256(host, role), as
    53 bits over 2^53."""
    v = int.from_bytes(hmac.new(host.encode(), role.encode(), hashlib.sha256).digest()[:8],
                       "big")
    return (v >> 11) / float(1 << 53)


class Toucher(threading.Thread):
    """Reads credentials of each role every `every` seconds, as tools in
    use do (a read past the refresh point starts the renewal); keeps the
    access key ids it saw and the reads that failed."""

    def __init__(self, m, roles, every=0.2):
        super().__init__(daemon=True)
        self.m, self.roles, self.every = m, roles, every
        self.seen = {r: [] for r in roles}      # (monotonic, access key id)
        self.failed = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            for r in self.roles:
                try:
                    self.seen[r].append((time.monotonic(),
                                         access_key(self.m.read(r, "credentials"))))
                except OSError as e:
                    self.failed.append((r, e.errno))
            self.stop_event.wait(self.every)

    def stop(self):
        self.stop_event.set()
        self.join(30)


class TestLimiterAtTheProxy(CredfsTestCase):
    """max_sts_rate and max_sts_inflight as the proxy in front of moto
    counts them."""

    def test_rate_never_exceeded_under_500_concurrent_cold_reads(self):
        rate, n = 40, 500
        roles = {"r%03d" % i: "subject = system:serviceaccount:fleet:r%03d\n" % i
                 for i in range(n)}
        m = self.mount(roles=roles, defaults="max_sts_rate = %d\nmax_sts_inflight = 0\n"
                                               "wait_timeout = 60\n" % rate)
        listing = os.path.join(self.dir, "roles.list")
        with open(listing, "w") as f:
            f.write("".join(m.path(r) + "\n" for r in roles))
        run = subprocess.run([ROLEREADER, "-1", "-d", "60", "-t", str(n), "-l", listing],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        out = run.stdout
        total = [l for l in out.splitlines() if l.startswith("total ")]
        failed = [l.split()[1] for l in out.splitlines() if l.startswith(("error ", "expired "))]
        self.assertEqual(failed, [], "cold reads that failed or were expired")
        self.assertTrue(total and total[0].startswith("total reads=%d " % n), total)
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), n)
        times = sorted(t for t, action, _ in self.proxy.times
                       if action == "AssumeRoleWithWebIdentity")
        # The bucket starts with one request and holds at most 1.5: n
        # requests take at least (n - 1.5) / rate, whatever the timing noise.
        self.assertGreaterEqual(times[-1] - times[0], (n - 1.5) / rate - 0.05)
        # No second above the rate (+1: the bucket's depth), no 5 s above
        # 5 x rate (+2).  The proxy stamps arrivals in Python threads: on a
        # loaded machine a stall of its own of up to a quarter of a second
        # bunches the stamps of what arrived meanwhile, so that much is
        # allowed for at the edges of a window (a limiter that did not
        # limit would show hundreds, one at twice the rate 80).
        stall = rate // 4
        self.assertLessEqual(peak_in_window(times, 1.0), rate + 2 + stall)
        self.assertLessEqual(peak_in_window(times, 5.0), 5 * rate + 2 + stall)
        # And the limiter does not hold back: close to the rate overall.
        self.assertGreaterEqual((n - 1) / (times[-1] - times[0]), 0.9 * rate)

    def test_max_sts_inflight_is_respected(self):
        cap, n, delay = 4, 60, 0.25
        state = {"now": 0, "peak": 0}
        lock = threading.Lock()
        handler = self.proxy.server.RequestHandlerClass
        plain_forward = handler._forward

        def counted(h, method, body, exchange=False):
            if not exchange:
                return plain_forward(h, method, body, exchange)
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            try:
                time.sleep(delay)       # STS takes its time
                return plain_forward(h, method, body, exchange)
            finally:
                with lock:
                    state["now"] -= 1

        handler._forward = counted
        try:
            roles = {"q%02d" % i: "subject = q%02d\n" % i for i in range(n)}
            m = self.mount(roles=roles, defaults="max_sts_rate = 0\nmax_sts_inflight = %d\n"
                                                   "wait_timeout = 60\n" % cap)
            t0 = time.monotonic()
            got = read_all(m, list(roles))
            took = time.monotonic() - t0
        finally:
            handler._forward = plain_forward
        self.assertFalse([r for r, t in got.items() if isinstance(t, OSError)])
        self.assertEqual(state["peak"], cap, "requests in flight at once, at the proxy")
        self.assertGreaterEqual(took, n / cap * delay - 0.1)


class LocalStsCase(unittest.TestCase):
    """A local STS (local_sts.py) per test, a temp dir, a key, mounts that
    are always unmounted and a STS that is always stopped."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="credfs-fleet-")
        self.key = keygen(os.path.join(self.dir, "signer.pem"))
        self.mounts = []
        self.sts = None

    def tearDown(self):
        for m in reversed(self.mounts):
            m.stop()
        if self.sts:
            self.sts.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_sts(self, **kw):
        self.sts = LocalSts(**kw)
        return self.sts

    def text(self, defaults, roles, role_extra=""):
        t = ("[credfs]\nregion = ap-northeast-1\nsts_endpoint = %s\n%s\n"
             "[signer]\nkey = %s\nissuer = https://oidc.example.com\n\n"
             % (self.sts.url, defaults, self.key))
        for r in roles:
            t += ("[role %s]\nrole_arn = %s\nsubject = system:serviceaccount:fleet:%s\n%s\n"
                  % (r, arn(r), r, role_extra))
        return t

    def mount(self, text, name="mnt"):
        cfg = write_config(os.path.join(self.dir, name + ".conf"), text)
        m = Mount(cfg, os.path.join(self.dir, name))
        self.mounts.append(m)
        return m.start()

    def reload(self, m, text):
        """Writes text as m's configuration, sends SIGHUP, waits for it."""
        before = m.output().count("reloaded ")
        write_config(m.config, text)
        m.proc.send_signal(1)
        self.assertTrue(wait_for(lambda: m.output().count("reloaded ") > before, 10),
                        "reload not done:\n" + m.output()[-2000:])

    def unmount(self, m):
        m.stop()
        self.mounts.remove(m)


class TestQueueAndThrottling(LocalStsCase):

    def test_a_cold_read_jumps_the_queue_of_background_renewals(self):
        """20 roles past their refresh point wait behind max_sts_rate = 1 (20
        s of background renewals); a role nobody read yet is served at the
        next token, not after them."""
        self.start_sts(lifetime=40)
        roles = ["bg%02d" % i for i in range(20)]
        sched = "refresh_fraction = 0.1\nmin_validity = 1\nwait_timeout = 30\n"
        m = self.mount(self.text("max_sts_rate = 0\n" + sched, roles + ["cold"]))
        self.assertFalse([r for r, t in read_all(m, roles).items() if isinstance(t, OSError)])
        self.reload(m, self.text("max_sts_rate = 1\n" + sched, roles + ["cold"]))
        toucher = Toucher(m, roles)
        toucher.start()
        try:
            # Refresh points (4 s in) pass; the touches queue renewals.
            self.assertTrue(wait_for(lambda: (metric(m, "credfs_requests_queued") or 0) >= 15,
                                     20, 0.05), "no queue of background renewals")
            t0 = time.monotonic()
            queued = metric(m, "credfs_requests_queued")
            self.assertIn("aws_session_token", m.read("cold", "credentials"))
            took = time.monotonic() - t0
        finally:
            toucher.stop()
        # FIFO, it would have waited about `queued` seconds at one a second.
        self.assertLess(took, 3.0, "the cold read waited behind %d renewals" % queued)
        reqs = self.sts.snapshot()
        cold_at = [r.arrived for r in reqs if r.role_arn == arn("cold")]
        self.assertEqual(len(cold_at), 1)
        ahead = sum(1 for r in reqs if r.role_arn != arn("cold") and t0 <= r.arrived < cold_at[0])
        self.assertLessEqual(ahead, 2, "renewals sent before the cold read, of %d queued"
                             % queued)
        # Background renewals kept their credentials meanwhile.
        self.assertEqual(toucher.failed, [])

    def test_throttling_slows_the_daemon_then_recovers_and_serves_the_last_good(self):
        """Throttling (400), HTTP 429 and 503, each answering every request
        for a while: the daemon-wide rate drops (credfs_request_rate_limit),
        reads keep getting the last good credentials of their own role, and
        once STS answers again the rate climbs back to max_sts_rate."""
        self.start_sts(lifetime=120)
        roles = ["t%d" % i for i in range(6)]
        m = self.mount(self.text("max_sts_rate = 20\nrefresh_fraction = 0.05\n"
                                 "min_validity = 1\nwait_timeout = 10\n", roles))
        first = {r: access_key(t) for r, t in read_all(m, roles).items()}
        self.assertEqual(metric(m, "credfs_request_rate_limit"), 20)
        toucher = Toucher(m, roles)
        toucher.start()
        lows = {}
        try:
            # Renewals start 6 s in (refresh_fraction 0.05 of 120 s).
            for kind, status, code in (("throttling", 400, "Throttling"),
                                       ("429", 429, "TooManyRequestsException"),
                                       ("503", 503, "ServiceUnavailable")):
                before = metric(m, "credfs_throttled_total")
                self.sts.fail_always(status, code, "Rate exceeded")
                self.assertTrue(wait_for(
                    lambda: metric(m, "credfs_throttled_total") > before and
                    metric(m, "credfs_request_rate_limit") <= 10, 20, 0.1),
                    "%s did not slow the daemon down" % kind)
                wait_for(lambda: metric(m, "credfs_request_rate_limit") <= 2.5, 5, 0.2)
                lows[kind] = metric(m, "credfs_request_rate_limit")
                self.sts.heal()
                # Recovering: a tenth more per quiet second.
                low = lows[kind]
                self.assertTrue(wait_for(lambda: metric(m, "credfs_request_rate_limit")
                                         >= min(20, low * 1.5), 8, 0.2),
                                "%s: the rate did not recover" % kind)
            self.assertTrue(wait_for(lambda: metric(m, "credfs_request_rate_limit") == 20,
                                     45, 0.5), "not back at max_sts_rate")
        finally:
            toucher.stop()
        self.assertEqual(toucher.failed, [], "reads failed while throttled")
        # Every key served is one STS handed out for that very role: the
        # last good ones while throttled, nothing from another identity.
        issued = {}
        for r in self.sts.snapshot():
            if r.outcome == "ok":
                issued.setdefault(r.role_arn, set()).add(r.akid)
        self.assertEqual({r.action for r in self.sts.snapshot()},
                         {"AssumeRoleWithWebIdentity"})
        for role in roles:
            keys = {k for _, k in toucher.seen[role]} | {first[role]}
            self.assertTrue(keys <= issued[arn(role)], role)
        throttled = self.sts.count("throttled") + self.sts.count("fault")
        self.assertGreater(throttled, 0)
        self.assertTrue(all(v <= 10 for v in lows.values()), lows)
        self.assertIn("Throttling", m.output())


class TestJitterAndBehind(LocalStsCase):

    def next_refreshes(self, host, roles, life, name):
        """Starts a daemon with host_id = host, reads every role, returns
        {role: (last_refresh, expiration, next_refresh)} from status, and
        unmounts."""
        m = self.mount(self.text("host_id = %s\nmax_sts_rate = 0\nrefresh_jitter = 0.5\n"
                                 "refresh_fraction = 0.8\nmin_validity = 900\n"
                                 "duration_seconds = %d\n" % (host, life), roles),
                       name=name)
        got = read_all(m, roles)
        self.assertFalse([r for r, t in got.items() if isinstance(t, OSError)])
        out = {}
        for r in roles:
            st = m.status(r)
            out[r] = (rfc3339(st["last_refresh"]), rfc3339(st["expiration"]),
                      rfc3339(st["next_refresh"]))
        self.unmount(m)
        return out

    def test_jitter_stays_within_its_bounds_and_belongs_to_the_host(self):
        life = 3600
        self.start_sts(lifetime=life)
        roles = ["j%03d" % i for i in range(200)]
        runs = {}
        for i, (label, host) in enumerate((("a", "rack-1/host-a"), ("b", "rack-1/host-b"),
                                           ("a again", "rack-1/host-a"))):
            runs[label] = self.next_refreshes(host, roles, life, "j%d" % i)
        offsets = {}
        for label, host in (("a", "rack-1/host-a"), ("b", "rack-1/host-b"),
                            ("a again", "rack-1/host-a")):
            offsets[label] = {}
            for r, (obtained, expires, point) in runs[label].items():
                lifetime = expires - obtained
                self.assertAlmostEqual(lifetime, life, delta=2)
                base = min(obtained + int(lifetime * 0.8), expires - 900)
                # Never later than the min_validity rule, never earlier than
                # jitter allows, and where engine_refresh_point puts it.
                self.assertLessEqual(point, base, r)
                self.assertLessEqual(point, expires - 900, r)
                self.assertGreaterEqual(point, base - lifetime * 0.5 - 1, r)
                self.assertAlmostEqual(point, base - int(lifetime * 0.5 * jitter_u(host, r)),
                                       delta=1, msg=r)
                offsets[label][r] = (base - point) / lifetime
        spread = sorted(offsets["a"].values())
        # Spread over the window [0, 0.5): every quarter of it used.
        quarters = [sum(1 for o in spread if q * 0.125 <= o < (q + 1) * 0.125) for q in range(4)]
        self.assertTrue(all(q >= 20 for q in quarters), quarters)
        # The same host after a restart: the same points (within a second).
        self.assertTrue(all(abs(offsets["a"][r] - offsets["a again"][r]) * life <= 1
                            for r in roles))
        # Another host: other points for nearly every role.
        differ = sum(1 for r in roles if abs(offsets["a"][r] - offsets["b"][r]) * life > 2)
        self.assertGreaterEqual(differ, 190)

    def test_a_limit_too_low_to_keep_up_degrades_visibly(self):
        """max_sts_rate = 0.2 for 20 roles renewing every couple of seconds:
        renewals queue past their min_validity point, and status
        (waiting.behind), the log and credfs_renewals_behind say so."""
        self.start_sts(lifetime=30)
        roles = ["b%02d" % i for i in range(20)]
        sched = "refresh_fraction = 0.1\nmin_validity = 24\nwait_timeout = 5\n"
        m = self.mount(self.text("max_sts_rate = 0\n" + sched, roles))
        self.assertFalse([r for r, t in read_all(m, roles).items() if isinstance(t, OSError)])
        self.reload(m, self.text("max_sts_rate = 0.2\n" + sched, roles))
        toucher = Toucher(m, roles, every=0.3)
        toucher.start()
        try:
            # Due 3 s in, past the min_validity point 6 s in: at 0.2 per
            # second only one or two are renewed by then.
            self.assertTrue(wait_for(lambda: (metric(m, "credfs_renewals_behind") or 0) > 0,
                                     20, 0.2), "credfs_renewals_behind stayed 0")
            statuses = [m.status(r) for r in roles]
            behind = [st for st in statuses if (st.get("waiting") or {}).get("behind")]
        finally:
            toucher.stop()
        self.assertTrue(behind, "no status says behind")
        self.assertTrue(all(st["waiting"]["on"] == "limiter" for st in behind))
        self.assertTrue(all(st["state"] in ("valid", "renewing") for st in behind))
        self.assertIn("renewals cannot keep up", m.output())
        self.assertIn("max_sts_rate 0.2", m.output())
        # Still serving what is valid: behind is not broken.
        self.assertEqual(toucher.failed, [])


if __name__ == "__main__":
    unittest.main()
