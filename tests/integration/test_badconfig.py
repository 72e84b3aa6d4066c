"""Bad input refused clearly: every broken configuration of tests/data/config
(one test per case), broken signing keys, and a FIFO or device where a file
should be make both the mount and `credfs check` exit 2 with FILE:LINE: and
the reason, and mount nothing."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import CREDFS, CredfsTestCase, is_mounted, write_config

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(os.path.dirname(HERE), "data", "config")


def run_both(conf, mnt):
    """(mount, check): the CompletedProcess of `credfs -f conf mnt` and of
    `credfs check conf`.  A mount that succeeds is unmounted again."""
    try:
        mount = subprocess.run([CREDFS, "-f", conf, mnt], capture_output=True, text=True,
                               timeout=20)
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
        raise AssertionError("credfs mounted %s" % conf) from None
    check = subprocess.run([CREDFS, "check", conf], capture_output=True, text=True, timeout=20)
    return mount, check


class TestBadConfigCases(unittest.TestCase):
    """Generated below: one test per tests/data/config/bad-* case."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="credfs-badconfig-")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)

    def tearDown(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_case(self, case):
        conf = os.path.join(CASES, case, "credfs.conf")
        with open(os.path.join(CASES, case, "expected")) as f:
            line, text = f.read().rstrip("\n").split(": ", 1)
        want = "%s: %s" % (conf, text) if line == "0" else "%s:%s: %s" % (conf, line, text)
        mount, check = run_both(conf, self.mnt)
        for what, r in (("mount", mount), ("check", check)):
            self.assertEqual(r.returncode, 2, "%s: %s" % (what, r.stderr))
            self.assertIn(want, r.stderr, what)
            self.assertEqual(r.stdout, "", what)
        self.assertFalse(is_mounted(self.mnt))
        self.assertEqual(os.listdir(self.mnt), [])


def _add_cases():
    names = sorted(n for n in os.listdir(CASES) if n.startswith("bad-"))
    for name in names:
        def test(self, name=name):
            self.check_case(name)
        test.__doc__ = "tests/data/config/%s" % name
        setattr(TestBadConfigCases, "test_" + name.replace("-", "_"), test)
    return len(names)


N_CASES = _add_cases()


class TestBadKeys(CredfsTestCase):
    """Signing keys that must be refused, each pointing at the `key =` (or
    `previous_keys =`) line."""

    def check_refused(self, key, why, previous=None):
        if previous is None:
            text = self.config_text(key=key)
            line_text = "key = %s" % key
        else:
            text = self.config_text(signer_extra="previous_keys = %s\n" % previous)
            line_text = "previous_keys = %s" % previous
        conf = write_config(os.path.join(self.dir, "k.conf"), text)
        line = text.splitlines().index(line_text) + 1
        mnt = os.path.join(self.dir, "mnt")
        os.makedirs(mnt, exist_ok=True)
        mount, check = run_both(conf, mnt)
        for what, r in (("mount", mount), ("check", check)):
            self.assertEqual(r.returncode, 2, "%s: %s" % (what, r.stderr))
            self.assertIn("%s:%d: " % (conf, line), r.stderr, what)
            self.assertIn(why, r.stderr, what)
        self.assertFalse(is_mounted(mnt))
        return mount.stderr + check.stderr

    def test_missing_key(self):
        self.check_refused(os.path.join(self.dir, "nope.pem"), "No such file")

    def test_key_is_a_directory(self):
        d = os.path.join(self.dir, "keydir")
        os.mkdir(d, 0o700)
        self.check_refused(d, "not a regular file")

    def test_key_is_a_fifo(self):
        # Refused without hanging on the open.
        p = os.path.join(self.dir, "keyfifo")
        os.mkfifo(p, 0o600)
        self.check_refused(p, "not a regular file")

    def test_unreadable_key(self):
        # Root reads any file: a key below a directory it cannot search
        # is unreadable to everyone else, so use a path through a file.
        self.check_refused(os.path.join(self.key, "x.pem"), "Not a directory")

    def test_malformed_pem(self):
        p = os.path.join(self.dir, "bad.pem")
        with open(p, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n")
        os.chmod(p, 0o600)
        self.check_refused(p, "not a PEM private key")

    def test_truncated_pem(self):
        with open(self.key) as f:
            pem = f.read()
        p = os.path.join(self.dir, "cut.pem")
        with open(p, "w") as f:
            f.write(pem[:len(pem) // 2])
        os.chmod(p, 0o600)
        self.check_refused(p, "not a PEM private key")

    def test_public_key_as_signing_key(self):
        p = os.path.join(self.dir, "pub.pem")
        subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-out", p], check=True)
        os.chmod(p, 0o600)
        self.check_refused(p, "not a PEM private key")

    def test_group_or_world_readable_key(self):
        with open(self.key) as f:
            body = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
        for mode in (0o640, 0o604, 0o644):
            os.chmod(self.key, mode)
            err = self.check_refused(self.key, "readable by group or others")
            for line in body:
                self.assertFalse(line in err, "the key's content is in the error")

    def test_weak_or_unsupported_keys(self):
        for name, args in (("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
                           ("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
                           ("ed25519", ["-algorithm", "ED25519"])):
            p = os.path.join(self.dir, name + ".pem")
            subprocess.run(["openssl", "genpkey"] + args + ["-out", p], check=True,
                           capture_output=True)
            os.chmod(p, 0o600)
            r = self.check_refused(p, p)
            self.assertTrue("P-256" in r or "2048" in r or "RSA" in r, name)

    def test_bad_previous_key(self):
        p = os.path.join(self.dir, "old.pem")
        with open(p, "w") as f:
            f.write("garbage\n")
        self.check_refused(self.key, "not a PEM private or public key", previous=p)


class TestNotRegularFiles(unittest.TestCase):
    """A FIFO or a device given as the configuration, or as its ca_file, is
    refused at once (exit 2, FILE: or FILE:LINE:), never waited on."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="credfs-badfile-")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)

    def tearDown(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_refused(self, conf, want):
        # run_both's timeout is the "never hang": a blocked open fails it.
        mount, check = run_both(conf, self.mnt)
        for what, r in (("mount", mount), ("check", check)):
            self.assertEqual(r.returncode, 2, "%s: %s" % (what, r.stderr))
            self.assertIn(want, r.stderr, what)
            self.assertEqual(r.stdout, "", what)
        self.assertFalse(is_mounted(self.mnt))

    def test_config_is_a_fifo(self):
        fifo = os.path.join(self.dir, "credfs.conf")
        os.mkfifo(fifo, 0o600)
        self.check_refused(fifo, "%s: is a FIFO, not a regular file" % fifo)

    def test_config_is_a_device(self):
        self.check_refused("/dev/zero", "/dev/zero: is a character device, not a regular file")

    def test_config_is_a_directory(self):
        self.check_refused(self.dir, "%s: cannot read: Is a directory" % self.dir)

    def test_ca_file_is_a_fifo(self):
        fifo = os.path.join(self.dir, "ca.pem")
        os.mkfifo(fifo, 0o600)
        conf = write_config(os.path.join(self.dir, "c.conf"),
                            "[credfs]\nregion = eu-west-1\nca_file = %s\n\n"
                            "[role app]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
                            "web_identity_token_file = /t\n" % fifo)
        self.check_refused(conf, '%s:3: ca_file "%s" is not a regular file' % (conf, fifo))


class TestCaseCount(unittest.TestCase):
    def test_at_least_twenty_bad_config_cases(self):
        self.assertGreaterEqual(N_CASES, 20)
