"""STS misbehaving in every way we know of, against a real mount: each fault
is retried or not as the AWS SDKs do, the last good
credentials are served until they expire and EIO comes after, status names
the error, credfs recovers once STS is healthy again, the mount keeps
answering throughout and the daemon never dies.  Also TLS: a certificate
nobody vouches for is refused, and ca_file makes it trusted."""
import configparser
import errno
import os
import threading
import time

from harness import ACCOUNT, CredfsTestCase, Moto, rss_kb, worker_of
from sts_proxy import BILLION_LAUGHS, Fault, StsProxy, make_tls_cert

SUCCESS_XML = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>ASIAFAKEFAKEFAKEFAKE</AccessKeyId>
<SecretAccessKey>never-served-because-the-body-is-cut-short</SecretAccessKey>
<SessionToken>FwoGZXIvYXdzEBYaDFAKEFAKEFAKE</SessionToken>
<Expiration>2030-01-01T00:00:00Z</Expiration>
</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>
"""

RETRY = 3   # attempts for a retryable error (the SDKs' standard mode)
FINAL = 1

# role name -> (fault, the code status must show, attempts per renewal)
FAULTS = {
    "http500": (Fault(status=500, code="InternalFailure", message="internal error"),
                "InternalFailure", RETRY),
    "idperror": (Fault(status=400, code="IDPCommunicationError",
                       message="could not reach the issuer"), "IDPCommunicationError", RETRY),
    "hang": (Fault(kind="hang", seconds=3.5), "Transport", RETRY),
    "reset": (Fault(kind="reset"), "Transport", RETRY),
    "cutoff": (Fault(kind="truncated", status=200, message=SUCCESS_XML), "Transport", RETRY),
    "garbage": (Fault(kind="raw", status=200, message="\x00\x01 not xml at all \xff"),
                "Malformed", FINAL),
    "halfxml": (Fault(kind="raw", status=200, message=SUCCESS_XML[:len(SUCCESS_XML) // 2]),
                "Malformed", FINAL),
    "badtoken": (Fault(status=400, code="InvalidIdentityToken",
                       message="Couldn't retrieve verification key from your identity provider"),
                 "InvalidIdentityToken", FINAL),
    "denied": (Fault(status=403, code="AccessDenied", message="Not authorized"),
               "AccessDenied", FINAL),
    "expired": (Fault(status=400, code="ExpiredTokenException", message="Token is expired"),
                "ExpiredTokenException", FINAL),
    "huge": (Fault(kind="raw", status=200, message="<a>" + "x" * (1 << 20) + "</a>"),
             "Malformed", FINAL),
    "laughs": (Fault(kind="raw", status=200, message=BILLION_LAUGHS), "Malformed", FINAL),
}

# Answers that mean "slow down": they slow the whole daemon down (the
# limiter halves its rate), so each is tried in a daemon of its own.
THROTTLING = {
    "http503": (Fault(kind="raw", status=503, message="<html>Service Unavailable</html>"),
                "HTTP503", RETRY),
    "throttling": (Fault(status=400, code="Throttling", message="Rate exceeded"),
                   "Throttling", RETRY),
    "throttled": (Fault(status=400, code="RequestLimitExceeded", message="slow down"),
                  "RequestLimitExceeded", RETRY),
}

LIFETIME = 14           # seconds the forwarded credentials last
WAIT_TIMEOUT = 2


def arn(name):
    return "arn:aws:iam::%s:role/%s-role" % (ACCOUNT, name)


def access_key(m, role):
    """The access key id of role's credentials file; AssertionError (with
    nothing of the file in it: it holds secrets) if it is not a complete
    document, OSError if it cannot be read."""
    text = m.read(role, "credentials")
    ini = configparser.ConfigParser()
    try:
        ini.read_string(text)
        return ini["default"]["aws_access_key_id"]
    except (configparser.Error, KeyError):
        raise AssertionError("credentials of %s are not a complete document (%d bytes)"
                             % (role, len(text))) from None


class TestFaults(CredfsTestCase):
    def mount_short_lived(self, roles):
        self.proxy.lifetime = LIFETIME
        return self.mount(roles={r: "subject = %s\n" % r for r in roles},
                          defaults="wait_timeout = %d\nrefresh_fraction = 0.5\n"
                                   "min_validity = 1\n" % WAIT_TIMEOUT)

    def watch_mount(self, m, roles, stop, worst):
        """Until stop is set: the rest of the mount answers at once."""
        while not stop.is_set():
            t0 = time.monotonic()
            os.listdir(m.mnt)
            m.read("keys.json")
            for r in roles:
                m.status(r)
            worst.append(time.monotonic() - t0)
            time.sleep(0.2)

    def lifecycle(self, m, role, fault, code, attempts, report, throttled=False):
        """One role through a fault: good, failing while valid, expired,
        healed.  Appends problems to report (threads cannot assert).
        throttled: the fault asks for slowing down, so the limiter spaces
        the attempts by about a second more."""
        def check(cond, what):
            if not cond:
                report.append("%s: %s" % (role, what))
            return cond

        first = access_key(m, role)
        # After the read: the credentials were received just before, so the
        # refresh point is at most LIFETIME / 2 from here.
        t0 = time.monotonic()
        self.proxy.fail_role(arn(role), fault)
        # Past the refresh point: the old credentials are served at once
        # while the renewal fails in the background.
        time.sleep(max(0, t0 + LIFETIME / 2 + 1 - time.monotonic()))
        t1 = time.monotonic()
        check(access_key(m, role) == first, "old credentials not served during renewal")
        check(time.monotonic() - t1 < 1, "a read waited on a failing STS")
        deadline = time.monotonic() + 15
        st = m.status(role)
        while st["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
            st = m.status(role)
        if not check(st["last_error"] is not None, "renewal never failed: %r" % st):
            return
        check(st["last_error"]["code"] == code,
              "status code %r, expected %r" % (st["last_error"]["code"], code))
        # st["sts_calls"] counts credfs's HTTP attempts.  The proxy may see
        # one more per attempt when a reused connection was reset: libcurl
        # then re-sends the request once on a fresh connection.
        check(st["sts_calls"] == 1 + attempts, "%d attempts for one renewal, expected %d"
              % (st["sts_calls"] - 1, attempts))
        n = self.proxy.count(role_arn=arn(role)) - 1
        check(attempts <= n <= (2 * attempts if fault.kind == "reset" else attempts),
              "the proxy saw %d requests for %d attempts" % (n, attempts))
        times = self.proxy.attempt_times(arn(role))[1:1 + attempts]
        if code != "Transport" and len(times) == 3:
            # Full jitter: retry n waits rand * min(2^(n-1), 20) s, and
            # after a throttled answer the limiter's rate of 1 a second.
            slow = 1.1 if throttled else 0
            check(times[1] - times[0] < 1.5 + slow, "first backoff %.2f s" % (times[1] - times[0]))
            check(times[2] - times[1] < 2.5 + slow, "second backoff %.2f s" % (times[2] - times[1]))
            if throttled:
                check(times[1] - times[0] > 0.8, "a throttled answer did not slow the daemon down")
        if time.monotonic() < t0 + LIFETIME - 3:
            check(access_key(m, role) == first, "last good credentials not served")
            check(m.status(role)["state"] in ("stale", "renewing"),
                  "state %r while failing" % m.status(role)["state"])
        # Expired: EIO, within wait_timeout, and status says why.
        time.sleep(max(0, t0 + LIFETIME + 0.5 - time.monotonic()))
        t2 = time.monotonic()
        try:
            access_key(m, role)
            check(False, "expired credentials were served")
        except OSError as e:
            check(e.errno == errno.EIO, "errno %d after expiry" % e.errno)
        check(time.monotonic() - t2 < WAIT_TIMEOUT + 1, "the failing read took too long")
        st = m.status(role)
        check(st["state"] in ("error", "renewing"), "state %r after expiry" % st["state"])
        check(st["last_error"] is not None and st["last_error"]["code"] == code,
              "status after expiry: %r" % (st["last_error"],))
        # Healed: back within the hold-off (at most 8 s) plus a renewal.
        self.proxy.heal_role(arn(role))
        deadline = time.monotonic() + 20
        while True:
            try:
                fresh = access_key(m, role)
                break
            except OSError:
                if time.monotonic() > deadline:
                    check(False, "no recovery within 20 s of STS healing")
                    return
                time.sleep(0.25)
        check(fresh != first, "recovered credentials are the old ones")
        # status follows within moments (its cached copy is dropped
        # asynchronously, docs/caching.md).
        deadline = time.monotonic() + 2
        st = m.status(role)
        while st["state"] != "valid" and time.monotonic() < deadline:
            time.sleep(0.05)
            st = m.status(role)
        check(st["state"] == "valid" and st["last_error"] is None,
              "status after recovery: %s %r" % (st["state"], st["last_error"]))

    def run_lifecycles(self, mounts, faults, throttled):
        """The lifecycle of every fault at once, role r in mounts[r]."""
        report, worst = [], []
        stop = threading.Event()
        watchers = [threading.Thread(target=self.watch_mount,
                                     args=(m, [r for r in faults if mounts[r] is m],
                                           stop, worst))
                    for m in set(mounts.values())]
        for w in watchers:
            w.start()
        threads = []
        for role, (fault, code, attempts) in faults.items():
            def run(role=role, fault=fault, code=code, attempts=attempts):
                try:
                    self.lifecycle(mounts[role], role, fault, code, attempts,
                                   report, throttled)
                except Exception as e:      # noqa: BLE001 - reported below
                    # Only the kind of error: its text could quote a file.
                    report.append("%s: %s %s" % (role, type(e).__name__,
                                                 getattr(e, "errno", "") or ""))
            threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        stop.set()
        for w in watchers:
            w.join(10)
        self.maxDiff = None
        self.assertEqual(report, [])
        self.assertTrue(worst, "the mount was never checked")
        self.assertLess(max(worst), 1.0, "the mount stopped answering while STS failed")
        for m in set(mounts.values()):
            self.assertIsNone(m.proc.poll(), "the daemon died")

    def test_every_fault_retry_serve_expire_recover(self):
        m = self.mount_short_lived(FAULTS)
        self.run_lifecycles({r: m for r in FAULTS}, FAULTS, False)
        for code in ("InvalidIdentityToken", "Malformed", "Transport"):
            self.assertIn(code, m.output())

    def test_throttling_slows_the_daemon_and_is_not_failure(self):
        """Each throttling fault in a daemon of its own: retried (3
        attempts), spaced by the limiter, the last good credentials served
        until they expire, recovery after."""
        self.proxy.lifetime = LIFETIME
        mounts = {r: self.mount(roles={r: "subject = %s\n" % r}, name=r,
                                defaults="wait_timeout = %d\nrefresh_fraction = 0.5\n"
                                         "min_validity = 1\n" % WAIT_TIMEOUT)
                  for r in THROTTLING}
        self.run_lifecycles(mounts, THROTTLING, True)
        self.assertIn("Throttling", mounts["throttling"].output())

    def test_oversized_and_malicious_answers_are_bounded(self):
        m = self.mount(roles={"huge": "subject = h\n", "laughs": "subject = l\n"})
        for role in ("huge", "laughs"):
            self.proxy.fail_role(arn(role), FAULTS[role][0])
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                m.read(role, "credentials")
            self.assertEqual(cm.exception.errno, errno.EIO)
            self.assertLess(time.monotonic() - t0, 3)
            st = m.status(role)
            self.assertEqual(st["last_error"]["code"], "Malformed")
            self.assertEqual(self.proxy.count(role_arn=arn(role)), 1)
        self.assertIsNone(m.proc.poll())
        rss = rss_kb(worker_of(m.proc.pid))
        # Nothing expanded a billion entities or kept a megabyte per answer.
        self.assertLess(rss, 512 * 1024, "daemon RSS %d kB" % rss)

    def test_failed_renewals_while_valid_do_not_hammer_sts(self):
        """A read loop against valid credentials whose renewal keeps failing
        starts a new exchange only after the hold-off."""
        self.proxy.lifetime = 12
        m = self.mount(defaults="refresh_fraction = 0.1\nmin_validity = 1\n")
        first = access_key(m, "app")
        self.proxy.fail_always(Fault(status=403, code="AccessDenied", message="no"))
        time.sleep(1.5)
        t_end = time.monotonic() + 4
        reads = 0
        while time.monotonic() < t_end:
            self.assertEqual(access_key(m, "app"), first)
            reads += 1
        self.assertGreater(reads, 50)
        # Hold-offs of 1, 2, (4) s: at most 3 renewals in 4 s, not one per read.
        self.assertLessEqual(self.proxy.count() - 1, 3)
        self.assertEqual(m.status("app")["state"], "stale")


class TestTls(CredfsTestCase):
    """The proxy serves TLS with a self-signed certificate for 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.certdir = tempfile.mkdtemp(prefix="credfs-tls-")
        cls.cert, cls.certkey = make_tls_cert(cls.certdir)
        cls.moto = Moto()
        cls.proxy = StsProxy(cls.moto.port, tls=(cls.cert, cls.certkey)).start()

    @classmethod
    def tearDownClass(cls):
        import shutil
        super().tearDownClass()
        shutil.rmtree(cls.certdir, ignore_errors=True)

    def test_untrusted_certificate_is_refused_without_retry(self):
        self.assertTrue(self.proxy.url.startswith("https://127.0.0.1:"))
        # The system's CA bundle is parsed for the handshake: seconds under
        # AddressSanitizer, so the wait is long enough for the verdict.
        m = self.mount(defaults="wait_timeout = 30\n")
        with self.assertRaises(OSError) as cm:
            m.read("app", "credentials")
        self.assertEqual(cm.exception.errno, errno.EIO)
        st = m.status("app")
        self.assertEqual(st["last_error"]["code"], "TLS")
        self.assertEqual(self.proxy.count(), 0, "a request went over an unverified TLS session")
        self.assertEqual(self.proxy.connections, 1, "a TLS failure was retried")
        self.assertIsNone(m.proc.poll())

    def test_ca_file_makes_the_certificate_trusted(self):
        m = self.mount(defaults="ca_file = %s\n" % self.cert)
        self.assertTrue("aws_session_token" in m.read("app", "credentials"), "no credentials")
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)
        self.assertEqual(m.status("app")["state"], "valid")
