"""Per-role access control, enforced by the kernel: each role directory
belongs to its uid and gid with mode 0400 or 0440 (directories 0500/0550),
and other users, reaching the mount through -o allow_other, are read as
with `setpriv` (util-linux), as a user or a container would."""
import errno
import os
import stat
import subprocess

from harness import CredfsTestCase

ROLE_FILES = ["config", "credentials", "env", "expiry", "process.json", "status", "token"]
OWNER, GROUP, OTHER = 12345, 12346, 12347


def read_as(uid, gid, path):
    """(returncode, stdout, stderr) of `cat path` as uid:gid, no groups.
    stdout stays in this process: it may hold secrets."""
    r = subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(gid),
                        "--clear-groups", "cat", path],
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def list_as(uid, gid, path):
    r = subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(gid),
                        "--clear-groups", "ls", path],
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stderr


class TestAccess(CredfsTestCase):
    def mount_shared(self, extra_args=("-o", "allow_other")):
        roles = {
            "shared": "subject = s\nuid = %d\ngid = %d\nmode = 0440\n" % (OWNER, GROUP),
            "private": "subject = p\nuid = %d\ngid = %d\nmode = 0400\n" % (OWNER, GROUP),
        }
        m = self.mount(roles=roles, extra_args=list(extra_args))
        # Everything below the mount point must be reachable by others.
        os.chmod(self.dir, 0o755)
        return m

    def assert_can_read(self, uid, gid, path):
        rc, out, err = read_as(uid, gid, path)
        self.assertEqual(rc, 0, "%d:%d cannot read %s: %s" % (uid, gid, path, err.strip()))
        self.assertTrue(out, "%d:%d read nothing from %s" % (uid, gid, path))

    def assert_denied(self, uid, gid, path):
        rc, out, err = read_as(uid, gid, path)
        self.assertNotEqual(rc, 0, "%d:%d could read %s" % (uid, gid, path))
        self.assertEqual(out, "")
        self.assertIn(os.strerror(errno.EACCES), err)

    def test_ownership_and_modes(self):
        m = self.mount_shared()
        for role, fmode, dmode in (("shared", 0o440, 0o550), ("private", 0o400, 0o500)):
            st = os.stat(m.path(role))
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (OWNER, GROUP, dmode), role)
            for f in ROLE_FILES:
                st = os.stat(m.path(role, f))
                self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                                 (OWNER, GROUP, fmode), "%s/%s" % (role, f))

    def test_owner_reads_every_file(self):
        m = self.mount_shared()
        for role in ("shared", "private"):
            for f in ROLE_FILES:
                # Any primary group: the owner reads by uid alone.
                self.assert_can_read(OWNER, 55555, m.path(role, f))

    def test_group_reads_with_0440_only(self):
        m = self.mount_shared()
        for f in ROLE_FILES:
            self.assert_can_read(OTHER, GROUP, m.path("shared", f))
            self.assert_denied(OTHER, GROUP, m.path("private", f))

    def test_everyone_else_gets_eacces(self):
        m = self.mount_shared()
        calls = self.proxy.count()
        for role in ("shared", "private"):
            for f in ROLE_FILES:
                self.assert_denied(OTHER, OTHER, m.path(role, f))
            rc, err = list_as(OTHER, OTHER, m.path(role))
            self.assertNotEqual(rc, 0)
            self.assertIn(os.strerror(errno.EACCES), err)
        # The public parts of the mount stay readable by anyone.
        self.assert_can_read(OTHER, OTHER, m.path("keys.json"))
        self.assert_can_read(OTHER, OTHER, m.path(".well-known", "openid-configuration"))
        rc, err = list_as(OTHER, OTHER, m.mnt)
        self.assertEqual(rc, 0, err)
        # Refused reads cost no STS call.
        self.assertEqual(self.proxy.count(), calls)

    def test_without_allow_other_nobody_else_reaches_the_mount(self):
        m = self.mount_shared(extra_args=())
        rc, err = list_as(OWNER, GROUP, m.mnt)
        self.assertNotEqual(rc, 0)
        self.assertIn(os.strerror(errno.EACCES), err)
        self.assert_denied(OWNER, GROUP, m.path("shared", "credentials"))
        # The mounting user (root here) still reads.
        self.assertIn("aws_session_token", m.read("shared", "credentials"))
