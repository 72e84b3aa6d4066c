"""The complete exchange engine end to end: role chaining against a moto
that checks SigV4 signatures and IAM policies, external token files,
endpoints from the environment, key rotation and clock skew."""
import base64
import calendar
import configparser
import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

import boto3
import botocore.exceptions

from harness import (ACCOUNT, AWS_CLI, CREDFS, SYSTEM_PYTHON, CredfsTestCase, Moto, Mount,
                     clean_aws_env, keygen, write_config)
from sts_proxy import StsProxy

HERE = os.path.dirname(os.path.abspath(__file__))
ISSUER = "https://oidc.example.com"
AUDIENCE = "sts.amazonaws.com"


def role_arn(name):
    return "arn:aws:iam::%s:role/%s-role" % (ACCOUNT, name)


def parse_credentials(text):
    ini = configparser.ConfigParser()
    ini.read_string(text)
    return ini["default"]


def jwt_part(token, i):
    """Header (0) or payload (1) of a JWT, decoded, without verifying it."""
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def read_errno(path):
    try:
        with open(path) as f:
            f.read()
    except OSError as e:
        return e.errno
    return 0


def wait_for(predicate, timeout=10.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def allow_all(extra=()):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
                       + list(extra)})


def trust(condition=None):
    stmt = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"}
    if condition:
        stmt["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


class EnforcingCase(CredfsTestCase):
    """moto with SigV4 and IAM policy enforcement on from its first request
    (docs/testing.md).  The roles exist in moto's IAM:
    a-role may assume any role but c-role, so a c-role session obtained
    through b proves the request was signed with b's credentials.  Unsigned
    AssumeRoleWithWebIdentity needs a window: open_window(1) before a read
    that starts one."""

    @classmethod
    def setUpClass(cls):
        cls.moto = Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
        try:
            cls.proxy = StsProxy(cls.moto.port).start()
            cls.open_window(100)
            iam = boto3.client("iam", endpoint_url=cls.moto.url, region_name="us-east-1",
                               aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                               aws_secret_access_key="setup-only-not-a-secret-0000000000000000")
            deny_c = {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": role_arn("c")}
            for name, policy, cond in [
                    ("a", allow_all([deny_c]), None),
                    ("b", allow_all(), None),
                    ("c", allow_all(), None),
                    ("x", allow_all(), {"StringEquals": {"sts:ExternalId": "ext-123"}})]:
                iam.create_role(RoleName=name + "-role", AssumeRolePolicyDocument=trust(cond))
                iam.put_role_policy(RoleName=name + "-role", PolicyName="p", PolicyDocument=policy)
            cls.open_window(0)
        except BaseException:
            cls.moto.stop()
            raise

    @classmethod
    def open_window(cls, n):
        """The next n requests to moto go unchecked; 0 closes the window."""
        req = urllib.request.Request(cls.moto.url + "/moto-api/reset-auth", data=str(n).encode(),
                                     headers={"Content-Type": "text/plain"}, method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def sts_client(self, creds, secret=None):
        return boto3.client("sts", endpoint_url=self.moto.url, region_name="ap-northeast-1",
                            aws_access_key_id=creds["aws_access_key_id"],
                            aws_secret_access_key=secret or creds["aws_secret_access_key"],
                            aws_session_token=creds["aws_session_token"])

    def error_code(self, call):
        try:
            call()
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        return None


class TestChainingSigned(EnforcingCase):
    CHAIN = {"a": "subject = system:serviceaccount:prod:a\n",
             "b": "source_role = a\n",
             "c": "source_role = b\n"}

    def test_three_role_chain_under_signature_enforcement(self):
        m = self.mount(roles=self.CHAIN)
        self.open_window(1)          # for a's unsigned AssumeRoleWithWebIdentity
        creds = parse_credentials(m.read("c", "credentials"))
        # One exchange per role: a by web identity, b and c by AssumeRole.
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)
        self.assertEqual(self.proxy.count("AssumeRole"), 2)
        self.assertEqual([p["RoleArn"] for p in self.proxy.params("AssumeRole")],
                         [role_arn("b"), role_arn("c")])
        # The window is closed: moto checks every signature from here on.
        # The AWS CLI, reading the mounted files, gets c's identity.
        env = clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("c", "credentials"),
                            AWS_CONFIG_FILE=m.path("c", "config"))
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["Arn"],
                         "arn:aws:sts::%s:assumed-role/c-role/credfs-c" % ACCOUNT)
        # The same call with a wrong secret or an unknown key is refused, so
        # the success above was a verified signature.
        bad = creds["aws_secret_access_key"][:-4] + "AAAA"
        self.assertEqual(self.error_code(lambda: self.sts_client(creds, bad).get_caller_identity()),
                         "SignatureDoesNotMatch")
        unknown = dict(creds, aws_access_key_id="ASIA" + "Z" * 16)
        self.assertEqual(self.error_code(lambda: self.sts_client(unknown).get_caller_identity()),
                         "InvalidClientTokenId")
        # Reading the rest of the chain costs nothing more.
        for role in ("a", "b", "c"):
            m.read(role, "credentials")
        self.assertEqual(self.proxy.count(), 3)
        st = m.status("c")
        self.assertEqual(st["state"], "valid")
        self.assertEqual(st["token_source"], "source_role")
        self.assertEqual(st["source_role"], "b")
        self.assertEqual(st["assumed_role_arn"],
                         "arn:aws:sts::%s:assumed-role/c-role/credfs-c" % ACCOUNT)
        self.assertEqual(st["sts_calls"], 1)
        self.assertEqual(read_errno(m.path("c", "token")), errno.ENOENT)

    def test_chained_request_is_signed_by_its_source_role(self):
        # a-role may not assume c-role: chaining c straight from a must be
        # refused by moto's policy check, where c through b succeeded.
        m = self.mount(roles={"a": self.CHAIN["a"], "c": "source_role = a\n"})
        self.open_window(1)
        self.assertEqual(read_errno(m.path("c", "credentials")), errno.EIO)
        self.assertEqual(self.proxy.count("AssumeRole"), 1)
        st = m.status("c")
        self.assertEqual(st["state"], "error")
        self.assertEqual(st["last_error"]["code"], "AccessDenied")
        self.assertEqual(m.status("a")["state"], "valid")

    def test_chained_duration_is_capped_at_3600_and_status_says_why(self):
        m = self.mount(roles={"a": self.CHAIN["a"] + "duration_seconds = 7200\n",
                              "b": "source_role = a\nduration_seconds = 7200\n"})
        self.open_window(1)
        t0 = time.time()
        m.read("b", "credentials")
        self.assertEqual(self.proxy.params("AssumeRoleWithWebIdentity")[0]["DurationSeconds"],
                         "7200")
        self.assertEqual(self.proxy.params("AssumeRole")[0]["DurationSeconds"], "3600")
        st = m.status("b")
        self.assertEqual(st["duration_seconds"], 3600)
        self.assertIn("3600", st["note"])
        self.assertIn("chain", st["note"])
        expiry = calendar.timegm(time.strptime(m.read("b", "expiry").strip(),
                                               "%Y-%m-%dT%H:%M:%SZ"))
        self.assertAlmostEqual(expiry - t0, 3600, delta=60)
        self.assertNotIn("note", m.status("a"))

    def test_assume_role_extras_reach_sts(self):
        policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
        m = self.mount(roles={
            "a": self.CHAIN["a"],
            "x": "source_role = a\nexternal_id = ext-123\n"
                 "tags = team=ops, env=prod\ntransitive_tag_keys = team\n"
                 "source_identity = alice@example.com\n"
                 "policy = %s\n"
                 "policy_arns = arn:aws:iam::aws:policy/ReadOnlyAccess, "
                 "arn:aws:iam::%s:policy/extra\n" % (policy, ACCOUNT)})
        self.open_window(1)
        creds = parse_credentials(m.read("x", "credentials"))
        p = self.proxy.params("AssumeRole")[0]
        self.assertEqual(p["RoleArn"], role_arn("x"))
        self.assertEqual(p["ExternalId"], "ext-123")
        self.assertEqual((p["Tags.member.1.Key"], p["Tags.member.1.Value"]), ("team", "ops"))
        self.assertEqual((p["Tags.member.2.Key"], p["Tags.member.2.Value"]), ("env", "prod"))
        self.assertNotIn("Tags.member.3.Key", p)
        self.assertEqual(p["TransitiveTagKeys.member.1"], "team")
        self.assertNotIn("TransitiveTagKeys.member.2", p)
        self.assertEqual(p["SourceIdentity"], "alice@example.com")
        self.assertEqual(json.loads(p["Policy"]), json.loads(policy))
        self.assertEqual(p["PolicyArns.member.1.arn"], "arn:aws:iam::aws:policy/ReadOnlyAccess")
        self.assertEqual(p["PolicyArns.member.2.arn"], "arn:aws:iam::%s:policy/extra" % ACCOUNT)
        # x-role's trust policy demands that ExternalId: moto checked it.
        ident = self.sts_client(creds).get_caller_identity()
        self.assertEqual(ident["Arn"], "arn:aws:sts::%s:assumed-role/x-role/credfs-x" % ACCOUNT)

    def test_wrong_external_id_is_refused(self):
        m = self.mount(roles={"a": self.CHAIN["a"],
                              "x": "source_role = a\nexternal_id = ext-999\n"})
        self.open_window(1)
        self.assertEqual(read_errno(m.path("x", "credentials")), errno.EIO)
        self.assertEqual(self.proxy.params("AssumeRole")[0]["ExternalId"], "ext-999")
        self.assertEqual(m.status("x")["last_error"]["code"], "AccessDenied")


class TestChainConfig(unittest.TestCase):
    """Chains that cannot work are configuration errors: exit 2, FILE:LINE."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="credfs-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, text):
        cfg = write_config(os.path.join(self.dir, "c.conf"), text)
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True, timeout=20)
        return cfg, r

    def test_cycle_is_a_config_error(self):
        cfg, r = self.check(
            "[credfs]\nregion = eu-west-1\n\n"
            "[role a]\nrole_arn = %s\nsource_role = c\n\n"      # line 4, source_role line 6
            "[role b]\nrole_arn = %s\nsource_role = a\n\n"      # line 8
            "[role c]\nrole_arn = %s\nsource_role = b\n"        # line 12
            % (role_arn("a"), role_arn("b"), role_arn("c")))
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:6:" % cfg, r.stderr)
        self.assertIn("a -> c -> b -> a", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_self_cycle_is_a_config_error(self):
        cfg, r = self.check("[credfs]\nregion = eu-west-1\n"
                            "[role a]\nrole_arn = %s\nsource_role = a\n" % role_arn("a"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:5:" % cfg, r.stderr)
        self.assertIn("loops", r.stderr)

    def test_missing_source_role_is_a_config_error(self):
        cfg, r = self.check("[credfs]\nregion = eu-west-1\n"
                            "[role b]\nrole_arn = %s\nsource_role = nowhere\n" % role_arn("b"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:5:" % cfg, r.stderr)
        self.assertIn('"nowhere"', r.stderr)

    def test_good_chain_is_listed(self):
        cfg, r = self.check(
            "[credfs]\nregion = eu-west-1\n"
            "[role a]\nrole_arn = %s\nweb_identity_token_file = /run/a\n"
            "[role b]\nrole_arn = %s\nsource_role = a\n" % (role_arn("a"), role_arn("b")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^b\t%s\tchained from a\t" % role_arn("b"))


class TestTokenFile(CredfsTestCase):
    def token_path(self, name="token"):
        return os.path.join(self.dir, name)

    def write_token(self, text, name="token"):
        path = self.token_path(name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)      # as kubelet does: readers see old or new
        return path

    def test_token_file_is_sent_and_shown_and_reread(self):
        first, second = "eyJ0eXAi.first-token.sig1", "eyJ0eXAi.second-token.sig2"
        path = self.write_token(first)
        # Renewal due 2 s into a 900 s session, so the next exchange comes soon.
        m = self.mount(roles={"ci": "web_identity_token_file = %s\n"
                                    "duration_seconds = 900\nmin_validity = 0\n"
                                    "refresh_fraction = 0.002\n" % path})
        self.assertEqual(m.read("ci", "token"), first)
        m.read("ci", "credentials")
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["WebIdentityToken"], first)
        self.assertEqual(m.status("ci")["token_source"], "token_file")
        self.write_token(second)
        # The mirror follows within a second (its attributes live that long,
        # so that no reader ever sees two versions in one document).
        self.assertTrue(wait_for(lambda: m.read("ci", "token") == second, 2))
        time.sleep(2.0)
        m.read("ci", "credentials")      # past the refresh point: renews in the background
        self.assertTrue(wait_for(lambda: self.proxy.count("AssumeRoleWithWebIdentity") >= 2))
        self.assertEqual(self.proxy.params("AssumeRoleWithWebIdentity")[1]["WebIdentityToken"],
                         second)

    def test_missing_or_empty_token_file_is_eio_and_status_says_why(self):
        missing = self.token_path("missing")
        empty = self.write_token("", "empty")
        m = self.mount(roles={"gone": "web_identity_token_file = %s\n" % missing,
                              "blank": "web_identity_token_file = %s\n" % empty,
                              "app": "subject = system:serviceaccount:prod:app\n"})
        self.assertEqual(read_errno(m.path("gone", "credentials")), errno.EIO)
        self.assertEqual(read_errno(m.path("gone", "token")), errno.EIO)
        st = m.status("gone")
        self.assertEqual(st["state"], "error")
        self.assertEqual(st["last_error"]["code"], "TokenFile")
        self.assertIn(missing, st["last_error"]["message"])
        self.assertIn("No such file", st["last_error"]["message"])
        self.assertEqual(read_errno(m.path("blank", "credentials")), errno.EIO)
        st = m.status("blank")
        self.assertEqual(st["last_error"]["code"], "TokenFile")
        self.assertIn("empty", st["last_error"]["message"])
        # Nothing reached STS, the daemon is alive and other roles work.
        self.assertEqual(self.proxy.count(), 0)
        self.assertIsNone(m.proc.poll())
        parse_credentials(m.read("app", "credentials"))
        # Once the file appears the role recovers (after the short hold-off).
        self.write_token("eyJ0eXAi.now-here.sig", "missing")
        self.assertTrue(wait_for(lambda: read_errno(m.path("gone", "credentials")) == 0,
                                 timeout=15, step=0.5))
        st = m.status("gone")
        self.assertEqual(st["state"], "valid")
        self.assertIsNone(st["last_error"])


class TestEndpointFromEnvironment(CredfsTestCase):
    def config_without_endpoint(self):
        return write_config(os.path.join(self.dir, "env.conf"),
                            "[credfs]\nregion = ap-northeast-1\nwait_timeout = 5\n"
                            "[signer]\nkey = %s\nissuer = %s\n"
                            "[role app]\nrole_arn = %s\nsubject = system:serviceaccount:prod:app\n"
                            % (self.key, ISSUER, role_arn("app")))

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update(kw)
        return e

    def test_aws_endpoint_url_sts_from_the_daemon_environment(self):
        cfg = self.config_without_endpoint()
        m = Mount(cfg, os.path.join(self.dir, "mnt"),
                  env=self.env(AWS_ENDPOINT_URL_STS=self.proxy.url + "/",
                               AWS_ENDPOINT_URL="http://127.0.0.1:9"))
        self.mounts.append(m)
        m.start()
        creds = parse_credentials(m.read("app", "credentials"))
        self.assertTrue(creds["aws_access_key_id"])
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)
        self.assertEqual(m.status("app")["sts_endpoint"], self.proxy.url)

    def test_aws_endpoint_url_is_the_fallback(self):
        cfg = self.config_without_endpoint()
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True,
                           env=self.env(AWS_ENDPOINT_URL=self.proxy.url))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^app\t.*\t%s$" % self.proxy.url)
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True,
                           env=self.env())
        self.assertRegex(r.stdout, r"(?m)^app\t.*\thttps://sts.ap-northeast-1.amazonaws.com$")

    def test_bad_endpoint_in_environment_names_the_variable(self):
        cfg = self.config_without_endpoint()
        mnt = os.path.join(self.dir, "mnt")
        os.mkdir(mnt)
        r = subprocess.run([CREDFS, "-f", cfg, mnt], capture_output=True, text=True, timeout=20,
                           env=self.env(AWS_ENDPOINT_URL_STS="http://10.1.2.3:4566"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s: environment variable AWS_ENDPOINT_URL_STS" % cfg, r.stderr)
        self.assertIn("loopback", r.stderr)


class TestKeyRotation(CredfsTestCase):
    def verify(self, jwks_path, token_path):
        out = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "verify_jwt.py"), jwks_path,
                              token_path, ISSUER, AUDIENCE],
                             capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout

    def save_token(self, m, name):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(m.read("app", "token"))
        return path

    def kids(self, jwks_text):
        return [k["kid"] for k in json.loads(jwks_text)["keys"]]

    def test_rotation_publish_switch_and_old_tokens_still_verify(self):
        old = self.key
        new = keygen(os.path.join(self.dir, "new.pem"))
        stranger = keygen(os.path.join(self.dir, "stranger.pem"))
        # Before: old signs.
        m0 = self.mount(name="before")
        old_token = self.save_token(m0, "old.jwt")
        with open(old_token) as f:
            old_kid = jwt_part(f.read(), 0)["kid"]
        m0.stop()
        # Step 1, publish: old still signs, new is published.
        m1 = self.mount(name="publish", signer_extra="previous_keys = %s\n" % new)
        with open(self.save_token(m1, "t1.jwt")) as f:
            self.assertEqual(jwt_part(f.read(), 0)["kid"], old_kid)
        kids1 = self.kids(m1.read("keys.json"))
        self.assertEqual(len(kids1), 2)
        self.assertEqual(kids1[0], old_kid)
        new_kid = kids1[1]
        m1.stop()
        # Step 2, switch: new signs, old is still published.
        m2 = self.mount(name="switch", key=new, signer_extra="previous_keys = %s\n" % old)
        new_token = self.save_token(m2, "new.jwt")
        with open(new_token) as f:
            self.assertEqual(jwt_part(f.read(), 0)["kid"], new_kid)
        self.assertEqual(self.kids(m2.read("keys.json")), [new_kid, old_kid])
        # credfs oidc publishes the same two keys.
        site = os.path.join(self.dir, "site")
        r = subprocess.run([CREDFS, "oidc", m2.config, site], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        jwks = os.path.join(site, "keys.json")
        with open(jwks) as f:
            text = f.read()
        self.assertEqual(self.kids(text), [new_kid, old_kid])
        self.assertEqual(text, m2.read("keys.json"))
        # Both tokens verify with PyJWT against the published keys.json.
        for token in (old_token, new_token):
            rc, out = self.verify(jwks, token)
            self.assertEqual(rc, 0, "a token failed to verify")
            self.assertEqual(json.loads(out)["claims"]["sub"], "system:serviceaccount:prod:app")
        # A token from a key that is not published does not.
        m3 = self.mount(name="stranger", key=stranger)
        rc, _ = self.verify(jwks, self.save_token(m3, "stranger.jwt"))
        self.assertNotEqual(rc, 0)
        # Step 3, retire: only new is published; the old token no longer verifies.
        m4 = self.mount(name="retire", key=new)
        retired = os.path.join(self.dir, "retired.json")
        with open(retired, "w") as f:
            f.write(m4.read("keys.json"))
        self.assertEqual(self.kids(m4.read("keys.json")), [new_kid])
        self.assertNotEqual(self.verify(retired, old_token)[0], 0)
        self.assertEqual(self.verify(retired, new_token)[0], 0)


class TestClockSkew(CredfsTestCase):
    def claims(self, m):
        return jwt_part(m.read("app", "token"), 1)

    def test_default_skew_is_30_seconds(self):
        m = self.mount()
        now = time.time()
        c = self.claims(m)
        self.assertAlmostEqual(c["iat"], now - 30, delta=5)
        self.assertEqual(c["nbf"], c["iat"])
        self.assertEqual(c["exp"] - c["iat"], 3600 + 30)

    def test_configured_skew_backdates_iat_and_nbf(self):
        m = self.mount(signer_extra="clock_skew = 60\ntoken_lifetime = 1200\n")
        now = time.time()
        c = self.claims(m)
        self.assertAlmostEqual(c["iat"], now - 60, delta=5)
        self.assertEqual(c["nbf"], c["iat"])
        self.assertAlmostEqual(c["exp"], now + 1200, delta=5)
        self.assertIsInstance(c["iat"], int)
        self.assertIsInstance(c["exp"], int)
