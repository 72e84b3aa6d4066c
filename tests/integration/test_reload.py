"""Live reload: SIGHUP re-reads the configuration while the mount is in
use.  Added roles appear, removed ones disappear, changed ones are renewed
on their next read, unchanged ones keep their credentials, a bad file is
refused with the old configuration kept, and readers are never
interrupted."""
import errno
import json
import os
import signal
import subprocess
import threading
import time

from harness import CredfsTestCase, keygen, read_errno
from sts_proxy import Fault


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class TestReload(CredfsTestCase):
    def reload(self, m, roles=None, **kw):
        before = m.output().count("reloaded ") + m.output().count("reload refused")
        with open(m.config, "w") as f:
            f.write(self.config_text(roles=roles, **kw))
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: m.output().count("reloaded ") + m.output().count("reload refused") > before,
                 what="the reload to be logged")

    def test_added_and_removed_roles(self):
        m = self.mount(roles={"a": "subject = a\n", "b": "subject = b\n"})
        creds_a = m.read("a", "credentials")
        ino_b = os.stat(m.path("b", "credentials")).st_ino
        self.reload(m, roles={"a": "subject = a\n", "c": "subject = c\n"})
        self.assertEqual(sorted(os.listdir(m.mnt)), [".well-known", "a", "c", "keys.json", "metrics"])
        with self.assertRaises(FileNotFoundError):
            os.stat(m.path("b", "credentials"))
        self.assertIn("aws_session_token", m.read("c", "credentials"))
        # A removed role's inode numbers are not handed to another role.
        self.assertNotEqual(os.stat(m.path("c", "credentials")).st_ino, ino_b)
        # The unchanged role kept its credentials: no new exchange for it.
        self.assertEqual(m.read("a", "credentials"), creds_a)
        self.assertEqual(self.proxy.count(role_arn="arn:aws:iam::123456789012:role/a-role"), 1)
        # Brought back, b is a fresh role.
        self.reload(m, roles={"a": "subject = a\n", "b": "subject = b\n", "c": "subject = c\n"})
        self.assertIn("aws_session_token", m.read("b", "credentials"))

    def test_changed_role_is_renewed_unchanged_kept(self):
        m = self.mount(roles={"a": "subject = a\n", "k": "subject = k\n"})
        ino = os.stat(m.path("a", "credentials")).st_ino
        old_a = m.read("a", "credentials")
        old_k = m.read("k", "credentials")
        self.reload(m, roles={"a": "subject = a\nsession_name = renamed\nregion = eu-west-1\n",
                              "k": "subject = k\n"})
        self.assertIn("region = eu-west-1", m.read("a", "config"))
        new_a = m.read("a", "credentials")
        self.assertNotEqual(new_a, old_a)
        sent = self.proxy.params("AssumeRoleWithWebIdentity")
        self.assertEqual(sent[-1]["RoleSessionName"], "renamed")
        self.assertEqual(m.read("k", "credentials"), old_k)
        self.assertEqual(self.proxy.count(), 3)
        self.assertEqual(os.stat(m.path("a", "credentials")).st_ino, ino)
        self.assertEqual(m.status("a")["session_name"], "renamed")

    def test_what_a_file_shows_follows_a_reload_of_the_same_length(self):
        # config, read and cached by the kernel, shows the region and the
        # session name: a change that keeps its length must still show.
        m = self.mount(roles={"a": "subject = a\nregion = us-east-1\nsession_name = one\n"})
        before = m.read("a", "config")
        self.assertIn("us-east-1", before)
        size = os.stat(m.path("a", "config")).st_size
        self.reload(m, roles={"a": "subject = a\nregion = eu-west-1\nsession_name = two\n"})
        after = m.read("a", "config")
        self.assertIn("eu-west-1", after)
        self.assertNotIn("us-east-1", after)
        self.assertEqual(os.stat(m.path("a", "config")).st_size, size)
        self.assertEqual(m.status("a")["session_name"], "two")

    def test_bad_config_is_refused_and_old_one_stays(self):
        m = self.mount()
        creds = m.read("app", "credentials")
        with open(m.config, "a") as f:
            f.write("[role broken]\nrole_arn = not-an-arn\nsubject = x\n")
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in m.output(), what="the refusal")
        line = len(self.config_text().splitlines()) + 2
        self.assertIn("%s:%d:" % (m.config, line), m.output())
        self.assertIsNone(m.proc.poll())
        self.assertEqual(sorted(os.listdir(m.mnt)), [".well-known", "app", "keys.json", "metrics"])
        self.assertEqual(m.read("app", "credentials"), creds)
        self.assertEqual(self.proxy.count(), 1)

    def test_readers_are_never_interrupted(self):
        m = self.mount(roles={"steady": "subject = s\n"})
        expected = m.read("steady", "credentials")
        stop = time.time() + 4
        errors = []
        reads = [0]

        def reader():
            while time.time() < stop:
                try:
                    if m.read("steady", "credentials") != expected:
                        errors.append("changed")
                    reads[0] += 1
                except OSError as e:
                    errors.append(e.errno)

        threads = [threading.Thread(target=reader) for _ in range(8)]
        for t in threads:
            t.start()
        for i in range(6):
            roles = {"steady": "subject = s\n"}
            roles.update({"extra%d" % k: "subject = e%d\n" % k for k in range(i % 3)})
            self.reload(m, roles=roles)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertGreater(reads[0], 100)
        self.assertEqual(self.proxy.count(), 1)

    def test_new_signing_key_is_published_and_used(self):
        m = self.mount()
        old = json.loads(m.read("keys.json"))["keys"][0]["kid"]
        old_token = m.read("app", "token")
        new_key = keygen(os.path.join(self.dir, "new.pem"))
        self.reload(m, key=new_key, signer_extra="previous_keys = %s\n" % self.key)
        kids = [k["kid"] for k in json.loads(m.read("keys.json"))["keys"]]
        self.assertEqual(len(kids), 2)
        self.assertEqual(kids[1], old)
        token = m.read("app", "token")
        self.assertNotEqual(token, old_token)
        header = json.loads(__import__("base64").urlsafe_b64decode(
            token.split(".")[0] + "=="))
        self.assertEqual(header["kid"], kids[0])

    def test_a_presentation_only_change_keeps_credentials_and_enforces_the_new_mode(self):
        """Owner, mode and what config says are presentation: a reload that
        changes only them makes no STS call and keeps every reader going,
        and the kernel enforces the new mode at once."""
        os.chmod(self.dir, 0o755)
        before = {"app": "subject = app\nuid = 0\ngid = 12345\nmode = 0400\n"}
        after = {"app": "subject = app\nuid = 0\ngid = 12345\nmode = 0440\n"
                        "config_style = process\n"}
        m = self.mount(roles=before, extra_args=["-o", "allow_other"])
        creds = m.read("app", "credentials")
        as_group = ["setpriv", "--reuid", "12346", "--regid", "12345", "--clear-groups",
                    "cat", m.path("app", "credentials")]
        r = subprocess.run(as_group, capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0, "the group read a 0400 role")
        stop, errors, reads = threading.Event(), [], [0]

        def reader():
            while not stop.is_set():
                try:
                    if "aws_session_token" not in m.read("app", "credentials"):
                        errors.append("no credentials")
                    reads[0] += 1
                except OSError as e:
                    errors.append(e.errno)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            self.reload(m, roles=after)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        self.assertGreater(reads[0], 20)
        self.assertEqual(self.proxy.count(), 1, "a presentation change went to STS")
        self.assertEqual(m.read("app", "credentials"), creds)
        self.assertEqual(os.stat(m.path("app", "credentials")).st_mode & 0o777, 0o440)
        self.assertIn("credential_process", m.read("app", "config"))
        r = subprocess.run(as_group, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("aws_session_token", r.stdout)

    def test_status_explains_a_read_that_timed_out_waiting_for_sts(self):
        """STS answers after wait_timeout: the read fails with EIO within
        it, and status says the role is waiting on STS, since when, with
        how many requests in flight, and counts the request sent."""
        self.proxy.fail_always(Fault("hang", seconds=4))
        m = self.mount(defaults="wait_timeout = 1\n")
        t0 = time.monotonic()
        self.assertEqual(read_errno(m.path("app", "credentials")), errno.EIO)
        self.assertLess(time.monotonic() - t0, 2.5)
        st = m.status("app")
        self.assertEqual(st["waiting"]["on"], "endpoint", st)   # the role's token endpoint: STS
        self.assertIsNotNone(st["waiting"]["since"])
        self.assertGreaterEqual(st["waiting"]["requests_in_flight"], 1)
        self.assertGreaterEqual(st["sts_calls"], 1, "the request sent is not counted")
        self.assertIsNotNone(st["last_failed_read"])
        self.assertIn("wait_timeout", st["last_failed_read"]["reason"])
        self.proxy.fail_always(None)

    def test_sighup_does_not_stop_the_daemon(self):
        m = self.mount()
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded " in m.output(), what="the reload")
        self.assertIsNone(m.proc.poll())
        self.assertTrue(os.path.ismount(m.mnt))
        with self.assertRaises(OSError) as cm:
            os.stat(m.path("nope"))
        self.assertEqual(cm.exception.errno, errno.ENOENT)
