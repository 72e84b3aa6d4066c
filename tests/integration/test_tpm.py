"""Signing keys inside a TPM, against a software TPM (swtpm) that each test
class starts on loopback, its state in a temporary directory, and stops at
the end whatever happens.  credfs reaches it through TPM2OPENSSL_TCTI, as
the tpm2-openssl provider does; no /dev/tpm* is needed.

keygen --tpm, tokens signed in the TPM verified with PyJWT against the
mount's keys.json, an STS exchange with such a token, rotation from a PEM
key to a TPM key with both published, the TPM stopped under load and
started again, credfs check with a key the TPM cannot load, and no TPM
object left behind by daemons that were killed."""
import base64
import calendar
import configparser
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import (AWS_CLI, CREDFS, SYSTEM_PYTHON, CredfsTestCase, Mount, clean_aws_env,
                     is_mounted, write_config)
from swtpm import Swtpm

HERE = os.path.dirname(os.path.abspath(__file__))
ISSUER = "https://oidc.example.com"
AUDIENCE = "sts.amazonaws.com"
SUBJECT = "system:serviceaccount:prod:app"
PEM_LABEL = "-----BEGIN TSS2 PRIVATE KEY-----"


def jwt_part(token, i):
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def read_errno(path):
    """0 and the content, or the errno of reading path."""
    try:
        with open(path) as f:
            return 0, f.read()
    except OSError as e:
        return e.errno, None


def access_key(text):
    ini = configparser.ConfigParser()
    ini.read_string(text)
    return ini["default"]["aws_access_key_id"]


def wait_for(predicate, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class TpmCase(CredfsTestCase):
    """A moto STS and its proxy (CredfsTestCase) and one swtpm per class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tpm_dir = tempfile.mkdtemp(prefix="credfs-swtpm-")
        try:
            cls.swtpm = Swtpm(os.path.join(cls.tpm_dir, "state")).start()
        except BaseException:
            shutil.rmtree(cls.tpm_dir, ignore_errors=True)
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.swtpm.stop()
        shutil.rmtree(cls.tpm_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.swtpm.running():
            self.swtpm.restart()
        self.env = dict(os.environ, TPM2OPENSSL_TCTI=self.swtpm.tcti)

    def credfs(self, *args, env=None, timeout=60):
        return subprocess.run([CREDFS] + list(args), env=env or self.env,
                              capture_output=True, text=True, timeout=timeout)

    def tpm_keygen(self, name, kind="ec"):
        path = os.path.join(self.dir, name)
        r = self.credfs("keygen", "--tpm", "--type", kind, path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return path

    def openssl_kid(self, key):
        """kid of a TPM-wrapped key as OpenSSL's tpm2 provider sees it, not
        as credfs computes it."""
        der = subprocess.run(["openssl", "pkey", "-provider", "tpm2", "-provider", "base",
                              "-in", key, "-pubout", "-outform", "DER"],
                             env=self.env, capture_output=True, timeout=60, check=True).stdout
        return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()

    def mount_tpm(self, text=None, name="mnt", env=None, **kw):
        """Like self.mount(), with the daemon pointed at the swtpm."""
        cfg = write_config(os.path.join(self.dir, name + ".conf"),
                           text or self.config_text(**kw))
        m = Mount(cfg, os.path.join(self.dir, name), env=env or self.env)
        self.mounts.append(m)
        return m.start()

    def verify(self, jwks_path, token_path):
        out = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "verify_jwt.py"), jwks_path,
                              token_path, ISSUER, AUDIENCE],
                             capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout + out.stderr

    def save(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def verified_claims(self, m, token, name):
        """Verifies token with PyJWT against m's keys.json; its claims."""
        jwks = self.save(name + ".jwks", m.read("keys.json"))
        rc, out = self.verify(jwks, self.save(name + ".jwt", token))
        self.assertEqual(rc, 0, "the token did not verify against keys.json: " + out[-300:] + repr(token[:80]) + repr(token[-40:]) + str(len(token)))
        return json.loads(out)


class TestTpmKeys(TpmCase):
    def test_keygen_writes_a_wrapped_key_0600_and_never_overwrites(self):
        for kind in ("ec", "rsa"):
            path = self.tpm_keygen("signer-%s.tpm" % kind, kind)
            st = os.stat(path)
            self.assertEqual(st.st_mode & 0o7777, 0o600)
            with open(path) as f:
                text = f.read()
            self.assertTrue(text.startswith(PEM_LABEL), "not a TPM-wrapped PEM key")
            self.assertNotIn("BEGIN PRIVATE KEY", text)
            self.assertNotIn("BEGIN EC PRIVATE KEY", text)
            # Never overwrites, and says so.
            r = self.credfs("keygen", "--tpm", "--type", kind, path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("never overwrites", r.stderr)
            with open(path) as f:
                self.assertEqual(f.read(), text)
        # The TPM made the keys: its provider reads their public halves.
        self.assertEqual(len(self.openssl_kid(path)), 43)
        # Nothing of the key generation stays loaded in the TPM.
        self.assertEqual(self.swtpm.transient_handles(), [])
        # Usage errors are caught before the TPM is asked.
        r = self.credfs("keygen", "--tpm", "--type", "rsa", "--bits", "4096",
                        os.path.join(self.dir, "big.tpm"))
        self.assertEqual(r.returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "big.tpm")))

    def test_keygen_without_a_tpm_fails_and_leaves_nothing(self):
        path = os.path.join(self.dir, "none.tpm")
        env = dict(self.env, TPM2OPENSSL_TCTI="swtpm:host=127.0.0.1,port=9")
        r = self.credfs("keygen", "--tpm", path, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the TPM did not answer", r.stderr)
        self.assertFalse(os.path.exists(path))

    def test_tokens_signed_in_the_tpm_verify_against_keys_json(self):
        for kind, alg in (("ec", "ES256"), ("rsa", "RS256")):
            key = self.tpm_keygen("signer-%s.tpm" % kind, kind)
            want_kid = self.openssl_kid(key)
            m = self.mount_tpm(key=key, name="mnt-" + kind)
            token = m.read("app", "token")
            out = self.verified_claims(m, token, kind)
            self.assertEqual(out["header"], {"alg": alg, "kid": want_kid, "typ": "JWT"})
            self.assertEqual(out["claims"]["sub"], SUBJECT)
            keys = json.loads(m.read("keys.json"))["keys"]
            self.assertEqual([k["kid"] for k in keys], [want_kid])
            disc = json.loads(m.read(".well-known", "openid-configuration"))
            self.assertEqual(disc["id_token_signing_alg_values_supported"], [alg])
            # credfs oidc publishes the same keys.json.
            site = os.path.join(self.dir, "site-" + kind)
            r = self.credfs("oidc", m.config, site)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(site, "keys.json")) as f:
                self.assertEqual(f.read(), m.read("keys.json"))
            # credfs check names the key.
            r = self.credfs("check", m.config)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("signer: %s key %s" % (alg, want_kid), r.stdout)
            m.stop()
        # The signing keys were flushed: the TPM holds nothing of credfs.
        self.assertEqual(self.swtpm.transient_handles(), [])

    def test_sts_exchange_with_a_tpm_signed_token(self):
        key = self.tpm_keygen("signer.tpm")
        m = self.mount_tpm(key=key)
        creds = m.read("app", "credentials")
        self.assertTrue(access_key(creds).startswith("ASIA"))
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(len(sent), 1)
        token = sent[0]["WebIdentityToken"]
        self.assertEqual(token, m.read("app", "token"))
        out = self.verified_claims(m, token, "sent")
        self.assertEqual(out["header"]["kid"], self.openssl_kid(key))
        # The credentials are real: the AWS CLI uses them against moto.
        env = clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("app", "credentials"),
                            AWS_CONFIG_FILE=m.path("app", "config"))
        r = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                            self.moto.url, "--output", "json"],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["Arn"],
                         "arn:aws:sts::123456789012:assumed-role/app-role/credfs-app")
        status = m.status("app")
        self.assertEqual(status["state"], "valid")
        self.assertIsNone(status["last_error"])

    def test_many_roles_sign_at_once_through_one_tpm(self):
        key = self.tpm_keygen("signer.tpm")
        roles = {"r%d" % i: "subject = sub-%d\n" % i for i in range(8)}
        m = self.mount_tpm(key=key, roles=roles)
        results = {}

        def read(role):
            results[role] = read_errno(m.path(role, "token"))

        threads = [threading.Thread(target=read, args=(r,)) for r in roles]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i, role in enumerate(sorted(roles)):
            rc, token = results[role]
            self.assertEqual(rc, 0, "reading %s/token failed: errno %d" % (role, rc))
            self.assertEqual(self.verified_claims(m, token, role)["claims"]["sub"],
                             "sub-%d" % i)
        self.assertEqual(self.swtpm.transient_handles(), [])


class TestTpmRotation(TpmCase):
    def kids(self, m):
        return [k["kid"] for k in json.loads(m.read("keys.json"))["keys"]]

    def test_rotation_from_a_pem_key_to_a_tpm_key_with_both_published(self):
        pem = self.key
        tpm = self.tpm_keygen("signer.tpm")
        tpm_kid = self.openssl_kid(tpm)
        # Step 1, publish: the PEM key signs, the TPM key is published.
        # Its public half needs no TPM: this works with the TPM stopped.
        self.swtpm.stop()
        m = self.mount_tpm(name="rot", signer_extra="previous_keys = %s\n" % tpm)
        old_token = m.read("app", "token")
        pem_kid = jwt_part(old_token, 0)["kid"]
        self.assertEqual(self.kids(m), [pem_kid, tpm_kid])
        self.verified_claims(m, old_token, "old")
        self.swtpm.restart()
        # Step 2, switch (live reload): the TPM key signs, the PEM key is
        # still published, and the token signed before still verifies.
        write_config(m.config, self.config_text(key=tpm,
                                                signer_extra="previous_keys = %s\n" % pem))
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.kids(m) == [tpm_kid, pem_kid], 10),
                        "keys.json after the switch: %r" % self.kids(m))
        new_token = wait_for(lambda: (lambda t: t if jwt_part(t, 0)["kid"] == tpm_kid
                                      else None)(m.read("app", "token")), 10)
        self.assertTrue(new_token, "the token is not signed by the TPM key after the switch")
        self.verified_claims(m, new_token, "new")
        self.verified_claims(m, old_token, "old-after")
        r = self.credfs("oidc", m.config, os.path.join(self.dir, "site"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "site", "keys.json")) as f:
            self.assertEqual(f.read(), m.read("keys.json"))
        # And back: a TPM key can be retired for a PEM key the same way.
        write_config(m.config, self.config_text(key=pem,
                                                signer_extra="previous_keys = %s\n" % tpm))
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.kids(m) == [pem_kid, tpm_kid], 10))
        self.verified_claims(m, new_token, "tpm-after-back")
        self.assertIsNone(m.proc.poll())


class TestTpmOutage(TpmCase):
    LIFETIME = 12         # seconds the credentials last (proxy rewrite)
    TOKEN_REFRESH = 6     # a token is re-signed after 1% of token_lifetime = 600 s

    def test_tpm_stopped_under_load_then_started_again(self):
        key = self.tpm_keygen("signer.tpm")
        self.proxy.lifetime = self.LIFETIME
        m = self.mount_tpm(key=key, roles={"app": "subject = %s\n" % SUBJECT},
                           defaults="wait_timeout = 2\nrefresh_fraction = 0.01\n"
                                    "min_validity = 0\n",
                           signer_extra="token_lifetime = 600\n")
        t0 = time.monotonic()
        first_token = m.read("app", "token")
        first_key = access_key(m.read("app", "credentials"))
        self.swtpm.stop()
        t_stop = time.monotonic()

        # Readers under load for the whole outage: every outcome recorded.
        stop = threading.Event()
        seen = []              # (monotonic, file, errno, content)
        lock = threading.Lock()

        def reader(name):
            while not stop.is_set():
                t = time.monotonic()
                rc, text = read_errno(m.path("app", name))
                with lock:
                    seen.append((t, name, rc, text))
                time.sleep(0.05)

        threads = [threading.Thread(target=reader, args=(n,))
                   for n in ("token", "credentials", "process.json", "token")]
        for t in threads:
            t.start()
        try:
            # A read that needs a new token: EIO, at once.
            time.sleep(max(0, t0 + self.TOKEN_REFRESH + 1.5 - time.monotonic()))
            t1 = time.monotonic()
            rc, _ = read_errno(m.path("app", "token"))
            self.assertEqual(rc, errno.EIO)
            self.assertLess(time.monotonic() - t1, 2)
            # status says the TPM failed, and why.
            st = m.status("app")
            self.assertIsNotNone(st["last_error"])
            self.assertEqual(st["last_error"]["code"], "Signer")
            self.assertIn("TPM", st["last_error"]["message"])
            self.assertIn("did not answer", st["last_error"]["message"])
            # The last good credentials are still served while they last.
            rc, text = read_errno(m.path("app", "process.json"))
            self.assertEqual(rc, 0)
            expiry = json.loads(text)["Expiration"]
            rc, _ = read_errno(m.path("app", "credentials"))
            self.assertEqual(rc, 0)
            # ... until they expire: then EIO.
            exp = calendar.timegm(time.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ"))
            self.assertTrue(wait_for(
                lambda: read_errno(m.path("app", "credentials"))[0] == errno.EIO,
                exp - time.time() + 5), "credentials were not refused after expiry")
            self.assertIsNone(m.proc.poll(), "credfs exited during the outage")
            self.assertTrue(is_mounted(m.mnt))
            # The TPM is back: credfs recovers by itself.
            self.swtpm.restart()
            t_back = time.monotonic()
            token = wait_for(lambda: (lambda r: r[1] if r[0] == 0 else None)(
                read_errno(m.path("app", "token"))), 20)
            self.assertTrue(token, "no token within 20 s of the TPM coming back")
            creds = wait_for(lambda: (lambda r: r[1] if r[0] == 0 else None)(
                read_errno(m.path("app", "credentials"))), 20)
            self.assertTrue(creds, "no credentials within 20 s of the TPM coming back")
            self.assertNotEqual(access_key(creds), first_key)
            t_recovered = time.monotonic()
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        # Within the signer's back-off and the engine's renewal hold-off
        # (8 s each at most) of the TPM coming back.
        self.assertLess(t_recovered - t_back, 30)
        self.verified_claims(m, token, "recovered")
        self.assertNotEqual(token, first_token)
        self.assertTrue(wait_for(lambda: m.status("app")["last_error"] is None, 5),
                        "status after recovery: %r" % m.status("app"))
        self.assertIsNone(m.proc.poll())

        # What the readers saw: EIO or a good document, nothing else; no
        # expired credentials; no token read succeeded while one was due
        # and the TPM was away.
        bad = [(round(t - t0, 2), n, rc) for t, n, rc, _ in seen if rc not in (0, errno.EIO)]
        self.assertEqual(bad, [], "reads failed with other errors")
        for t, name, rc, text in seen:
            if name == "process.json" and rc == 0:
                exp = json.loads(text)["Expiration"]
                when = calendar.timegm(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ"))
                # t is monotonic: compare through the wall clock at t.
                self.assertGreater(when, time.time() - (time.monotonic() - t) - 1,
                                   "expired credentials were served")
        due = [(t, rc) for t, n, rc, _ in seen
               if n == "token" and t0 + self.TOKEN_REFRESH + 1 < t < t_back]
        self.assertTrue(due, "no token read fell inside the outage")
        self.assertEqual([rc for _, rc in due if rc == 0], [],
                         "a token was served while a new one was due and the TPM was away")
        served = [t for t, n, rc, _ in seen
                  if n == "credentials" and rc == 0 and t_stop + self.TOKEN_REFRESH + 1 < t < t_back]
        self.assertTrue(served, "cached credentials were not served during the outage")
        # The back-off (1 s doubling to 8 s) kept credfs from hammering the
        # dead TPM: a few connection attempts, not one per read.
        attempts = m.output().count("Cannot connect to swtpm TPM socket")
        self.assertGreaterEqual(attempts, 1)
        self.assertLessEqual(attempts, 15, "%d attempts to reach the TPM" % attempts)
        self.assertEqual(self.swtpm.transient_handles(), [])


class TestTpmCheckAndLeaks(TpmCase):
    def test_check_reports_a_key_the_tpm_cannot_load_with_file_and_line(self):
        key = self.tpm_keygen("signer.tpm")
        cfg = write_config(os.path.join(self.dir, "c.conf"), self.config_text(key=key))
        with open(cfg) as f:
            line = [i for i, l in enumerate(f.read().splitlines(), 1)
                    if l.startswith("key = ")][0]
        self.assertEqual(self.credfs("check", cfg).returncode, 0)
        # The TPM is not there.
        dead = dict(self.env, TPM2OPENSSL_TCTI="swtpm:host=127.0.0.1,port=9")
        r = self.credfs("check", cfg, env=dead)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("%s:%d: TPM key %s cannot be loaded: the TPM did not answer"
                      % (cfg, line, key), r.stderr)
        # Another TPM: the key is useless there.
        other = Swtpm(os.path.join(self.dir, "other-tpm"))
        try:
            other.start()
            env = dict(self.env, TPM2OPENSSL_TCTI=other.tcti)
            r = self.credfs("check", cfg, env=env)
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:%d: TPM key %s cannot be loaded: the TPM cannot load the key"
                          % (cfg, line, key), r.stderr)
            # The mount refuses it the same way, and mounts nothing.
            mnt = os.path.join(self.dir, "refused")
            os.makedirs(mnt)
            r = subprocess.run([CREDFS, "-f", cfg, mnt], env=env, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:%d:" % (cfg, line), r.stderr)
            self.assertFalse(is_mounted(mnt))
            self.assertEqual(other.transient_handles(), [])
        finally:
            other.stop()
        # A file that is no TPM key at all, with the label: a config error.
        bogus = os.path.join(self.dir, "bogus.tpm")
        with open(bogus, "w") as f:
            f.write(PEM_LABEL + "\nMAMCAQE=\n-----END TSS2 PRIVATE KEY-----\n")
        os.chmod(bogus, 0o600)
        cfg2 = write_config(os.path.join(self.dir, "c2.conf"), self.config_text(key=bogus))
        r = self.credfs("check", cfg2)
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:%d: %s is not a usable TPM-wrapped key" % (cfg2, line, bogus), r.stderr)

    def test_killed_daemons_leave_nothing_in_the_tpm(self):
        key = self.tpm_keygen("signer.tpm")
        # swtpm has 3 transient slots: more killed daemons than that.
        for i in range(5):
            m = self.mount_tpm(key=key, name="k%d" % i)
            rc, token = read_errno(m.path("app", "token"))
            self.assertEqual(rc, 0)
            m.proc.kill()
            m.proc.wait()
            m.stop()
            self.assertFalse(is_mounted(m.mnt))
            self.assertEqual(self.swtpm.transient_handles(), [],
                             "daemon %d left an object in the TPM" % i)
        # A new daemon still signs.
        m = self.mount_tpm(key=key, name="last")
        self.assertEqual(read_errno(m.path("app", "token"))[0], 0)
