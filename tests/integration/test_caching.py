"""Freshness under kernel caching: the kernel keeps the files' content and
credfs pushes invalidations, so these tests hammer the files across
renewals and expiries and check that every read is one complete, unexpired
document, that STS sees one call per renewal, and that idle roles cost
nothing.  Credentials live a few seconds (the proxy rewrites Expiration)."""
import calendar
import configparser
import errno
import json
import os
import threading
import time

from harness import CredfsTestCase
from sts_proxy import Fault

SHORT = ("duration_seconds = 900\nrefresh_fraction = 0.5\nmin_validity = 1\n"
         "wait_timeout = 5\n")


def parse_time(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


class Hammer:
    """Reader threads reading files of one role in a tight loop, checking
    each read on the spot."""

    def __init__(self, mount, role, threads, seconds):
        self.m = mount
        self.role = role
        self.errors = []            # descriptions of bad reads
        self.eio = 0
        self.reads = 0
        self.keys = set()
        self.lock = threading.Lock()
        self.stop_at = time.time() + seconds
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def check(self, name, text, now):
        if name == "process.json":
            doc = json.loads(text)      # complete JSON, or it raises
            if doc["Version"] != 1 or not doc["SessionToken"]:
                raise ValueError("incomplete process.json")
            if parse_time(doc["Expiration"]) <= now:
                raise ValueError("expired: %s at %.1f" % (doc["Expiration"], now))
            return doc["AccessKeyId"]
        ini = configparser.ConfigParser()
        ini.read_string(text)
        d = ini["default"]
        if not (d["aws_access_key_id"] and d["aws_secret_access_key"] and d["aws_session_token"]):
            raise ValueError("incomplete credentials")
        if "\0" in text:
            raise ValueError("NUL bytes in credentials")
        return d["aws_access_key_id"]

    def run(self, i):
        name = "process.json" if i % 2 else "credentials"
        path = self.m.path(self.role, name)
        while time.time() < self.stop_at:
            try:
                with open(path) as f:
                    text = f.read()
                key = self.check(name, text, time.time())
                with self.lock:
                    self.reads += 1
                    self.keys.add(key)
            except OSError as e:
                with self.lock:
                    if e.errno == errno.EIO:
                        self.eio += 1
                    else:
                        self.errors.append(repr(e))
            except Exception as e:      # noqa: BLE001 - a bad document
                with self.lock:
                    self.errors.append("%s: %r" % (name, e))

    def go(self):
        for t in self.threads:
            t.start()
        for t in self.threads:
            t.join()
        return self


class TestFreshness(CredfsTestCase):
    def test_renewals_under_a_tight_read_loop(self):
        self.proxy.lifetime = 6
        m = self.mount(defaults=SHORT)
        m.read("app", "credentials")
        h = Hammer(m, "app", threads=16, seconds=13).go()
        self.assertEqual(h.errors[:5], [])
        self.assertEqual(h.eio, 0, "a reader waited for STS and failed")
        self.assertGreater(h.reads, 1000)
        # Renewed in the background about every 3 s while being read.
        self.assertGreaterEqual(len(h.keys), 3)
        st = m.status("app")
        # One STS call per renewal: every call produced credentials someone saw
        # (the first read's key included).
        self.assertEqual(self.proxy.count(), st["renewals"])
        self.assertLessEqual(st["renewals"], len(h.keys) + 1)

    def test_64_readers_one_call_per_renewal(self):
        self.proxy.lifetime = 6
        m = self.mount(defaults=SHORT)
        h = Hammer(m, "app", threads=64, seconds=8).go()
        self.assertEqual(h.errors[:5], [])
        self.assertEqual(h.eio, 0)
        st = m.status("app")
        self.assertGreaterEqual(st["renewals"], 2)
        self.assertEqual(self.proxy.count(), st["renewals"])
        self.assertEqual(st["sts_calls"], st["renewals"])

    def test_idle_role_is_not_renewed(self):
        self.proxy.lifetime = 4
        m = self.mount(defaults=SHORT)
        first = m.read("app", "credentials")
        time.sleep(5.5)
        # Nobody read it: no renewal, and what expired is not shown.
        self.assertEqual(self.proxy.count(), 1)
        self.assertIn(m.status("app")["state"], ("expired", "idle"))
        again = m.read("app", "credentials")
        self.assertNotEqual(first, again)
        self.assertEqual(self.proxy.count(), 2)

    def test_expired_content_is_never_served_when_sts_fails(self):
        self.proxy.lifetime = 4
        m = self.mount(defaults=SHORT)
        m.read("app", "process.json")
        self.proxy.fail_always(Fault(status=403, code="AccessDenied", message="no"))
        h = Hammer(m, "app", threads=8, seconds=6).go()
        self.assertEqual(h.errors[:5], [])
        self.assertGreater(h.reads, 0)      # the last good ones, until they expired
        self.assertGreater(h.eio, 0)        # then EIO
        st = m.status("app")
        self.assertEqual(st["last_error"]["code"], "AccessDenied")

    def test_status_follows_renewals(self):
        self.proxy.lifetime = 4
        m = self.mount(defaults=SHORT)
        m.read("app", "credentials")
        before = m.status("app")
        self.assertEqual(before["renewals"], 1)
        time.sleep(2.5)                     # past the refresh point
        m.read("app", "credentials")        # starts the renewal in the background
        deadline = time.time() + 5
        while m.status("app")["renewals"] < 2 and time.time() < deadline:
            time.sleep(0.1)
        after = m.status("app")
        self.assertEqual(after["renewals"], 2)
        self.assertNotEqual(after["expiration"], before["expiration"])
        self.assertEqual(m.read("app", "expiry"), after["expiration"] + "\n")

    def test_sizes_are_exact_once_read(self):
        m = self.mount()
        text = m.read("app", "credentials")
        self.assertEqual(os.stat(m.path("app", "credentials")).st_size, len(text))
        self.assertEqual(os.stat(m.path("app", "token")).st_size, len(m.read("app", "token")))
        self.assertEqual(os.stat(m.path("app", "expiry")).st_size, 21)
