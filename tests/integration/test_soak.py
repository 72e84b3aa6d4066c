"""Soak: many renewals of credentials that last a few seconds, under
concurrent readers.  Every read is a complete document whose expiry is
still ahead, no read fails, and the daemon's RSS and open file descriptors
stay flat.  CI runs about 100 renewals; scripts/soak runs 1000
(CREDFS_SOAK_RENEWALS) and prints the figures."""
import configparser
import datetime
import json
import os
import threading
import time

from harness import CredfsTestCase, fd_count, rss_kb, sanitized, worker_of

RENEWALS = int(os.environ.get("CREDFS_SOAK_RENEWALS", "100"))
ROLES = 10
READERS = 6
LIFETIME = 4            # seconds the forwarded credentials last


def parse_expiration(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class TestSoak(CredfsTestCase):
    def check_process_json(self, text, t_start):
        """None if text is a complete credential_process document whose
        Expiration was ahead when the read began, else what is wrong
        (never the secrets themselves)."""
        try:
            doc = json.loads(text)
        except ValueError:
            return "process.json is not a complete JSON document (%d bytes)" % len(text)
        if sorted(doc) != ["AccessKeyId", "Expiration", "SecretAccessKey", "SessionToken",
                           "Version"] or not all(doc.values()):
            return "process.json lacks a field"
        if parse_expiration(doc["Expiration"]) <= t_start:
            return "process.json served expired credentials (%s, read at %.1f)" % (
                doc["Expiration"], t_start)
        return None

    def check_credentials(self, text):
        ini = configparser.ConfigParser()
        try:
            ini.read_string(text)
            d = ini["default"]
        except (configparser.Error, KeyError):
            return "credentials is not a complete INI document (%d bytes)" % len(text)
        if sorted(d) != ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"] \
                or not all(d.values()):
            return "credentials lacks a key"
        return None

    def test_renewals_under_concurrent_readers(self):
        self.proxy.lifetime = LIFETIME
        roles = ["r%d" % i for i in range(ROLES)]
        m = self.mount(roles={r: "subject = %s\n" % r for r in roles},
                       defaults="refresh_fraction = 0.25\nmin_validity = 1\nwait_timeout = 5\n")
        pid = worker_of(m.proc.pid)     # the process that serves
        idle_fds = fd_count(pid)        # before any STS call
        problems, reads = [], [0] * READERS
        samples = []        # (renewals so far, RSS, fds)
        stop = threading.Event()

        def reader(n):
            i = n
            while not stop.is_set() and len(problems) < 10:
                role = roles[i % ROLES]
                i += 1
                try:
                    t_start = time.time()
                    p = self.check_process_json(m.read(role, "process.json"), t_start)
                    p = p or self.check_credentials(m.read(role, "credentials"))
                    env = m.read(role, "env")
                    if not env.endswith("\n") or env.count("AWS_") < 3:
                        p = p or "env is not complete"
                except OSError as e:
                    p = "a read failed: %s" % os.strerror(e.errno)
                if p:
                    problems.append("%s: %s" % (role, p))
                reads[n] += 1

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        deadline = t0 + max(120, RENEWALS * 0.5)
        try:
            # Warm up: every role renewed at least once before the baseline.
            while self.proxy.count() < 2 * ROLES and time.monotonic() < deadline:
                time.sleep(0.1)
            base_calls = self.proxy.count()
            base_rss, base_fds = rss_kb(pid), fd_count(pid)
            while (self.proxy.count() - base_calls < RENEWALS and not problems
                   and time.monotonic() < deadline):
                time.sleep(0.2)
                samples.append((self.proxy.count() - base_calls, rss_kb(pid), fd_count(pid)))
                if os.environ.get("CREDFS_SOAK_DEBUG") and len(samples) % 10 == 0:
                    print(samples[-1], sorted(os.readlink("/proc/%d/fd/%s" % (pid, f))
                                              for f in os.listdir("/proc/%d/fd" % pid)))
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        elapsed = time.monotonic() - t0
        renewals = self.proxy.count() - base_calls
        end_rss, end_fds = rss_kb(pid), fd_count(pid)
        print("soak: %d renewals (%d roles, %ds credentials) in %.0f s, %d reads, "
              "RSS %d -> %d kB (max %d), fds %d -> %d (max %d)"
              % (renewals, ROLES, LIFETIME, elapsed, sum(reads), base_rss, end_rss,
                 max([end_rss] + [r for _, r, _ in samples]), base_fds, end_fds,
                 max([end_fds] + [f for _, _, f in samples])), flush=True)
        self.assertEqual(problems, [])
        self.assertGreaterEqual(renewals, RENEWALS, "too few renewals before the deadline")
        self.assertIsNone(m.proc.poll(), "the daemon died")
        # Every exchange succeeded and was counted by credfs too.
        # (Renewals the readers started last may still be ending.)
        deadline = time.monotonic() + 5
        while True:
            calls = sum(m.status(r)["sts_calls"] for r in roles)
            if calls == self.proxy.count() or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(calls, self.proxy.count())
        # Descriptors beyond those of the idle daemon: HTTP handles of at
        # most 3 descriptors each (a connection and the resolver's pair),
        # one per renewal in flight (at most one per role), 8 kept in the
        # pool after.  Bounded, however many renewals there were.
        most_fds = max([base_fds, end_fds] + [f for _, _, f in samples])
        self.assertLessEqual(most_fds, idle_fds + 3 * max(ROLES, 8),
                             "file descriptors leak: %d -> %d" % (idle_fds, most_fds))
        self.assertLessEqual(fd_count(pid), idle_fds + 3 * 8, "file descriptors leak")
        if not sanitized(pid):      # ASan's quarantine grows RSS by design
            self.assertLess(end_rss - base_rss, 4096, "RSS grew by %d kB" % (end_rss - base_rss))
