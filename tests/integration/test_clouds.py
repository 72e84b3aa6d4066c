"""Google Cloud and Azure roles against fakes of their token endpoints
(fake_clouds.py) that check what they get as the clouds do: the token's
signature against the mount's keys.json, iss, aud, sub, exp.  The real
client libraries from npm read the files: google-auth-library 10.9.1 through
credentials.json (plain and impersonating a service account) and
@azure/identity 4.13.1's WorkloadIdentityCredential through env, over TLS
from a test CA.  Beside them: the access_token credfs obtains itself, short
lifetimes, one exchange per renewal, the clouds' errors in status, every
way an endpoint can misbehave, reload, access control, one mount with all
three clouds, and no secret in the log.  Nothing leaves loopback: the node
processes refuse any other address (js/loopback_only.mjs)."""
import concurrent.futures
import errno
import json
import os
import pathlib
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import jsdeps
from harness import (ACCOUNT, AWS_CLI, SYSTEM_PYTHON, CredfsTestCase, clean_aws_env,
                     die_with_parent, jwt_part, parse_credentials, read_errno, rfc3339,
                     wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_clouds.py")
JS_DIR = jsdeps.JS_DIR
LOOPBACK_ONLY = pathlib.Path(JS_DIR, "loopback_only.mjs").as_uri()

ISSUER = "https://oidc.example.com"
SUBJECT = "system:serviceaccount:prod:app"
PROJECT = "123456789012"
POOL, PROVIDER_ID = "prod-pool", "oidc-example"
PROVIDER = ("//iam.googleapis.com/projects/%s/locations/global/workloadIdentityPools/%s/providers/%s"
            % (PROJECT, POOL, PROVIDER_ID))
SERVICE_ACCOUNT = "app@fake-project.iam.gserviceaccount.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
AZURE_AUDIENCE = "api://AzureADTokenExchange"
AZURE_SCOPE = "https://management.azure.com/.default"

GOOGLE_DEFAULTS = {"issuer": ISSUER, "allowed_audiences": [], "expires_in": 3600,
                   "sa_token_lifetime": None, "service_accounts": {SERVICE_ACCOUNT: [SUBJECT]}}
AZURE_DEFAULTS = {"expires_in": 3599, "refresh_in": None,
                  "apps": {CLIENT: [{"issuer": ISSUER, "subject": SUBJECT,
                                     "audiences": [AZURE_AUDIENCE]}]}}


class FakeClouds:
    """fake_clouds.py serve (Debian's Python, for PyJWT) with the Google and
    Azure fakes over TLS from a test CA of its own, driven over its admin
    API."""

    def __init__(self, workdir):
        pki = os.path.join(workdir, "pki")
        subprocess.run([SYSTEM_PYTHON, FAKE, "pki", "--out", pki], check=True,
                       capture_output=True, timeout=60)
        self.ca = os.path.join(pki, "ca.pem")
        self.ssl = ssl.create_default_context(cafile=self.ca)
        self.empty_jwks = os.path.join(workdir, "empty-keys.json")
        with open(self.empty_jwks, "w") as f:
            json.dump({"keys": []}, f)
        conf = {"tls": {"cert": os.path.join(pki, "server.pem"),
                        "key": os.path.join(pki, "server.key")},
                "google": dict(GOOGLE_DEFAULTS, jwks=self.empty_jwks, project_number=PROJECT,
                               pool=POOL, provider=PROVIDER_ID),
                "azure": dict(AZURE_DEFAULTS, tenant_id=TENANT, jwks=self.empty_jwks)}
        conf_path = os.path.join(workdir, "fakes.json")
        ports = os.path.join(workdir, "ports.json")
        with open(conf_path, "w") as f:
            json.dump(conf, f)
        self.log = open(os.path.join(workdir, "fakes.log"), "wb")
        self.proc = subprocess.Popen([SYSTEM_PYTHON, FAKE, "serve", "--config", conf_path,
                                      "--ports-file", ports, "--max-seconds", "3600"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        deadline = time.time() + 30
        while not os.path.exists(ports):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("fake_clouds.py did not start")
            time.sleep(0.05)
        with open(ports) as f:
            info = json.load(f)
        self.google = info["google"]["url"]
        self.azure = info["azure"]["url"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def admin(self, fake, path, payload=None):
        url = (self.google if fake == "google" else self.azure) + "/__fake/" + path
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ssl, timeout=10) as r:
            return json.loads(r.read())

    def reset(self):
        """Forgets requests, faults and tokens; back to the default settings."""
        for fake, defaults in (("google", GOOGLE_DEFAULTS), ("azure", AZURE_DEFAULTS)):
            self.admin(fake, "reset", {})
            self.admin(fake, "config", dict(defaults, jwks=self.empty_jwks))

    def config(self, fake, **changes):
        self.admin(fake, "config", changes)

    def fault(self, fake, mode, endpoint, **kw):
        self.admin(fake, "fault", dict(kw, mode=mode, endpoint=endpoint))

    def clear_faults(self):
        for fake in ("google", "azure"):
            self.admin(fake, "fault", {"mode": "none"})

    def requests(self, fake, endpoint):
        """What the fake received at endpoint ("sts", "iam", "token"), oldest first."""
        return [r for r in self.admin(fake, "state")["requests"] if r["endpoint"] == endpoint]

    def issued(self, fake, endpoint, scope=None):
        """The access tokens it handed out there (to requests for scope,
        when given), oldest first, with when."""
        field = "accessToken" if endpoint == "iam" else "access_token"
        return [(r["response"][field], r["time"]) for r in self.requests(fake, endpoint)
                if r.get("status") == 200 and isinstance(r.get("response"), dict)
                and field in r["response"] and (scope is None or r["form"].get("scope") == scope)]


def role_text(name, keys):
    return "[role %s]\n%s\n" % (name, "".join("%s = %s\n" % (k, v) for k, v in keys.items()
                                               if v is not None))


def read_env(text):
    """KEY=VALUE lines, as `set -a; . env` or docker --env-file take them."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class CloudsTestCase(CredfsTestCase):
    """moto (for AWS roles) and the cloud fakes per class; a mount per test."""

    @classmethod
    def setUpClass(cls):
        jsdeps.ensure()
        super().setUpClass()
        cls.fakes_dir = tempfile.mkdtemp(prefix="credfs-fakes-")
        try:
            cls.fakes = FakeClouds(cls.fakes_dir)
        except Exception:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.fakes.stop()
        shutil.rmtree(cls.fakes_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.fakes.reset()

    # ---- configuration ----------------------------------------------------

    def gcp(self, **keys):
        role = {"cloud": "gcp", "subject": SUBJECT, "audience": PROVIDER,
                "token_url": self.fakes.google + "/v1/token", "ca_file": self.fakes.ca}
        role.update(keys)
        return role

    def gcp_sa(self, **keys):
        return self.gcp(**dict({"service_account": SERVICE_ACCOUNT,
                                "impersonation_url": self.fakes.google + "/v1"}, **keys))

    def azure(self, **keys):
        role = {"cloud": "azure", "subject": SUBJECT, "tenant_id": TENANT, "client_id": CLIENT,
                "authority_host": self.fakes.azure + "/", "ca_file": self.fakes.ca}
        role.update(keys)
        return role

    def aws(self, **keys):
        role = {"role_arn": "arn:aws:iam::%s:role/aws-role" % ACCOUNT, "subject": SUBJECT}
        role.update(keys)
        return role

    def clouds_text(self, roles, defaults="", issuer=ISSUER):
        if "wait_timeout" not in defaults:
            # Generous: the tests that are about waits set their own.
            defaults = "wait_timeout = 10\n" + defaults
        text = ("[credfs]\nregion = ap-northeast-1\nsts_endpoint = %s\n%s\n"
                "[signer]\nkey = %s\nissuer = %s\n\n" % (self.proxy.url, defaults, self.key, issuer))
        return text + "".join(role_text(n, k) for n, k in roles.items())

    def mount_clouds(self, roles, defaults="", issuer=ISSUER, **kw):
        m = self.mount(text=self.clouds_text(roles, defaults, issuer), **kw)
        # The fakes trust what this mount publishes, as a provider whose
        # JWKS was uploaded (or fetched from the issuer) would.
        for fake in ("google", "azure"):
            self.fakes.config(fake, jwks=m.path("keys.json"))
        return m

    # ---- clients ----------------------------------------------------------

    def node_env(self, **extra):
        """What a node process knows: no cloud settings of this machine, no
        proxy, the test CA (NODE_EXTRA_CA_CERTS is read when node starts)."""
        drop = ("AWS_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "AZURE_", "MSAL_", "GCE_", "NODE_")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(drop) and "proxy" not in k.lower()}
        home = tempfile.mkdtemp(prefix="home-", dir=self.dir)
        env.update(HOME=home, NODE_EXTRA_CA_CERTS=self.fakes.ca,
                   GCE_METADATA_HOST="127.0.0.1:9", METADATA_SERVER_DETECTION="none")
        env.update(extra)
        return env

    def node(self, script, env, *args, ok=True):
        """The JSON lines a driver printed; it must not have tried to leave
        loopback, and (with ok) must have succeeded."""
        r = subprocess.run(["node", "--import", LOOPBACK_ONLY, script] + list(args),
                           cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120)
        self.assertNotIn("loopback_only: refused", r.stderr)
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        if ok:
            self.assertEqual(r.returncode, 0, (r.stdout + r.stderr)[-3000:])
        return lines

    def google_library(self, m, role, *args, ok=True):
        self.read(m, role, "token")
        return self.node("gcp_token.mjs", self.node_env(
            GOOGLE_APPLICATION_CREDENTIALS=m.path(role, "credentials.json")), *args, ok=ok)

    def azure_library(self, m, role, *args, ok=True):
        self.read(m, role, "token")
        return self.node("azure_token.mjs", self.node_env(**read_env(self.read(m, role, "env"))),
                         *args, ok=ok)

    # ---- checks -----------------------------------------------------------

    def read(self, m, role, name):
        """A file of role, whole: never NUL padding, also on the first read
        of a file that had to wait for its document."""
        text = m.read(role, name)
        self.assertNotIn("\x00", text, "%s/%s holds NULs" % (role, name))
        return text

    def assert_eio(self, m, role, within=12):
        """access_token fails with EIO, and no later than within seconds."""
        t0 = time.monotonic()
        self.assertEqual(read_errno(m.path(role, "access_token")), errno.EIO)
        self.assertLess(time.monotonic() - t0, within)

    def status_when(self, m, role, pred, timeout=5):
        """role's status once pred holds of it.  status may lag what just
        happened by a second: the kernel keeps its attributes that long."""
        got = wait_for(lambda: (lambda s: s if pred(s) else None)(m.status(role)), timeout)
        self.assertTrue(got, "%s: %s" % (role, m.status(role)))
        return got

    def last_error(self, m, role):
        """The last error in role's status, once there is one."""
        return self.status_when(m, role, lambda s: s["last_error"])["last_error"]

    def assert_no_secret_logged(self, m, *secrets):
        log = m.output()
        for s in secrets:
            self.assertNotIn(s, log)


class TestGoogle(CloudsTestCase):
    def test_library_reads_credentials_json(self):
        m = self.mount_clouds({"gcp": self.gcp()})
        doc = json.loads(self.read(m, "gcp", "credentials.json"))
        self.assertEqual(doc["credential_source"]["file"], m.path("gcp", "token"))
        self.assertNotIn("service_account_impersonation_url", doc)
        got = self.google_library(m, "gcp")
        # Reading credentials.json and token made credfs exchange nothing:
        # the one exchange is the library's, and its token is the fake's.
        sts = self.fakes.requests("google", "sts")
        self.assertEqual(len(sts), 1)
        self.assertEqual(got[0]["token"], sts[0]["response"]["access_token"])
        self.assertEqual(got[0]["client"], "IdentityPoolClient")
        self.assertEqual(sts[0]["form"]["subject_token"], self.read(m, "gcp", "token"))
        # credfs's own exchange sends what the library sent, and its
        # access_token is what the fake issued it.
        access = self.read(m, "gcp", "access_token")
        sts = self.fakes.requests("google", "sts")
        self.assertEqual(len(sts), 2)
        self.assertEqual(access, sts[1]["response"]["access_token"])
        self.assertEqual(sts[1]["form"], sts[0]["form"])
        expiry = rfc3339(self.read(m, "gcp", "expiry"))
        self.assertAlmostEqual(expiry, sts[1]["time"] + 3600, delta=2)
        status = self.status_when(m, "gcp", lambda s: s["state"] == "valid")
        self.assertEqual((status["cloud"], status["sts_calls"]), ("gcp", 1))
        self.assertNotIn(access, json.dumps(status))
        self.assert_no_secret_logged(m, access, self.read(m, "gcp", "token").split(".")[2])

    def test_library_impersonates_through_impersonation_url(self):
        m = self.mount_clouds({"sa": self.gcp_sa(scope="https://www.googleapis.com/auth/cloud-platform "
                                                      "https://www.googleapis.com/auth/devstorage.read_only")})
        doc = json.loads(self.read(m, "sa", "credentials.json"))
        self.assertEqual(doc["service_account_impersonation_url"],
                         self.fakes.google + "/v1/projects/-/serviceAccounts/%s:generateAccessToken"
                         % SERVICE_ACCOUNT)
        got = self.google_library(m, "sa", "--scope", "https://www.googleapis.com/auth/cloud-platform",
                                  "--scope", "https://www.googleapis.com/auth/devstorage.read_only")
        iam = self.fakes.requests("google", "iam")
        self.assertEqual(len(iam), 1)
        self.assertEqual(got[0]["token"], iam[0]["response"]["accessToken"])
        self.assertEqual(got[0]["client"], "IdentityPoolClient")
        access = self.read(m, "sa", "access_token")
        sts, iam = self.fakes.requests("google", "sts"), self.fakes.requests("google", "iam")
        self.assertEqual((len(sts), len(iam)), (2, 2))
        self.assertEqual(access, iam[1]["response"]["accessToken"])
        # The same requests as the library's: cloud-platform at STS, the
        # role's scopes at generateAccessToken, the STS token as bearer.
        self.assertEqual(sts[1]["form"], sts[0]["form"])
        self.assertEqual(iam[1]["json"], iam[0]["json"])
        self.assertEqual(iam[1]["headers"]["authorization"],
                         "Bearer " + sts[1]["response"]["access_token"])
        self.assertEqual(rfc3339(self.read(m, "sa", "expiry")),
                         rfc3339(iam[1]["response"]["expireTime"]))
        self.assertEqual(self.status_when(m, "sa", lambda s: s["state"] == "valid")["sts_calls"], 2)
        self.assert_no_secret_logged(m, access, sts[1]["response"]["access_token"])

    def test_wrong_audience(self):
        # The provider named in audience does not exist.
        other = PROVIDER.replace(PROVIDER_ID, "other-provider")
        m = self.mount_clouds({"gcp": self.gcp(audience=other)})
        self.assert_eio(m, "gcp")
        err = self.last_error(m, "gcp")
        self.assertEqual((err.get("code"), err.get("http_status")), ("invalid_target", 400))
        self.assertIn("audience", err["message"])
        # The library, reading the same files, is refused the same way.
        got = self.google_library(m, "gcp", ok=False)
        self.assertFalse(got[0]["ok"])
        self.assertIn("invalid_target", got[0]["error"])
        # The provider exists but allows other audiences than the token's.
        self.fakes.config("google", allowed_audiences=["https://example.com/other"])
        m = self.mount_clouds({"gcp": self.gcp()}, name="mnt2")
        self.assert_eio(m, "gcp")
        err = self.last_error(m, "gcp")
        self.assertEqual(err.get("code"), "invalid_grant")
        self.assertIn("does not match the expected audience", err["message"])

    def test_wrong_issuer_and_subject(self):
        # A provider registered with a trailing "/" on the issuer URL.
        self.fakes.config("google", issuer=ISSUER + "/")
        m = self.mount_clouds({"gcp": self.gcp(), "sa": self.gcp_sa()})
        self.assert_eio(m, "gcp")
        err = self.last_error(m, "gcp")
        self.assertEqual(err.get("code"), "invalid_grant")
        self.assertIn("issuer", err["message"])
        # STS does not match subjects; generateAccessToken does.
        self.fakes.config("google", issuer=ISSUER,
                          service_accounts={SERVICE_ACCOUNT: ["system:serviceaccount:prod:other"]})
        self.assert_eio(m, "sa")
        err = self.last_error(m, "sa")
        self.assertEqual((err.get("code"), err.get("http_status")), ("PERMISSION_DENIED", 403))
        self.assertIn("iam.serviceAccounts.getAccessToken", err["message"])


class TestAzure(CloudsTestCase):
    def test_library_reads_env(self):
        m = self.mount_clouds({"az": self.azure()})
        env = read_env(self.read(m, "az", "env"))
        self.assertEqual(env, {"AZURE_CLIENT_ID": CLIENT, "AZURE_TENANT_ID": TENANT,
                               "AZURE_FEDERATED_TOKEN_FILE": m.path("az", "token"),
                               "AZURE_AUTHORITY_HOST": self.fakes.azure + "/"})
        self.assertEqual(jwt_part(self.read(m, "az", "token"), 1)["aud"], AZURE_AUDIENCE)
        got = self.azure_library(m, "az")
        token = self.fakes.requests("azure", "token")
        self.assertEqual(len(token), 1)
        self.assertEqual(got[0]["token"], token[0]["response"]["access_token"])
        # Only the tenant's metadata and its token endpoint: no instance
        # discovery at login.microsoftonline.com.
        state = self.fakes.admin("azure", "state")["counts"]
        self.assertEqual(state, {"discovery": 1, "token": 1})
        access = self.read(m, "az", "access_token")
        token = self.fakes.requests("azure", "token")
        self.assertEqual(len(token), 2)
        self.assertEqual(access, token[1]["response"]["access_token"])
        essential = ("client_id", "scope", "grant_type", "client_assertion_type", "client_assertion")
        self.assertEqual({k: token[1]["form"][k] for k in essential},
                         {k: token[0]["form"][k] for k in essential})
        self.assertEqual(token[1]["form"]["scope"], AZURE_SCOPE)
        self.assertAlmostEqual(rfc3339(self.read(m, "az", "expiry")), token[1]["time"] + 3599, delta=2)
        self.status_when(m, "az", lambda s: s["state"] == "valid")
        self.assert_no_secret_logged(m, access, self.read(m, "az", "token").split(".")[2])

    def test_wrong_audience_issuer_subject(self):
        cases = {
            # aud: a role's own audience that no credential lists.
            "aud": (self.azure(audience="api://Other"), "AADSTS700212", "audience"),
            # sub: the federated credential says .../app, the token .../App.
            "case": (self.azure(subject="system:serviceaccount:prod:App"), "AADSTS7002138",
                     "case-insensitive"),
            "sub": (self.azure(subject="system:serviceaccount:prod:other"), "AADSTS700213",
                    "subject"),
        }
        m = self.mount_clouds({n: c[0] for n, c in cases.items()})
        for name, (_, code, text) in cases.items():
            self.assert_eio(m, name)
            err = self.last_error(m, name)
            self.assertEqual((err.get("code"), err.get("http_status")), (code, 401), name)
            self.assertIn(text, err["message"], name)
        # iss: registered with a trailing "/", which Entra ID compares exactly.
        self.fakes.config("azure", apps={CLIENT: [{"issuer": ISSUER + "/", "subject": SUBJECT,
                                                   "audiences": [AZURE_AUDIENCE]}]})
        m = self.mount_clouds({"az": self.azure()}, name="mnt2")
        self.assert_eio(m, "az")
        self.assertEqual(self.last_error(m, "az").get("code"), "AADSTS700211")
        got = self.azure_library(m, "az", ok=False)
        self.assertIn("AADSTS700211", got[0]["error"])


class TestBoth(CloudsTestCase):
    def sign(self, claims, lifetime):
        r = subprocess.run([SYSTEM_PYTHON, FAKE, "sign", "--key", self.key, "--claims",
                            json.dumps(claims), "--lifetime", str(lifetime)],
                           capture_output=True, text=True, timeout=60, check=True)
        return r.stdout

    def test_expired_token_refused(self):
        now = int(time.time())
        paths = {}
        for name, aud in (("gcp", PROVIDER), ("az", AZURE_AUDIENCE)):
            token = self.sign({"iss": ISSUER, "sub": SUBJECT, "aud": aud,
                               "iat": now - 700, "nbf": now - 700}, -60)
            paths[name] = os.path.join(self.dir, name + ".jwt")
            with open(paths[name], "w") as f:
                f.write(token)
        m = self.mount_clouds({
            "gcp": self.gcp(subject=None, web_identity_token_file=paths["gcp"]),
            "az": self.azure(subject=None, web_identity_token_file=paths["az"])})
        self.assert_eio(m, "gcp")
        self.assert_eio(m, "az")
        err = self.last_error(m, "gcp")
        self.assertEqual(err.get("code"), "invalid_grant")
        self.assertIn("stale to sign-in", err["message"])
        err = self.last_error(m, "az")
        self.assertEqual(err.get("code"), "AADSTS700024")
        self.assertIn("not within its valid time range", err["message"])
        # A fresh token in the same files: both recover.
        for name, aud in (("gcp", PROVIDER), ("az", AZURE_AUDIENCE)):
            with open(paths[name], "w") as f:
                f.write(self.sign({"iss": ISSUER, "sub": SUBJECT, "aud": aud}, 600))
        for role in ("gcp", "az"):
            self.assertTrue(wait_for(lambda: read_errno(m.path(role, "access_token")) == 0,
                                     timeout=20), role)

    def test_lazy_and_one_exchange_for_many_readers(self):
        m = self.mount_clouds({"gcp": self.gcp(), "sa": self.gcp_sa(), "az": self.azure()})
        for role in ("gcp", "sa", "az"):
            for f in os.listdir(m.path(role)):
                os.stat(m.path(role, f))
            m.status(role)
        self.assertEqual(self.fakes.admin("google", "state")["counts"], {})
        self.assertEqual(self.fakes.admin("azure", "state")["counts"], {})
        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            reads = list(pool.map(lambda r: self.read(m, r, "access_token"),
                                  ("gcp", "sa", "az") * 16))
        for i, role in enumerate(("gcp", "sa", "az")):
            self.assertEqual(len(set(reads[i::3])), 1, role)
        self.assertEqual(len(self.fakes.requests("google", "sts")), 2)
        self.assertEqual(len(self.fakes.requests("google", "iam")), 1)
        self.assertEqual(len(self.fakes.requests("azure", "token")), 1)

    def test_short_lifetimes(self):
        """Tokens of 4 s, renewed at half their life, read all the time by 4
        threads per role: every token read was the fake's and unexpired,
        each renewal is one exchange, and after expiry comes a new one."""
        self.fakes.config("google", expires_in=4, sa_token_lifetime=4)
        self.fakes.config("azure", expires_in=4)
        # Its own scope tells the plain role's exchanges from the
        # impersonating one's (cloud-platform).
        bigquery = "https://www.googleapis.com/auth/bigquery"
        m = self.mount_clouds({"gcp": self.gcp(scope=bigquery), "sa": self.gcp_sa(),
                               "az": self.azure()},
                              defaults="refresh_fraction = 0.5\nmin_validity = 1\n")
        seen = {r: [(time.time(), self.read(m, r, "access_token"))] for r in ("gcp", "sa", "az")}
        stop = time.monotonic() + 13
        errors = []

        def reader(role):
            while time.monotonic() < stop:
                try:
                    with open(m.path(role, "access_token")) as f:
                        seen[role].append((time.time(), f.read()))
                except OSError as e:
                    errors.append((role, e.errno))
                time.sleep(0.02)

        threads = [threading.Thread(target=reader, args=(r,)) for r in seen for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for role, fake, endpoint, scope in (("gcp", "google", "sts", bigquery),
                                            ("sa", "google", "iam", None),
                                            ("az", "azure", "token", None)):
            issued = dict(self.fakes.issued(fake, endpoint, scope))
            tokens = {tok for _, tok in seen[role]}
            self.assertGreaterEqual(len(tokens), 4, role)
            for when, tok in seen[role]:
                self.assertIn(tok, issued, role)
                self.assertLess(when, issued[tok] + 4 + 0.5, "%s read an expired token" % role)
            renewals = self.status_when(m, role, lambda s: s["waiting"] is None)["renewals"]
            self.assertGreaterEqual(len(tokens), renewals - 1, role)
            self.assertLessEqual(len(issued) - len(tokens), 1, role)
        # One exchange per renewal, for all those readers (status may lag a
        # renewal that ended as the readers stopped by its second).
        def renewals(role):
            return self.status_when(m, role, lambda s: s["waiting"] is None)["renewals"]

        self.assertTrue(wait_for(lambda: len(self.fakes.requests("google", "sts"))
                                 == renewals("gcp") + renewals("sa")
                                 and len(self.fakes.requests("google", "iam")) == renewals("sa")
                                 and len(self.fakes.requests("azure", "token")) == renewals("az"),
                                 timeout=5))

    def test_last_good_until_expiry_then_eio(self):
        self.fakes.config("google", expires_in=10)
        self.fakes.config("azure", expires_in=10)
        m = self.mount_clouds({"gcp": self.gcp(), "az": self.azure()},
                              defaults="refresh_fraction = 0.25\nmin_validity = 1\nwait_timeout = 2\n")
        first = {r: self.read(m, r, "access_token") for r in ("gcp", "az")}
        self.fakes.fault("google", "http500", "sts")
        self.fakes.fault("azure", "http500", "token")
        # Renewals fail from 2.5 s on; the first token is served throughout
        # (credfs counts its lifetime from the whole second it got it, and
        # stops a second before the end: 8 s at least).
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6:
            for role in first:
                self.assertEqual(self.read(m, role, "access_token"), first[role])
            time.sleep(0.2)
        codes = {"gcp": "INTERNAL", "az": "AADSTS500011"}
        for role, code in codes.items():
            self.status_when(m, role, lambda s: s["state"] in ("stale", "renewing"))
            self.assertEqual(self.last_error(m, role).get("code"), code)
        for role, code in codes.items():
            self.assertTrue(wait_for(lambda: read_errno(m.path(role, "access_token")) == errno.EIO,
                                     timeout=8), role)
            self.assertEqual(self.last_error(m, role).get("code"), code)
        self.fakes.clear_faults()
        for role in first:
            self.assertTrue(wait_for(lambda: read_errno(m.path(role, "access_token")) == 0,
                                     timeout=20), role)
            self.assertNotEqual(self.read(m, role, "access_token"), first[role])

    def test_reload(self):
        m = self.mount_clouds({"gcp": self.gcp(), "az": self.azure()})
        old = {r: self.read(m, r, "access_token") for r in ("gcp", "az")}
        text = self.clouds_text({"gcp": self.gcp(scope="https://www.googleapis.com/auth/bigquery"),
                                 "az": self.azure()})
        with open(m.config, "w") as f:
            f.write(text)
        before = m.output().count("reloaded ")
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: m.output().count("reloaded ") > before, timeout=10))
        self.assertNotEqual(self.read(m, "gcp", "access_token"), old["gcp"])
        self.assertEqual(self.read(m, "az", "access_token"), old["az"])
        sts = self.fakes.requests("google", "sts")
        self.assertEqual([r["form"]["scope"] for r in sts],
                         ["https://www.googleapis.com/auth/cloud-platform",
                          "https://www.googleapis.com/auth/bigquery"])
        self.assertEqual(len(self.fakes.requests("azure", "token")), 1)

    def test_access_control(self):
        owner, other = 12345, 12347
        m = self.mount_clouds({"gcp": self.gcp(uid=owner, gid=owner, mode="0400"),
                               "az": self.azure(uid=owner, gid=owner, mode="0400")},
                              extra_args=["-o", "allow_other"])
        os.chmod(self.dir, 0o755)
        for role in ("gcp", "az"):
            for f in ("access_token", "token", "expiry", "status"):
                path = m.path(role, f)
                ok = subprocess.run(["setpriv", "--reuid", str(owner), "--regid", str(owner),
                                     "--clear-groups", "cat", path], capture_output=True, timeout=20)
                self.assertEqual(ok.returncode, 0, path)
                no = subprocess.run(["setpriv", "--reuid", str(other), "--regid", str(other),
                                     "--clear-groups", "cat", path],
                                    capture_output=True, text=True, timeout=20)
                self.assertNotEqual(no.returncode, 0, path)
                self.assertEqual(no.stdout, "")
                self.assertIn(os.strerror(errno.EACCES), no.stderr)

    def test_three_clouds_in_one_mount(self):
        m = self.mount_clouds({"aws": self.aws(), "gcp": self.gcp(), "sa": self.gcp_sa(),
                               "az": self.azure()})
        self.assertEqual(sorted(os.listdir(m.path("gcp"))),
                         ["access_token", "credentials.json", "expiry", "status", "token"])
        self.assertEqual(sorted(os.listdir(m.path("az"))),
                         ["access_token", "env", "expiry", "status", "token"])
        # Each token is for its own cloud.
        self.assertEqual(jwt_part(self.read(m, "aws", "token"), 1)["aud"], "sts.amazonaws.com")
        self.assertEqual(jwt_part(self.read(m, "gcp", "token"), 1)["aud"], PROVIDER)
        self.assertEqual(jwt_part(self.read(m, "az", "token"), 1)["aud"], AZURE_AUDIENCE)

        def aws_cli():
            env = clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("aws", "credentials"),
                                AWS_CONFIG_FILE=m.path("aws", "config"))
            r = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                                self.moto.url, "--output", "json"],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            return json.loads(r.stdout)["Arn"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = {"aws": pool.submit(aws_cli),
                    "gcp": pool.submit(self.google_library, m, "gcp"),
                    "sa": pool.submit(self.google_library, m, "sa"),
                    "az": pool.submit(self.azure_library, m, "az"),
                    "files": pool.submit(lambda: {r: self.read(m, r, f) for r, f in (
                        ("aws", "credentials"), ("gcp", "access_token"), ("sa", "access_token"),
                        ("az", "access_token"))})}
            got = {k: j.result(timeout=180) for k, j in jobs.items()}
        self.assertEqual(got["aws"], "arn:aws:sts::%s:assumed-role/aws-role/credfs-aws" % ACCOUNT)
        self.assertIn("aws_session_token", parse_credentials(got["files"]["aws"]))
        sts = dict(self.fakes.issued("google", "sts"))
        iam = dict(self.fakes.issued("google", "iam"))
        azure = dict(self.fakes.issued("azure", "token"))
        self.assertIn(got["gcp"][0]["token"], sts)
        self.assertIn(got["sa"][0]["token"], iam)
        self.assertIn(got["az"][0]["token"], azure)
        self.assertIn(got["files"]["gcp"], sts)
        self.assertIn(got["files"]["sa"], iam)
        self.assertIn(got["files"]["az"], azure)
        for role in ("aws", "gcp", "sa", "az"):
            self.status_when(m, role, lambda s: s["state"] == "valid")


# fault -> (how the fakes are told, Google's code, Entra ID's code, retried)
FAULTS = {
    "error": ({"mode": "error", "status": 403},
              "unauthorized_client", "AADSTS700213", False),
    "http500": ({"mode": "http500"}, "INTERNAL", "AADSTS500011", True),
    "garbage": ({"mode": "garbage"}, "Malformed", "Malformed", False),
    "truncated": ({"mode": "truncated"}, "Transport", "Transport", True),
    "oversized": ({"mode": "oversized"}, "Malformed", "Malformed", False),
    "reset": ({"mode": "reset"}, "Transport", "Transport", True),
    "nothing": ({"mode": "hang", "hang_seconds": 30}, "Transport", "Transport", True),
}
ERROR_BODIES = {
    "google": {"error": "unauthorized_client",
               "error_description": "The given credential is rejected by the attribute condition."},
    "azure": {"error": "invalid_client", "error_codes": [700213],
              "error_description": "AADSTS700213: No matching federated identity record found "
                                   "for presented assertion subject 'x'."},
}


class TestBadEndpoints(CloudsTestCase):
    """An endpoint answering an error, garbage, a truncated or oversized
    body, a reset or nothing: EIO within wait_timeout, the error in status,
    retries only where they help, the daemon alive, recovery once healed."""

    def run_fault(self, name, how, google_code, azure_code, retried):
        for fake, endpoint in (("google", "sts"), ("azure", "token")):
            kw = dict(how)
            mode = kw.pop("mode")
            if mode == "error":
                kw["body"] = ERROR_BODIES[fake]
            self.fakes.fault(fake, mode, endpoint, **kw)
        m = self.mount_clouds({"gcp": self.gcp(), "az": self.azure()},
                              defaults="wait_timeout = 3\n", name="mnt-" + name)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda r: self.assert_eio(m, r, 3 + 1.5), ("gcp", "az")))
        for role, fake, endpoint, code in (("gcp", "google", "sts", google_code),
                                           ("az", "azure", "token", azure_code)):
            self.assertTrue(wait_for(lambda: m.status(role)["waiting"] is None
                                     and m.status(role)["last_error"], timeout=40), name)
            status = m.status(role)
            self.assertEqual(status["last_error"]["code"], code,
                             "%s %s: %s" % (name, role, status["last_error"]))
            self.assertEqual(status["state"], "error")
            # Every request credfs counted reached the endpoint once (no
            # retries of its own below the engine's) ...
            self.assertEqual(len(self.fakes.requests(fake, endpoint)), status["sts_calls"])
            # ... and was retried only when that helps: 3 attempts for a
            # retryable error, the first for a final one.  (On a loaded
            # machine an attempt may also time out: Transport, retried.)
            attempts = [l for l in m.output().splitlines()
                        if "role %s: request 1, attempt" % role in l and ": %s: " % code in l]
            self.assertTrue(attempts, "%s %s:\n%s" % (name, role, m.output()[-3000:]))
            for line in attempts:
                will_retry = line.endswith("(will retry)")
                self.assertEqual(will_retry, retried and " attempt 3 of 3" not in line, line)
        self.assertIsNone(m.proc.poll(), "the daemon died")
        self.fakes.clear_faults()
        for role in ("gcp", "az"):
            self.assertTrue(wait_for(lambda: read_errno(m.path(role, "access_token")) == 0,
                                     timeout=20), "%s: %s did not recover" % (name, role))
            self.status_when(m, role, lambda s: s["state"] == "valid")
        self.assert_no_secret_logged(m, self.read(m, "gcp", "access_token"),
                                     self.read(m, "az", "access_token"))
        m.stop()

    def test_faults(self):
        for name, (how, google_code, azure_code, retried) in FAULTS.items():
            with self.subTest(fault=name):
                try:
                    self.run_fault(name, how, google_code, azure_code, retried)
                finally:
                    self.fakes.reset()

    def test_impersonation_step_faults(self):
        """generateAccessToken failing once is retried with the token the
        exchange gave (no second exchange); failing for good shows its
        error and recovers."""
        m = self.mount_clouds({"sa": self.gcp_sa()}, defaults="wait_timeout = 4\n")
        self.fakes.fault("google", "http500", "iam", count=1)
        access = self.read(m, "sa", "access_token")
        iam = self.fakes.requests("google", "iam")
        self.assertEqual(len(self.fakes.requests("google", "sts")), 1)
        self.assertEqual(len(iam), 2)
        self.assertEqual(iam[0]["headers"]["authorization"], iam[1]["headers"]["authorization"])
        self.assertEqual(access, iam[1]["response"]["accessToken"])
        self.fakes.fault("google", "garbage", "iam")
        m2 = self.mount_clouds({"sa": self.gcp_sa()}, defaults="wait_timeout = 4\n", name="mnt2")
        self.assert_eio(m2, "sa", 6)
        err = self.last_error(m2, "sa")
        self.assertEqual(err.get("code"), "Malformed")
        self.assertIn("generateAccessToken", err["message"])
        self.fakes.clear_faults()
        self.assertTrue(wait_for(lambda: read_errno(m2.path("sa", "access_token")) == 0, timeout=20))
