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
        self.assertTrue("aws_session_token" in m.read("shared", "credentials"), "no credentials")


class TestReadOnly(CredfsTestCase):
    def test_every_write_like_operation_fails(self):
        m = self.mount()
        creds = m.path("app", "credentials")
        before = m.read("app", "credentials")
        calls = self.proxy.count()
        cases = {
            "open for append": lambda: open(creds, "a"),
            "open read-write": lambda: open(creds, "r+"),
            "create in role dir": lambda: os.open(m.path("app", "new"),
                                                  os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600),
            "create in root": lambda: open(m.path("new"), "w"),
            "truncate": lambda: os.truncate(creds, 0),
            "setxattr": lambda: os.setxattr(creds, "user.note", b"x"),
            "removexattr": lambda: os.removexattr(creds, "user.note"),
            "hard link": lambda: os.link(creds, m.path("app", "copy")),
            "hard link to root": lambda: os.link(creds, m.path("copy")),
            "mknod fifo": lambda: os.mknod(m.path("app", "fifo"), stat.S_IFIFO | 0o600),
            "mkfifo in root": lambda: os.mkfifo(m.path("fifo")),
            "utime to a date": lambda: os.utime(creds, (0, 0)),
            "utime to now": lambda: os.utime(creds, None),
            "chmod": lambda: os.chmod(creds, 0o644),
            "chown": lambda: os.chown(creds, 1, 1),
            "rename": lambda: os.rename(creds, m.path("app", "c2")),
            "rename directory": lambda: os.rename(m.path("app"), m.path("app2")),
            "unlink": lambda: os.unlink(creds),
            "unlink keys.json": lambda: os.unlink(m.path("keys.json")),
            "rmdir": lambda: os.rmdir(m.path(".well-known")),
            "mkdir": lambda: os.mkdir(m.path("app", "d")),
            "symlink": lambda: os.symlink("credentials", m.path("app", "link")),
        }
        for name, op in cases.items():
            with self.assertRaises(OSError, msg=name) as cm:
                op()
            self.assertIn(cm.exception.errno, (errno.EROFS, errno.EACCES, errno.EPERM,
                                               errno.ENOTSUP), name)
        self.assertEqual(sorted(os.listdir(m.path("app"))), ROLE_FILES)
        self.assertEqual(sorted(os.listdir(m.mnt)), [".well-known", "app", "keys.json", "metrics"])
        self.assertEqual(stat.S_IMODE(os.stat(creds).st_mode), 0o400)
        self.assertTrue(m.read("app", "credentials") == before, "credentials changed")
        self.assertEqual(self.proxy.count(), calls)
