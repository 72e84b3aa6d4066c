"""The daemon's life and hygiene: signals unmount cleanly, kill -9 leaves no
dead mount with -o auto_unmount and a restart mounts again, the
background (daemonized) mode works; no secret reaches the log at any level
through reads, renewals and failures; core dumps are off, the process is
not dumpable, and secrets sit in memory locked against swapping."""
import configparser
import errno
import os
import re
import shutil
import signal
import subprocess
import time

from harness import CREDFS, CredfsTestCase, Mount, is_mounted, write_config
from sts_proxy import Fault

ROLE_FILES = ["config", "credentials", "env", "expiry", "process.json", "status", "token"]


def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def proc_status(pid, field):
    """A field of /proc/PID/status, e.g. "VmLck" -> "1024 kB"."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def max_core_size(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


def find_daemon(config, mnt):
    """The pid of the credfs whose command line ends with config mnt."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and argv[0] == CREDFS.encode() and argv[-2:] == [config.encode(), mnt.encode()]:
            return int(entry)
    return None


class TestSignals(CredfsTestCase):
    def check_signal_unmounts(self, sig):
        m = self.mount()
        self.assertIn("aws_session_token", m.read("app", "credentials"))
        m.proc.send_signal(sig)
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(is_mounted(m.mnt))
        self.assertIn("unmounting", m.output())
        # The mount point is an ordinary empty directory again.
        self.assertEqual(os.listdir(m.mnt), [])

    def test_sigterm_unmounts_cleanly(self):
        self.check_signal_unmounts(signal.SIGTERM)

    def test_sigint_unmounts_cleanly(self):
        self.check_signal_unmounts(signal.SIGINT)

    def test_kill_9_with_auto_unmount_leaves_no_dead_mount_and_restarts(self):
        m = self.mount(extra_args=["-o", "auto_unmount"])
        first = m.read("app", "credentials")
        m.proc.kill()
        m.proc.wait(10)
        self.assertTrue(wait_until(lambda: not is_mounted(m.mnt), 5),
                        "a dead mount was left behind")
        self.assertEqual(os.listdir(m.mnt), [])
        again = self.mount(extra_args=["-o", "auto_unmount"])
        self.assertEqual(again.mnt, m.mnt)
        self.assertIn("aws_session_token", again.read("app", "credentials"))
        self.assertNotEqual(again.read("app", "credentials"), first)

    def test_kill_9_without_auto_unmount_is_cleaned_up_by_fusermount(self):
        m = self.mount()
        m.read("app", "credentials")
        m.proc.kill()
        m.proc.wait(10)
        time.sleep(0.3)
        self.assertTrue(is_mounted(m.mnt))
        with self.assertRaises(OSError) as cm:
            os.listdir(m.mnt)
        self.assertEqual(cm.exception.errno, errno.ENOTCONN)
        subprocess.run(["fusermount3", "-uz", m.mnt], check=True)
        self.assertFalse(is_mounted(m.mnt))
        again = self.mount()
        self.assertIn("aws_session_token", again.read("app", "credentials"))


class TestBackground(CredfsTestCase):
    def test_daemon_mode_mounts_hardens_and_unmounts(self):
        cfg = write_config(os.path.join(self.dir, "bg.conf"), self.config_text())
        mnt = os.path.join(self.dir, "bg")
        os.mkdir(mnt)
        pid = None

        def cleanup():
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
            if pid and find_daemon(cfg, mnt) == pid:
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(cleanup)

        r = subprocess.run([CREDFS, cfg, mnt], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(is_mounted(mnt))
        pid = find_daemon(cfg, mnt)
        self.assertIsNotNone(pid, "no daemon process left running")
        with open(os.path.join(mnt, "app", "credentials")) as f:
            self.assertIn("aws_session_token", f.read())
        self.assertEqual(max_core_size(pid), ["0", "0"])
        # Memory locks do not survive fork(): the daemon locks again.
        self.assertGreaterEqual(int(proc_status(pid, "VmLck").split()[0]), 1024)
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        self.assertTrue(wait_until(lambda: find_daemon(cfg, mnt) is None, 10),
                        "the daemon did not exit after unmount")


class TestSecretHygiene(CredfsTestCase):
    def secrets_seen(self, m, seen):
        """Reads every file of app; adds what is secret in them to seen."""
        creds = configparser.ConfigParser()
        creds.read_string(m.read("app", "credentials"))
        d = creds["default"]
        token = m.read("app", "token")
        seen.update({d["aws_secret_access_key"]: "secret access key",
                     d["aws_session_token"]: "session token",
                     token: "web identity token",
                     token.rsplit(".", 1)[1]: "token signature"})
        for f in ROLE_FILES:
            m.read("app", f)
        return d["aws_access_key_id"]

    def exercise(self, extra_args):
        """Reads, a renewal, final and retryable failures, expiry, recovery;
        returns the log and every secret served on the way."""
        self.proxy.lifetime = 6
        m = self.mount(extra_args=extra_args,
                       defaults="refresh_fraction = 0.5\nmin_validity = 1\nwait_timeout = 2\n")
        seen = {}
        first = self.secrets_seen(m, seen)
        # Background renewal once half the lifetime has passed.
        time.sleep(3.5)
        m.read("app", "credentials")
        self.assertTrue(wait_until(lambda: m.status("app")["renewals"] >= 2, 10))
        self.assertNotEqual(self.secrets_seen(m, seen), first)
        # Failures: final, then retryable, until the credentials expire.
        self.proxy.fail_always(Fault(status=403, code="AccessDenied", message="denied"))
        time.sleep(3.5)
        m.read("app", "status")
        try:
            m.read("app", "credentials")
        except OSError:
            pass
        self.proxy.fail_always(Fault(status=503, code="ServiceUnavailable", message="down"))
        time.sleep(3)
        with self.assertRaises(OSError):
            m.read("app", "credentials")
        self.proxy.heal()
        self.assertTrue(wait_until(lambda: m.status("app")["state"] != "error" and
                                   self._readable(m), 15))
        self.secrets_seen(m, seen)
        m.stop()
        return m.output(), seen

    @staticmethod
    def _readable(m):
        try:
            m.read("app", "credentials")
            return True
        except OSError:
            return False

    def check_log(self, log, seen):
        self.assertIn("renewed", log)
        self.assertIn("AccessDenied", log)
        for secret, name in seen.items():
            self.assertNotIn(secret, log, "%s found in the log" % name)
        with open(self.key) as f:
            pem_lines = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
        for line in pem_lines:
            self.assertNotIn(line, log, "a line of the private key found in the log")

    def test_no_secret_in_the_default_log(self):
        log, seen = self.exercise([])
        self.assertNotIn("getattr", log)        # really the default level
        self.check_log(log, seen)

    def test_no_secret_in_the_debug_log(self):
        log, seen = self.exercise(["-d"])
        self.assertIn("secrets:", log)          # really the debug level
        self.check_log(log, seen)

    def test_no_core_dumps_and_not_dumpable(self):
        m = self.mount()
        m.read("app", "credentials")
        self.assertEqual(max_core_size(m.proc.pid), ["0", "0"])

    def test_non_root_daemon_is_not_dumpable(self):
        """Run as an ordinary user (mounting through setuid fusermount3):
        a non-dumpable process's /proc files belong to root, so nobody but
        root can read its memory or attach a debugger."""
        uid = 12345
        os.chmod(self.dir, 0o755)
        os.chown(self.key, uid, uid)
        cfg = write_config(os.path.join(self.dir, "user.conf"), self.config_text())
        mnt = os.path.join(self.dir, "user")
        os.mkdir(mnt)
        os.chown(mnt, uid, uid)
        m = Mount(cfg, mnt)
        m.args = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"] + m.args
        self.mounts.append(m)
        m.start()
        pid = m.proc.pid       # setpriv execs credfs: same pid
        with open("/proc/%d/status" % pid) as f:
            self.assertIn("\nUid:\t%d\t" % uid, f.read())
        self.assertIn("aws_session_token", m.read("app", "credentials"))
        for name in ("mem", "environ"):
            st = os.stat("/proc/%d/%s" % (pid, name))
            self.assertEqual((st.st_uid, st.st_gid), (0, 0), "/proc/PID/%s" % name)
        self.assertEqual(max_core_size(pid), ["0", "0"])
        # And a user process that is dumpable shows its own uid there.
        sleeper = subprocess.Popen(["setpriv", "--reuid", str(uid), "--regid", str(uid),
                                    "--clear-groups", "sleep", "30"])
        try:
            time.sleep(0.2)
            self.assertEqual(os.stat("/proc/%d/mem" % sleeper.pid).st_uid, uid)
        finally:
            sleeper.kill()
            sleeper.wait()

    def test_secrets_live_in_locked_memory_left_out_of_dumps(self):
        m = self.mount()
        m.read("app", "credentials")
        pid = m.proc.pid
        self.assertGreaterEqual(int(proc_status(pid, "VmLck").split()[0]), 1024)
        # The secure heap: a 1 MiB mapping, locked ("lo") and excluded from
        # core dumps ("dd").
        with open("/proc/%d/smaps" % pid) as f:
            smaps = f.read()
        found = False
        for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
            size = re.search(r"^Size:\s+(\d+) kB", block, re.M)
            flags = re.search(r"^VmFlags:(.*)$", block, re.M)
            if size and flags and int(size.group(1)) >= 1024:
                fl = flags.group(1).split()
                if "lo" in fl and "dd" in fl:
                    found = True
        self.assertTrue(found, "no locked, non-dumpable secure heap mapping")
