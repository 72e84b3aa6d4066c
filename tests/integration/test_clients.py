"""Every client people use, reading a real mount: the AWS CLI v2 and v1,
boto3 (also as a long-running process across renewals, through
credential_process and through web identity), the AWS SDK for JavaScript v3
and jose from npm, and the role directory bind-mounted as someone's ~/.aws."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import boto3

from harness import AWS_CLI, ROOT, CredfsTestCase, clean_aws_env, is_mounted, keygen, npm_ci

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")
ARN = "arn:aws:sts::123456789012:assumed-role/%s-role/%s"

# Renew every ~9 s while read: 1% of a 900 s session.  botocore re-runs
# credential_process on every call when fewer than 15 minutes remain, which
# is always the case for a 900 s session.
FAST_RENEWAL = "duration_seconds = 900\nrefresh_fraction = 0.01\nmin_validity = 60\n"


def aws_cli_v1():
    """The pyenv AWS CLI (version 1), or None."""
    candidates = [os.path.join(os.path.dirname(sys.executable), "aws"),
                  shutil.which("aws"), os.path.expanduser("~/.pyenv/shims/aws")]
    for c in candidates:
        if c and os.path.exists(c) and os.path.realpath(c) != os.path.realpath(AWS_CLI):
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=60)
            if (out.stdout + out.stderr).startswith("aws-cli/1."):
                return c
    return None


def no_aws_env(**extra):
    """An environment without a single AWS_ variable (and no IMDS opt-out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def environ(**values):
    """Sets os.environ entries for the block (None removes), then restores."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def key_id(credentials_text):
    for line in credentials_text.splitlines():
        if line.startswith("aws_access_key_id = "):
            return line.split(" = ", 1)[1]
    raise AssertionError("no aws_access_key_id in the credentials file")


class BindMountCase(CredfsTestCase):
    """Bind mounts made with self.bind() are undone before credfs unmounts."""

    def setUp(self):
        super().setUp()
        self.binds = []

    def tearDown(self):
        for target in reversed(self.binds):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        super().tearDown()

    def bind(self, source, target):
        r = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.binds.append(target)
        return target


class TestCli(BindMountCase):
    def run_cli(self, cli, env):
        out = subprocess.run([cli, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_aws_cli_v1_gets_assumed_role_identity(self):
        cli = aws_cli_v1()
        self.assertIsNotNone(cli, "no AWS CLI version 1 (the pyenv aws) found")
        m = self.mount()
        env = clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("app", "credentials"),
                            AWS_CONFIG_FILE=m.path("app", "config"))
        ident = self.run_cli(cli, env)
        self.assertEqual(ident["Arn"], ARN % ("app", "credfs-app"))
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)

    def test_role_dir_bind_mounted_as_home_aws_needs_no_aws_variables(self):
        home = tempfile.mkdtemp(prefix="home-", dir=self.dir)
        dot_aws = os.path.join(home, ".aws")
        os.mkdir(dot_aws)
        m = self.mount(roles={"app": "subject = system:serviceaccount:prod:app\n"
                                     "config_style = process\n"
                                     "consumer_path = %s\n" % dot_aws})
        self.bind(m.path("app"), dot_aws)
        with open(os.path.join(dot_aws, "config")) as f:
            self.assertEqual(f.read(), "[default]\nregion = ap-northeast-1\n"
                             "credential_process = cat %s/process.json\n" % dot_aws)
        env = no_aws_env(HOME=home)
        clis = [AWS_CLI, aws_cli_v1()]
        self.assertIsNotNone(clis[1], "no AWS CLI version 1 (the pyenv aws) found")
        for cli in clis:
            ident = self.run_cli(cli, env)
            self.assertEqual(ident["Arn"], ARN % ("app", "credfs-app"), cli)
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)

    def test_bind_mounted_file_shows_renewed_content(self):
        m = self.mount(defaults=FAST_RENEWAL)
        target = os.path.join(self.dir, "credentials-elsewhere")
        open(target, "w").close()
        self.bind(m.path("app", "credentials"), target)
        with open(target) as f:
            first = key_id(f.read())
        # A read after the refresh point starts a renewal; a later read
        # through the same bind mount must show the new keys.
        deadline = time.time() + 40
        seen = first
        while time.time() < deadline and seen == first:
            time.sleep(1)
            with open(target) as f:
                seen = key_id(f.read())
        self.assertNotEqual(seen, first, "the bind-mounted file never showed renewed keys")
        self.assertEqual(seen, key_id(m.read("app", "credentials")))
        self.assertGreaterEqual(m.status("app")["renewals"], 2)


class TestBoto3(BindMountCase):
    def test_long_running_session_renews_through_credential_process(self):
        m = self.mount(defaults=FAST_RENEWAL,
                       roles={"app": "subject = system:serviceaccount:prod:app\n"
                                     "config_style = process\n"})
        self.assertEqual(m.read("app", "config"),
                         "[default]\nregion = ap-northeast-1\n"
                         "credential_process = cat %s/process.json\n" % m.path("app"))
        nowhere = os.path.join(self.dir, "no-credentials-file")
        with environ(AWS_CONFIG_FILE=m.path("app", "config"), AWS_SHARED_CREDENTIALS_FILE=nowhere,
                     AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_SESSION_TOKEN=None,
                     AWS_PROFILE=None, AWS_EC2_METADATA_DISABLED="true"):
            session = boto3.session.Session()
            sts = session.client("sts", endpoint_url=self.moto.url)
            keys, calls, deadline = [], 0, time.time() + 60
            while time.time() < deadline and len(set(keys)) < 3:
                ident = sts.get_caller_identity()
                calls += 1
                self.assertEqual(ident["Arn"], ARN % ("app", "credfs-app"))
                keys.append(session.get_credentials().get_frozen_credentials().access_key)
                time.sleep(0.5)
        self.assertEqual(session.get_credentials().method, "custom-process")
        self.assertGreaterEqual(len(set(keys)), 3,
                                "one session saw %d key ids over %d calls"
                                % (len(set(keys)), calls))
        self.assertGreaterEqual(m.status("app")["renewals"], 3)

    def test_web_identity_profile_exchanges_credfs_token_itself(self):
        # The directory is the process's ~/.aws, credentials file and all:
        # botocore takes a web identity profile before that file.
        home = tempfile.mkdtemp(prefix="home-", dir=self.dir)
        dot_aws = os.path.join(home, ".aws")
        os.mkdir(dot_aws)
        m = self.mount(roles={"web": "subject = system:serviceaccount:prod:web\n"
                                     "config_style = web_identity\n"
                                     "session_name = web-session\n"
                                     "consumer_path = %s\n" % dot_aws})
        self.bind(m.path("web"), dot_aws)
        self.assertEqual(m.read("web", "config"),
                         "[default]\nregion = ap-northeast-1\n"
                         "role_arn = arn:aws:iam::123456789012:role/web-role\n"
                         "web_identity_token_file = %s/token\n"
                         "role_session_name = web-session\n" % dot_aws)
        code = ("import boto3, json\n"
                "s = boto3.session.Session()\n"
                "ident = s.client('sts').get_caller_identity()\n"
                "print(json.dumps({'Arn': ident['Arn'], 'method': s.get_credentials().method}))\n")
        env = no_aws_env(HOME=home, AWS_ENDPOINT_URL_STS=self.proxy.url)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        self.assertEqual(got["Arn"], ARN % ("web", "web-session"))
        self.assertEqual(got["method"], "assume-role-with-web-identity")
        # The SDK made an exchange of its own (botocore also parses the
        # credentials file, which makes credfs exchange too), with the
        # token credfs serves.
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(len(sent) - m.status("web")["sts_calls"], 1)
        token = m.read("web", "token")
        for params in sent:
            self.assertEqual(params["WebIdentityToken"], token)
            self.assertEqual(params["RoleSessionName"], "web-session")


class TestJavaScriptSdk(CredfsTestCase):
    """The AWS SDK for JavaScript v3 and jose, installed from npm here."""

    @classmethod
    def setUpClass(cls):
        npm_ci(JS_DIR)     # a missing registry fails these tests, not skips them
        super().setUpClass()

    def node(self, script, *args, env=None):
        out = subprocess.run(["node", os.path.join(JS_DIR, script)] + list(args),
                             env=env or clean_aws_env(), capture_output=True, text=True,
                             timeout=60, cwd=JS_DIR)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        return json.loads(out.stdout)

    def test_from_ini(self):
        m = self.mount()
        got = self.node("whoami.mjs", "ini", self.moto.url,
                        env=clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("app", "credentials"),
                                          AWS_CONFIG_FILE=m.path("app", "config")))
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))
        self.assertEqual(got["AccessKeyId"], key_id(m.read("app", "credentials")))

    def test_from_process(self):
        m = self.mount(roles={"app": "subject = system:serviceaccount:prod:app\n"
                                     "config_style = process\n"})
        got = self.node("whoami.mjs", "process", self.moto.url,
                        env=clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.dir, "none"),
                                          AWS_CONFIG_FILE=m.path("app", "config")))
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))
        self.assertEqual(got["AccessKeyId"], json.loads(m.read("app", "process.json"))["AccessKeyId"])

    def test_from_token_file(self):
        m = self.mount()
        got = self.node("whoami.mjs", "tokenfile", self.proxy.url, m.path("app"),
                        "arn:aws:iam::123456789012:role/app-role", "js-session")
        self.assertEqual(got["Arn"], ARN % ("app", "js-session"))
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(len(sent), 1, "the SDK, not credfs, makes the exchange")
        self.assertEqual(sent[0]["WebIdentityToken"], m.read("app", "token"))

    def verify(self, m, alg):
        got = self.node("verify_jwt.mjs", m.path("keys.json"), m.path("app", "token"),
                        "https://oidc.example.com", "sts.amazonaws.com")
        self.assertEqual(got["header"]["alg"], alg)
        self.assertEqual(got["claims"]["sub"], "system:serviceaccount:prod:app")
        keys = json.loads(m.read("keys.json"))["keys"]
        self.assertIn(got["header"]["kid"], [k["kid"] for k in keys])

    def test_jose_verifies_es256_token(self):
        self.verify(self.mount(), "ES256")

    def test_jose_verifies_rs256_token(self):
        self.verify(self.mount(key=keygen(os.path.join(self.dir, "rsa.pem"), "rsa")), "RS256")

    def test_jose_rejects_wrong_audience(self):
        m = self.mount()
        out = subprocess.run(["node", os.path.join(JS_DIR, "verify_jwt.mjs"), m.path("keys.json"),
                              m.path("app", "token"), "https://oidc.example.com", "other"],
                             capture_output=True, text=True, timeout=60, cwd=JS_DIR)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("aud", out.stderr)
