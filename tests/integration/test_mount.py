"""The mount end to end against a local STS (moto behind a counting proxy):
real AWS clients read the mounted files."""
import configparser
import errno
import json
import os
import subprocess
import threading
import time

import boto3

from harness import (AWS_CLI, CREDFS, SYSTEM_PYTHON, CredfsTestCase, clean_aws_env,
                     is_mounted, keygen)
from sts_proxy import Fault

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE_FILES = ["config", "credentials", "env", "expiry", "process.json", "status", "token"]


class TestClients(CredfsTestCase):
    def test_aws_cli_v2_gets_assumed_role_identity(self):
        m = self.mount()
        env = clean_aws_env(AWS_SHARED_CREDENTIALS_FILE=m.path("app", "credentials"),
                            AWS_CONFIG_FILE=m.path("app", "config"))
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        ident = json.loads(out.stdout)
        self.assertEqual(ident["Arn"],
                         "arn:aws:sts::123456789012:assumed-role/app-role/credfs-app")
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)

    def test_boto3_gets_assumed_role_identity(self):
        m = self.mount(roles={"svc": "subject = system:serviceaccount:prod:svc\n"
                                     "session_name = svc-session\n"})
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = m.path("svc", "credentials")
        os.environ["AWS_CONFIG_FILE"] = m.path("svc", "config")
        try:
            session = boto3.session.Session()
            self.assertEqual(session.region_name, "ap-northeast-1")
            sts = session.client("sts", endpoint_url=self.moto.url)
            ident = sts.get_caller_identity()
        finally:
            del os.environ["AWS_SHARED_CREDENTIALS_FILE"]
            del os.environ["AWS_CONFIG_FILE"]
        self.assertEqual(ident["Arn"],
                         "arn:aws:sts::123456789012:assumed-role/svc-role/svc-session")
        creds = session.get_credentials()
        self.assertEqual(creds.method, "shared-credentials-file")

    def verify_token(self, m, kind):
        tok = m.read("app", "token")
        self.assertFalse(tok.endswith("\n"), "token ends with a newline")
        out = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "verify_jwt.py"),
                              m.path("keys.json"), m.path("app", "token"),
                              "https://oidc.example.com", "sts.amazonaws.com"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        v = json.loads(out.stdout)
        self.assertEqual(v["header"]["alg"], {"ec": "ES256", "rsa": "RS256"}[kind])
        self.assertEqual(v["header"]["typ"], "JWT")
        self.assertEqual(v["claims"]["sub"], "system:serviceaccount:prod:app")
        now = time.time()
        self.assertLessEqual(v["claims"]["iat"], now)
        self.assertAlmostEqual(v["claims"]["exp"] - now, 3600, delta=60)
        disc = json.loads(m.read(".well-known", "openid-configuration"))
        self.assertEqual(disc["issuer"], "https://oidc.example.com")
        self.assertEqual(disc["jwks_uri"], "https://oidc.example.com/keys.json")
        self.assertIn(v["header"]["alg"], disc["id_token_signing_alg_values_supported"])

    def test_token_verifies_with_pyjwt_es256(self):
        self.verify_token(self.mount(), "ec")

    def test_token_verifies_with_pyjwt_rs256(self):
        key = keygen(os.path.join(self.dir, "rsa.pem"), "rsa")
        self.verify_token(self.mount(key=key), "rsa")

    def test_sts_received_the_token_credfs_serves(self):
        m = self.mount()
        m.read("app", "credentials")
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["WebIdentityToken"], m.read("app", "token"))
        self.assertEqual(sent[0]["RoleArn"], "arn:aws:iam::123456789012:role/app-role")
        self.assertEqual(sent[0]["RoleSessionName"], "credfs-app")
        self.assertEqual(sent[0]["DurationSeconds"], "3600")


class TestFiles(CredfsTestCase):
    def test_files_are_complete_documents(self):
        m = self.mount()
        ini = configparser.ConfigParser()
        ini.read_string(m.read("app", "credentials"))
        self.assertEqual(ini.sections(), ["default"])
        d = ini["default"]
        self.assertEqual(sorted(d.keys()),
                         ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"])
        self.assertTrue(d["aws_access_key_id"].startswith("ASIA"))
        cfg = configparser.ConfigParser()
        cfg.read_string(m.read("app", "config"))
        self.assertEqual(cfg["default"]["region"], "ap-northeast-1")
        expiry = m.read("app", "expiry")
        self.assertRegex(expiry, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$")
        proc = json.loads(m.read("app", "process.json"))
        self.assertEqual(proc["Version"], 1)
        self.assertEqual(proc["AccessKeyId"], d["aws_access_key_id"])
        self.assertEqual(proc["SecretAccessKey"], d["aws_secret_access_key"])
        self.assertEqual(proc["SessionToken"], d["aws_session_token"])
        self.assertEqual(proc["Expiration"] + "\n", expiry)
        env = dict(line.split("=", 1) for line in m.read("app", "env").splitlines()
                   if line and not line.startswith("#"))
        self.assertEqual(env["AWS_ACCESS_KEY_ID"], d["aws_access_key_id"])
        self.assertEqual(env["AWS_SECRET_ACCESS_KEY"], d["aws_secret_access_key"])
        self.assertEqual(env["AWS_SESSION_TOKEN"], d["aws_session_token"])
        status_text = m.read("app", "status")
        status = json.loads(status_text)
        self.assertEqual(status["state"], "valid")
        self.assertEqual(status["expiration"] + "\n", expiry)
        self.assertEqual(status["sts_calls"], 1)
        self.assertIsNone(status["last_error"])
        for secret in (d["aws_secret_access_key"], d["aws_session_token"]):
            self.assertNotIn(secret, status_text)
        # Still one exchange for all of the above.
        self.assertEqual(self.proxy.count(), 1)

    def test_tree_listing_and_modes(self):
        m = self.mount(roles={"a": "subject = a\n", "b": "subject = b\nmode = 0440\n"})
        self.assertEqual(sorted(os.listdir(m.mnt)), [".well-known", "a", "b", "keys.json", "metrics"])
        self.assertEqual(sorted(os.listdir(m.path("a"))), ROLE_FILES)
        self.assertEqual(os.stat(m.path("a")).st_mode & 0o777, 0o500)
        self.assertEqual(os.stat(m.path("b")).st_mode & 0o777, 0o550)
        self.assertEqual(os.stat(m.path("a", "credentials")).st_mode & 0o777, 0o400)
        self.assertEqual(os.stat(m.path("b", "credentials")).st_mode & 0o777, 0o440)
        self.assertEqual(os.listdir(m.path(".well-known")), ["openid-configuration"])

    def test_ls_and_stat_make_no_sts_call(self):
        roles = {"r%d" % i: "subject = s%d\n" % i for i in range(20)}
        m = self.mount(roles=roles)
        out = subprocess.run(["ls", "-laR", m.mnt], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("credentials", out.stdout)
        for name in roles:
            for f in ROLE_FILES:
                os.stat(m.path(name, f))
        self.assertEqual(self.proxy.count(), 0)
        self.assertEqual(m.status("r0")["state"], "idle")
        self.assertEqual(m.status("r0")["sts_calls"], 0)
        self.assertEqual(self.proxy.count(), 0)

    def test_inode_numbers_are_stable(self):
        m = self.mount()
        before = {f: os.stat(m.path("app", f)).st_ino for f in ROLE_FILES}
        m.read("app", "credentials")
        after = {f: os.stat(m.path("app", f)).st_ino for f in ROLE_FILES}
        self.assertEqual(before, after)
        self.assertEqual(len(set(before.values())), len(ROLE_FILES))

    def test_read_only(self):
        m = self.mount()
        cases = [
            lambda: open(m.path("app", "credentials"), "w"),
            lambda: open(m.path("app", "new"), "w"),
            lambda: os.mkdir(m.path("newdir")),
            lambda: os.unlink(m.path("app", "token")),
            lambda: os.rename(m.path("app", "token"), m.path("app", "t2")),
            lambda: os.chmod(m.path("app", "credentials"), 0o644),
            lambda: os.rmdir(m.path("app")),
            lambda: os.symlink("x", m.path("link")),
        ]
        for i, op in enumerate(cases):
            with self.assertRaises(OSError, msg="case %d" % i) as cm:
                op()
            self.assertIn(cm.exception.errno, (errno.EROFS, errno.EACCES), "case %d" % i)
        self.assertEqual(sorted(os.listdir(m.path("app"))), ROLE_FILES)

    def test_unknown_names_are_enoent(self):
        m = self.mount()
        for p in [("nope",), ("app", "nope"), (".well-known", "nope")]:
            with self.assertRaises(FileNotFoundError):
                os.stat(m.path(*p))


class TestConcurrency(CredfsTestCase):
    def test_32_simultaneous_first_reads_make_one_sts_call(self):
        m = self.mount()
        barrier = threading.Barrier(32)
        results, errors = [], []

        def reader():
            try:
                barrier.wait()
                results.append(m.read("app", "credentials"))
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 32)
        self.assertEqual(len(set(results)), 1)
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)
        self.assertEqual(m.status("app")["sts_calls"], 1)

    def test_roles_nobody_reads_cost_nothing(self):
        m = self.mount(roles={"a": "subject = a\n", "b": "subject = b\n", "c": "subject = c\n"})
        m.read("b", "credentials")
        m.read("b", "credentials")
        self.assertEqual(self.proxy.count(), 1)
        self.assertEqual(self.proxy.params("AssumeRoleWithWebIdentity")[0]["RoleArn"],
                         "arn:aws:iam::123456789012:role/b-role")
        self.assertEqual(m.status("a")["state"], "idle")


class TestFailures(CredfsTestCase):
    def test_sts_error_gives_eio_and_status_says_why(self):
        self.proxy.fail_always(Fault(status=403, code="AccessDenied",
                                     message="Not authorized to perform sts:AssumeRoleWithWebIdentity"))
        m = self.mount()
        with self.assertRaises(OSError) as cm:
            m.read("app", "credentials")
        self.assertEqual(cm.exception.errno, errno.EIO)
        st = m.status("app")
        self.assertEqual(st["state"], "error")
        self.assertEqual(st["last_error"]["code"], "AccessDenied")
        self.assertIn("Not authorized", st["last_error"]["message"])
        # AccessDenied is final: one attempt, no retry.
        self.assertEqual(self.proxy.count(), 1)
        # The mount keeps answering everything else.
        self.assertEqual(sorted(os.listdir(m.path("app"))), ROLE_FILES)
        self.assertIn("region", m.read("app", "config"))
        self.assertIn("keys", m.read("keys.json"))
        # Recovery once STS is healthy (after the short hold-off).
        self.proxy.heal()
        deadline = time.time() + 15
        while True:
            try:
                self.assertIn("aws_access_key_id", m.read("app", "credentials"))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.assertEqual(m.status("app")["state"], "valid")
        self.assertIn("credfs", m.output())
        self.assertIn("AccessDenied", m.output())

    def test_throttling_is_retried(self):
        self.proxy.faults = [Fault(status=400, code="Throttling", message="Rate exceeded")]
        m = self.mount()
        self.assertIn("aws_session_token", m.read("app", "credentials"))
        self.assertEqual(self.proxy.count(), 2)

    def test_unreachable_sts_fails_within_wait_timeout(self):
        from sts_proxy import free_port
        m = self.mount(endpoint="http://127.0.0.1:%d" % free_port(),
                       defaults="wait_timeout = 3\n")
        t0 = time.time()
        with self.assertRaises(OSError) as cm:
            m.read("app", "credentials")
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(time.time() - t0, 3 + 2)
        t0 = time.time()
        st = m.status("app")
        self.assertLess(time.time() - t0, 1)
        deadline = time.time() + 10
        while st["last_error"] is None and time.time() < deadline:
            time.sleep(0.2)
            st = m.status("app")
        self.assertEqual(st["last_error"]["code"], "Transport")

    def test_hanging_sts_does_not_block_the_mount(self):
        self.proxy.fail_always(Fault(kind="hang", seconds=4))
        m = self.mount(roles={"slow": "subject = s\n", "other": "subject = o\n"},
                       defaults="wait_timeout = 2\n")
        errors = []

        def slow_reader():
            try:
                m.read("slow", "credentials")
            except OSError as e:
                errors.append(e.errno)

        threads = [threading.Thread(target=slow_reader) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.time()
        os.listdir(m.mnt)
        m.read("keys.json")
        m.status("slow")
        m.read("other", "config")
        self.assertLess(time.time() - t0, 1.0)
        for t in threads:
            t.join(10)
        self.assertEqual(errors, [errno.EIO] * 8)


class TestCommands(CredfsTestCase):
    def test_bad_config_exits_2_with_file_line_and_mounts_nothing(self):
        cfg = os.path.join(self.dir, "bad.conf")
        with open(cfg, "w") as f:
            f.write("[credfs]\nregion = ap-northeast-1\nduration_seconds = ten\n"
                    "[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
                    "web_identity_token_file = /dev/null\n")
        mnt = os.path.join(self.dir, "mnt")
        os.mkdir(mnt)
        r = subprocess.run([CREDFS, "-f", cfg, mnt], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:3:" % cfg, r.stderr)
        self.assertIn("duration_seconds", r.stderr)
        self.assertFalse(is_mounted(mnt))
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:3:" % cfg, r.stderr)

    def test_check_lists_roles(self):
        cfg = os.path.join(self.dir, "ok.conf")
        with open(cfg, "w") as f:
            f.write(self.config_text(roles={"app": "subject = a\n", "ci": "subject = c\n"}))
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^app\tarn:aws:iam::123456789012:role/app-role\t")
        self.assertRegex(r.stdout, r"(?m)^ci\t")

    def test_group_readable_key_is_a_config_error(self):
        os.chmod(self.key, 0o640)
        cfg = os.path.join(self.dir, "k.conf")
        with open(cfg, "w") as f:
            f.write(self.config_text())
        r = subprocess.run([CREDFS, "check", cfg], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        line = self.config_text().splitlines().index("key = %s" % self.key) + 1
        self.assertIn("%s:%d:" % (cfg, line), r.stderr)

    def test_keygen_never_overwrites(self):
        path = os.path.join(self.dir, "k.pem")
        r = subprocess.run([CREDFS, "keygen", "--type", "rsa", "--bits", "2048", path])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            before = f.read()
        self.assertIn("BEGIN PRIVATE KEY", before)
        r = subprocess.run([CREDFS, "keygen", path], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), before)

    def test_oidc_command_matches_the_mount(self):
        m = self.mount()
        out = os.path.join(self.dir, "site")
        r = subprocess.run([CREDFS, "oidc", m.config, out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "keys.json")) as f:
            self.assertEqual(f.read(), m.read("keys.json"))
        with open(os.path.join(out, ".well-known", "openid-configuration")) as f:
            self.assertEqual(f.read(), m.read(".well-known", "openid-configuration"))

    def test_version_and_help(self):
        r = subprocess.run([CREDFS, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^credfs \d+\.\d+\.\d+")
        r = subprocess.run([CREDFS, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for word in ("keygen", "oidc", "check", "allow_other"):
            self.assertIn(word, r.stdout)
        r = subprocess.run([CREDFS], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


class TestSecrets(CredfsTestCase):
    def test_no_secret_in_debug_log(self):
        m = self.mount(extra_args=["-d"])
        creds = configparser.ConfigParser()
        creds.read_string(m.read("app", "credentials"))
        token = m.read("app", "token")
        for f in ROLE_FILES:
            m.read("app", f)
        m.stop()
        log = m.output()
        self.assertIn("renewed", log)      # the log is there, and at debug level
        d = creds["default"]
        for name, secret in (("secret key", d["aws_secret_access_key"]),
                             ("session token", d["aws_session_token"]),
                             ("token signature", token.rsplit(".", 1)[1]),
                             ("token", token)):
            self.assertNotIn(secret, log, "%s found in the debug log" % name)
        with open(self.key) as f:
            pem_body = "".join(f.read().splitlines()[1:-1])
        self.assertNotIn(pem_body[:40], log)
