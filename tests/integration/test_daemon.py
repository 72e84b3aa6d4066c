"""The daemon's life and hygiene: signals unmount cleanly, kill -9 leaves no
dead mount with -o auto_unmount and a restart mounts again, the
background (daemonized) mode works; no secret reaches the log at any level
through reads, renewals and failures; core dumps are off, the process is
not dumpable, and secrets sit in memory locked against swapping."""
import configparser
import ctypes
import errno
import os
import re
import signal
import subprocess
import time

from harness import CREDFS, CredfsTestCase, is_mounted, parse_credentials, worker_of, write_config
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


def read_memory(pid):
    """The readable, writable private mappings of pid (heap, stacks, data):
    where a secret would be."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("rw"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            # Only a sanitizer reserves this much (terabytes of shadow and
            # allocator space, nearly all of it never touched): under it
            # the ordinary mappings are searched, the normal build's run
            # searches everything.
            if hi - lo > 64 << 30:
                continue
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                pass      # [vvar] and the like
    return b"".join(out)


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
        self.assertTrue("aws_session_token" in m.read("app", "credentials"), "no credentials")
        m.proc.send_signal(sig)
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(is_mounted(m.mnt))
        self.assertIn("unmounted " + m.mnt, m.output())
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
        self.assertTrue("aws_session_token" in again.read("app", "credentials"), "no credentials")
        self.assertTrue(again.read("app", "credentials") != first, "the same credentials")

    def test_kill_9_without_auto_unmount_is_cleaned_up_by_fusermount(self):
        """The supervisor itself killed, with no service manager keeping the
        connection: the mount is lost (docs/lifecycle.md), and says so."""
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
        self.assertTrue("aws_session_token" in again.read("app", "credentials"), "no credentials")


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
        self.before_unmount(cleanup)

        r = subprocess.run([CREDFS, cfg, mnt], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(is_mounted(mnt))
        pid = find_daemon(cfg, mnt)
        self.assertIsNotNone(pid, "no daemon process left running")
        with open(os.path.join(mnt, "app", "credentials")) as f:
            self.assertTrue("aws_session_token" in f.read(), "no credentials")
        self.assertEqual(max_core_size(pid), ["0", "0"])
        # Memory locks do not survive fork(): the worker, started after
        # the daemon detached, locks its own.
        worker = worker_of(pid)
        self.assertIsNotNone(worker, "no worker")
        self.assertEqual(max_core_size(worker), ["0", "0"])
        self.assertGreaterEqual(int(proc_status(worker, "VmLck").split()[0]), 1024)
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
        self.assertTrue(wait_until(lambda: m.status("app")["renewals"] >= 2, 10),
                        "no background renewal: %r" % m.status("app"))
        self.assertNotEqual(self.secrets_seen(m, seen), first)
        # Failures: final, then retryable, until the credentials expire.
        self.proxy.fail_always(Fault(status=403, code="AccessDenied", message="denied"))
        self.assertTrue(wait_until(lambda: self._readable(m) and self._last_error(m) ==
                                   "AccessDenied", 8, step=0.2), "no failed renewal")
        self.proxy.fail_always(Fault(status=503, code="ServiceUnavailable", message="down"))
        self.assertTrue(wait_until(lambda: not self._readable(m), 10, step=0.2),
                        "the credentials never expired")
        self.proxy.heal()
        # Reads start renewals (status never does): read until it works.
        self.assertTrue(wait_until(lambda: self._readable(m), 15, step=0.2),
                        "no recovery: %r" % m.status("app"))
        self.secrets_seen(m, seen)
        m.stop()
        return m.output(), seen

    @staticmethod
    def _last_error(m):
        err = m.status("app")["last_error"]
        return err and err["code"]

    @staticmethod
    def _readable(m):
        try:
            m.read("app", "credentials")
            return True
        except OSError:
            return False

    def check_log(self, log, seen):
        # assertTrue, not assertIn: a failure must not print the log.
        for word in ("renewed", "AccessDenied", "ServiceUnavailable"):
            self.assertTrue(word in log, "%s is not in the log" % word)
        for secret, name in seen.items():
            self.assertFalse(secret in log, "%s found in the log" % name)
        with open(self.key) as f:
            pem_lines = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
        for line in pem_lines:
            self.assertFalse(line in log, "a line of the private key found in the log")

    def test_no_secret_in_the_default_log(self):
        log, seen = self.exercise([])
        self.assertFalse("getattr" in log, "debug lines in the default log")
        self.check_log(log, seen)

    def test_no_secret_in_the_debug_log(self):
        log, seen = self.exercise(["-d"])
        self.assertTrue("secrets:" in log, "no debug lines in the debug log")
        self.check_log(log, seen)

    def test_no_core_dumps_and_not_dumpable(self):
        m = self.mount()
        m.read("app", "credentials")
        for pid in (m.proc.pid, worker_of(m.proc.pid)):    # supervisor and worker
            self.assertEqual(max_core_size(pid), ["0", "0"])

    def test_non_root_daemon_is_not_dumpable(self):
        """credfs run as an ordinary user: /proc files of a non-dumpable
        process belong to root, so that user cannot read the daemon's
        memory or attach a debugger to it.  The mount is made here, as
        root, and handed to credfs as /dev/fd/N (libfuse's way for a
        daemon without the right to mount)."""
        uid = 12345
        os.chmod(self.dir, 0o755)
        os.chown(self.key, uid, uid)
        cfg = write_config(os.path.join(self.dir, "user.conf"), self.config_text())
        mnt = os.path.join(self.dir, "user")
        os.mkdir(mnt)
        fd = os.open("/dev/fuse", os.O_RDWR)
        # Closing it aborts the connection: a credfs that never answered
        # cannot hang the walk of the temp dir.
        self.before_unmount(lambda: os.close(fd))
        libc = ctypes.CDLL(None, use_errno=True)
        opts = ("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions,allow_other"
                % (fd, uid, uid))
        MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
        if libc.mount(b"credfs", mnt.encode(), b"fuse.credfs",
                      MS_RDONLY | MS_NOSUID | MS_NODEV, opts.encode()):
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), mnt)
        log = open(os.path.join(self.dir, "user.log"), "wb")
        proc = subprocess.Popen(["setpriv", "--reuid", str(uid), "--regid", str(uid),
                                 "--clear-groups", CREDFS, "-f", cfg, "/dev/fd/%d" % fd],
                                stdout=log, stderr=subprocess.STDOUT, pass_fds=[fd])

        def cleanup():
            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()
        self.before_unmount(cleanup)

        # ls, not a listing of our own: a mount that never answers would
        # block this process, which holds the descriptor, for good.
        self.assertTrue(wait_until(lambda: proc.poll() is not None or "app" in subprocess.run(
            ["timeout", "-s", "KILL", "5", "ls", mnt], capture_output=True, text=True).stdout, 10),
            "the mount never answered")
        self.assertIsNone(proc.poll())
        pid = proc.pid       # setpriv execs credfs: same pid
        self.assertEqual(proc_status(pid, "Uid").split()[0], str(uid))
        with open(os.path.join(mnt, "app", "credentials")) as f:
            self.assertTrue("aws_session_token" in f.read(), "no credentials")
        worker = worker_of(pid)
        self.assertIsNotNone(worker, "no worker")
        for p in (pid, worker):
            self.assertEqual(proc_status(p, "Uid").split()[0], str(uid))
            for name in ("mem", "environ", "maps"):
                st = os.stat("/proc/%d/%s" % (p, name))
                self.assertEqual((st.st_uid, st.st_gid), (0, 0), "/proc/%d/%s" % (p, name))
            self.assertEqual(max_core_size(p), ["0", "0"])
        # A dumpable process of the same user shows its own uid there.
        sleeper = subprocess.Popen(["setpriv", "--reuid", str(uid), "--regid", str(uid),
                                    "--clear-groups", "sleep", "30"])
        try:
            time.sleep(0.2)
            self.assertEqual(os.stat("/proc/%d/mem" % sleeper.pid).st_uid, uid)
        finally:
            sleeper.kill()
            sleeper.wait()

    def test_the_supervisor_holds_no_secret(self):
        """The process that outlives workers never sees a credential: its
        whole writable memory is searched for the ones just served."""
        m = self.mount()
        creds = parse_credentials(m.read("app", "credentials"))
        token = m.read("app", "token")
        secrets = [creds["aws_secret_access_key"], creds["aws_session_token"][:40],
                   token.split(".")[2][:40]]
        memory = read_memory(m.proc.pid)
        self.assertGreater(len(memory), 100000)
        for s in secrets:
            self.assertNotIn(s.encode(), memory, "a secret in the supervisor's memory")
        # The search finds them where they are.
        worker = read_memory(worker_of(m.proc.pid))
        self.assertIn(secrets[0].encode(), worker)

    def test_secrets_live_in_locked_memory_left_out_of_dumps(self):
        m = self.mount()
        m.read("app", "credentials")
        pid = worker_of(m.proc.pid)   # the worker holds them, the supervisor none
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
