"""A mount that outlives the process serving it (docs/lifecycle.md): the
worker killed again and again, a crash between reading a request and
answering it, a takeover by a credfs of another version, the service
manager's descriptor store, and what stops mean.  Readers loop the whole
time and include reads that reach the daemon (metrics, whose attributes the
kernel never keeps; status; roles never read before); every error and the
longest pause are recorded."""
import errno
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import (CREDFS, ROOT, CredfsTestCase, Mount, fd_holder, holder_read, is_mounted,
                     parse_credentials, wait_for, worker_of, write_config)

WAIT = 5


def other_build():
    """credfs built from this source with another version string: the
    successor in a takeover is another binary, as in an upgrade."""
    d = os.path.join(ROOT, "build-other")
    exe = os.path.join(d, "daemon", "credfs")
    if not os.path.exists(os.path.join(d, "build.ninja")):
        subprocess.run(["meson", "setup", d, "-Dversion_suffix=-other", "-Dtests=false"],
                       cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["ninja", "-C", d, "daemon/credfs"], check=True, capture_output=True)
    return exe


def takeover(case, m, exe=CREDFS, config=None):
    """credfs takeover of m's mountpoint in the background, killed at cleanup."""
    p = subprocess.Popen([exe, "takeover", "-f", config or m.config, m.mnt],
                         stdout=open(m.log_path + ".takeover", "ab"),
                         stderr=subprocess.STDOUT, env=case.env)
    case.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
    return p


def cpu_seconds(pid):
    """CPU time (user + system) of process pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_worker(case, proc):
    """SIGKILL of the worker under supervisor proc; waits for the next one."""
    w = worker_of(proc.pid)
    case.assertIsNotNone(w, "no worker")
    os.kill(w, signal.SIGKILL)
    case.assertTrue(wait_for(lambda: worker_of(proc.pid) not in (None, w), 5), "no new worker")


class Readers:
    """Threads reading m until stopped: every failure and the longest
    single operation are kept."""

    def __init__(self, m, roles, fresh_roles=(), paths=()):
        self.m, self.roles = m, list(roles)
        self.fresh = list(fresh_roles)   # read once each, as time goes on
        self.paths = list(paths)         # files read through bind mounts
        self.errors, self.pauses = [], []
        self.ops = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(k,))
                        for k in range(5 if self.paths else 4)]

    def read_path(self, path):
        with open(path) as f:
            text = f.read()
        if "credentials" in os.path.basename(path):
            parse_credentials(text)["aws_session_token"]
        else:
            json.loads(text)["state"]

    def op(self, fn, timed=True):
        """timed: a read that needs no token endpoint, whose duration is a
        pause the mount imposed (a first read of a role waits for STS)."""
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - recorded for the test
            with self.lock:
                self.errors.append("%s %s %s" % (type(e).__name__, getattr(e, "errno", ""),
                                                 str(e)[:160].replace("aws_", "")))
        took = time.monotonic() - t0
        with self.lock:
            if timed:
                self.pauses.append(took)
            self.ops += 1

    def loop(self, k):
        m = self.m
        i = 0
        while not self.stop.is_set():
            role = self.roles[i % len(self.roles)]
            if k == 0:
                self.op(lambda: m.read("metrics"))
            elif k == 1:
                self.op(lambda: m.status(role))
            elif k == 2:
                self.op(lambda: parse_credentials(m.read(role, "credentials"))["aws_access_key_id"])
            elif k == 4:
                path = self.paths[i % len(self.paths)]
                self.op(lambda: self.read_path(path))
            else:
                with self.lock:
                    fresh = self.fresh.pop(0) if self.fresh else None
                if fresh:
                    self.op(lambda: parse_credentials(m.read(fresh, "credentials")), False)
                else:
                    self.op(lambda: os.listdir(m.mnt))
            i += 1
            time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def longest(self):
        return max(self.pauses) if self.pauses else 0.0


class LifecycleCase(CredfsTestCase):
    def setUp(self):
        super().setUp()
        self.runtime = tempfile.mkdtemp(prefix="credfs-runtime-", dir=self.dir)
        os.chmod(self.runtime, 0o700)
        self.env = dict(os.environ, CREDFS_RUNTIME_DIR=self.runtime)

    def roles(self, n):
        return {"r%02d" % i: "subject = s%d\n" % i for i in range(n)}

    def start(self, roles, env=None, extra=(), name="mnt", defaults=""):
        cfg = write_config(os.path.join(self.dir, name + ".conf"),
                           self.config_text(roles=roles, defaults="wait_timeout = %d\n%s" % (WAIT, defaults)))
        m = Mount(cfg, os.path.join(self.dir, name), list(extra), env=env or self.env)
        self.mounts.append(m)
        return m.start()

    def assert_survived(self, readers, what):
        self.assertEqual(readers.errors, [], "reads failed across %s" % what)
        self.assertGreater(readers.ops, 50)
        print("%s: %d reads, longest %.1f ms" % (what, readers.ops, readers.longest() * 1000),
              flush=True)
        self.assertLess(readers.longest(), 1.0, "a read was blocked for over a second")


class TestWorkerDeath(LifecycleCase):
    def test_sigkill_of_the_worker_is_survived(self):
        roles = self.roles(40)
        m = self.start(roles)
        for r in list(roles)[:4]:
            m.read(r, "credentials")
        with Readers(m, list(roles)[:4], list(roles)[4:]) as rd:
            for _ in range(8):
                time.sleep(1.2)
                w = worker_of(m.proc.pid)
                self.assertIsNotNone(w, "no worker")
                os.kill(w, signal.SIGKILL)
                self.assertTrue(wait_for(lambda: worker_of(m.proc.pid) not in (None, w), 5),
                                "no new worker")
            time.sleep(0.5)
        self.assert_survived(rd, "8 SIGKILLs of the worker")
        self.assertTrue(is_mounted(m.mnt))
        self.assertIn("killed by signal 9", m.output())

    def test_a_new_worker_serves_the_configuration_in_force_not_the_file(self):
        roles = self.roles(4)
        m = self.start(roles)
        before = m.read("r00", "credentials")
        self.assertIn("aws_session_token", before)
        with open(m.config, "w") as f:
            f.write("[role r00\nthis is not a configuration\n")
        with Readers(m, ["r00", "r01"], ["r02", "r03"]) as rd:
            for _ in range(2):
                kill_worker(self, m.proc)
                time.sleep(1)
        self.assert_survived(rd, "2 SIGKILLs while the file does not load")
        for r in roles:
            self.assertTrue(os.path.isdir(m.path(r)), r)
        self.assertIn("serving again", m.output())
        self.assertIn("kept by the supervisor", m.output())
        # Nor does an edit that was not reloaded come in with a new worker.
        write_config(m.config, self.config_text(roles=self.roles(6),
                                                defaults="wait_timeout = %d\n" % WAIT))
        kill_worker(self, m.proc)
        self.assertTrue(os.path.isdir(m.path("r03")))
        self.assertFalse(os.path.exists(m.path("r05")), "an edit that was not reloaded")
        # Reloaded, the file is in force, and a death keeps it.
        write_config(m.config, self.config_text(roles=self.roles(5),
                                                defaults="wait_timeout = %d\n" % WAIT))
        os.kill(m.proc.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.isdir(m.path("r04")), 10), "no reload")
        kill_worker(self, m.proc)
        self.assertIn("aws_session_token", m.read("r04", "credentials"))

    def test_a_reload_asked_while_no_worker_serves_is_made_when_one_does(self):
        m = self.start(self.roles(2))
        write_config(m.config, self.config_text(roles=self.roles(3),
                                                defaults="wait_timeout = %d\n" % WAIT))
        w = worker_of(m.proc.pid)
        os.kill(w, signal.SIGKILL)
        os.kill(m.proc.pid, signal.SIGHUP)      # no worker serves right now
        self.assertTrue(wait_for(lambda: os.path.isdir(m.path("r02")), 10),
                        "the reload was lost: %s" % m.output()[-600:])
        self.assertIn("aws_session_token", m.read("r02", "credentials"))

    def test_workers_that_cannot_start_are_retried_with_a_delay_not_in_a_loop(self):
        """Neither the file nor the configuration in force loads (the
        signing key is gone): each new worker dies before it is up.  The
        supervisor retries with a growing delay, idle in between, and
        serves again once the key is back."""
        m = self.start(self.roles(2))
        self.assertIn("aws_session_token", m.read("r00", "credentials"))
        os.rename(self.key, self.key + ".away")
        self.addCleanup(lambda: os.path.exists(self.key + ".away") and
                        os.rename(self.key + ".away", self.key))
        with open(m.config, "w") as f:
            f.write("[role r00\n")
        w = worker_of(m.proc.pid)
        os.kill(w, signal.SIGKILL)
        time.sleep(1)
        cpu0 = cpu_seconds(m.proc.pid)
        time.sleep(3)
        used = cpu_seconds(m.proc.pid) - cpu0
        self.assertLess(used, 0.3, "the supervisor used %.2f s of CPU in 3 s" % used)
        self.assertIn("starting another in", m.output())
        os.rename(self.key + ".away", self.key)
        # The longest delay is 10 s.
        self.assertTrue(wait_for(lambda: worker_of(m.proc.pid) is not None and
                                 "serving again" in m.output(), 15))
        self.assertIn("aws_session_token", m.read("r01", "credentials"))

    def test_a_crash_holding_a_request_is_answered_by_the_next_worker(self):
        crash = os.path.join(self.dir, "crash-once")
        open(crash, "w").close()
        env = dict(self.env, CREDFS_TEST_CRASH_AFTER="60", CREDFS_TEST_CRASH_FILE=crash)
        roles = self.roles(4)
        m = self.start(roles, env=env)
        with Readers(m, list(roles)) as rd:
            self.assertTrue(wait_for(lambda: "killed by signal 6" in m.output(), 20),
                            "the worker never crashed")
            time.sleep(0.5)
        # A request the dead worker held would hang its reader for good
        # without the resend: no error and no long pause prove it was
        # answered.
        self.assert_survived(rd, "a crash between reading and answering")

    def test_sigterm_of_the_supervisor_unmounts(self):
        m = self.start(self.roles(1))
        m.proc.send_signal(signal.SIGTERM)
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(is_mounted(m.mnt))
        self.assertFalse(worker_of(m.proc.pid))

    def test_auto_unmount_means_the_supervisor_is_gone(self):
        m = self.start(self.roles(1), extra=["-o", "auto_unmount"])
        m.read("r00", "credentials")
        os.kill(worker_of(m.proc.pid), signal.SIGKILL)
        time.sleep(1)
        self.assertTrue(is_mounted(m.mnt), "a worker's death unmounted")
        self.assertIn("aws_session_token", m.read("r00", "credentials"))
        m.proc.kill()
        m.proc.wait()
        self.assertTrue(wait_for(lambda: not is_mounted(m.mnt), 10),
                        "still mounted after the supervisor died")


class TestRevocation(LifecycleCase):
    def test_a_revocation_holds_across_worker_deaths_and_a_takeover(self):
        """A reload gives a role to another uid; a descriptor the old owner
        opened before stays refused in every later worker, with the new
        owner reading in between."""
        # Credentials the kernel may keep attributes of for a long time
        # (refresh in 30 min): only the revocation mark makes each read of
        # the old descriptor reach the daemon.
        self.proxy.lifetime = 3600
        os.chmod(self.dir, 0o755)
        defaults = "refresh_fraction = 0.5\nmin_validity = 1\n"
        roles = lambda uid: {"app": "subject = app\nuid = %d\nmode = 0400\n" % uid,
                             "other": "subject = other\n"}
        m = self.start(roles(12345), extra=["-o", "allow_other"], defaults=defaults)
        old = fd_holder(self, m.path("app", "credentials"), 12345)
        self.assertEqual(holder_read(old)[0], "ok")
        write_config(m.config, self.config_text(roles=roles(12346),
                                                defaults="wait_timeout = %d\n%s" % (WAIT, defaults)))
        os.kill(m.proc.pid, signal.SIGHUP)
        # The new owner shows on the directory and on the file itself (the
        # kernel may hold the file's attributes a moment longer).
        self.assertTrue(wait_for(lambda: os.stat(m.path("app")).st_uid == 12346 and
                                 os.stat(m.path("app", "credentials")).st_uid == 12346, 5))
        self.assertEqual(holder_read(old), ["err", str(errno.EACCES)])
        new = fd_holder(self, m.path("app", "credentials"), 12346)
        for what in ("a SIGKILL of the worker", "another", "a takeover"):
            if what == "a takeover":
                p = takeover(self, m)
                self.assertEqual(m.proc.wait(20), 0, "the old credfs did not hand over")
                m.proc = p
                self.assertTrue(wait_for(lambda: worker_of(p.pid) is not None, 10))
            else:
                kill_worker(self, m.proc)
            # The new owner reads (the kernel caches what it read) ...
            for _ in range(3):
                self.assertEqual(holder_read(new)[0], "ok", what)
            # ... and the old descriptor still gets nothing.
            self.assertEqual(holder_read(old), ["err", str(errno.EACCES)],
                             "after %s the old owner's descriptor read the new owner's "
                             "credentials" % what)
        self.assertIn("aws_session_token", m.read("other", "credentials"))


class TestBindMounts(LifecycleCase):
    """What docker -v and a hostPath volume do: a role directory and a
    single file bind-mounted elsewhere.  A bind holds the credfs mount
    itself, not its path, so it lives or dies with the connection."""

    def test_binds_survive_kills_a_reload_and_a_takeover(self):
        other = other_build()
        roles = self.roles(24)
        m = self.start(roles)
        dot_aws = self.bind(m.path("r00"), os.path.join(self.dir, "home", ".aws"))
        one = self.bind(m.path("r01", "credentials"), os.path.join(self.dir, "credentials-file"))
        paths = [os.path.join(dot_aws, "credentials"), os.path.join(dot_aws, "status"), one]
        for r in list(roles)[:4]:
            m.read(r, "credentials")
        with Readers(m, list(roles)[:4], list(roles)[4:], paths) as rd:
            for _ in range(3):
                time.sleep(1.0)
                kill_worker(self, m.proc)
            # A reload that adds a role, then a death: the next worker
            # serves the configuration the last reload loaded.
            grown = dict(roles, added="subject = added\n")
            write_config(m.config, self.config_text(roles=grown, defaults="wait_timeout = %d\n" % WAIT))
            m.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "added" in os.listdir(m.mnt), 5), "no reload")
            kill_worker(self, m.proc)
            self.assertIn("added", os.listdir(m.mnt))
            time.sleep(1.0)
            p = takeover(self, m, exe=other)
            self.assertEqual(m.proc.wait(15), 0, "the old credfs did not hand over and exit")
            time.sleep(1.0)
            kill_worker(self, p)
            time.sleep(1.0)
        self.assert_survived(rd, "4 kills, a reload and a takeover, through bind mounts")
        self.assertIn("aws_session_token", open(one).read())
        # The last worker was killed: it renews on the next read that
        # reaches it, so its status may say it holds nothing yet.
        self.assertIn(json.load(open(os.path.join(dot_aws, "status")))["state"], ("valid", "idle"))
        self.assertIn("added", os.listdir(m.mnt))

    def test_fusermount_unmount_stops_credfs(self):
        m = self.start(self.roles(1))
        m.read("r00", "credentials")
        w = worker_of(m.proc.pid)
        r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(m.proc.wait(10), 0, "credfs lives on after its mount was unmounted")
        self.assertFalse(os.path.exists("/proc/%d" % w) and worker_of(m.proc.pid) == w)
        self.assertFalse(is_mounted(m.mnt))


class TestTakeover(LifecycleCase):
    def takeover(self, m, exe=CREDFS, config=None):
        return takeover(self, m, exe, config)

    def test_takeover_by_another_version_loses_no_read(self):
        other = other_build()
        roles = self.roles(30)
        m = self.start(roles)
        for r in list(roles)[:4]:
            m.read(r, "credentials")
        calls = self.proxy.count()
        ino = os.stat(m.path("r01", "credentials")).st_ino
        with Readers(m, list(roles)[:4], list(roles)[4:]) as rd:
            time.sleep(0.5)
            p = self.takeover(m, exe=other)
            self.assertEqual(m.proc.wait(15), 0, "the old credfs did not hand over and exit")
            time.sleep(1)
        self.assert_survived(rd, "a takeover by another version")
        self.assertIsNone(p.poll(), "the new credfs is not serving")
        self.assertTrue(is_mounted(m.mnt))
        out = subprocess.run([other, "--version"], capture_output=True, text=True).stdout
        self.assertIn("-other", out)
        # The roles in use were handed over, not renewed all at once.
        st = m.status("r00")
        self.assertEqual(st["state"], "valid")
        self.assertLessEqual(self.proxy.count() - calls, 26 + 2,
                             "roles in use were sent to STS again")
        self.assertEqual(os.stat(m.path("r01", "credentials")).st_ino, ino)
        # The new one stops on purpose and unmounts.
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        self.assertFalse(is_mounted(m.mnt))

    def test_takeover_exit_codes_and_refusals(self):
        # No credfs serves the mountpoint: 3, and nothing changes.
        lone = os.path.join(self.dir, "lone")
        os.mkdir(lone)
        cfg = write_config(os.path.join(self.dir, "lone.conf"), self.config_text())
        r = subprocess.run([CREDFS, "takeover", "-f", cfg, lone], env=self.env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("no credfs serves", r.stderr)
        self.assertFalse(is_mounted(lone))
        m = self.start(self.roles(2))
        # A bad configuration: 2, and the old one keeps serving.
        bad = write_config(os.path.join(self.dir, "bad.conf"), "[credfs]\nregion = nowhere!\n")
        r = subprocess.run([CREDFS, "takeover", "-f", bad, m.mnt], env=self.env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bad.conf:", r.stderr)
        # An incompatible credfs: 2.
        r = subprocess.run([CREDFS, "takeover", "-f", m.config, m.mnt],
                           env=dict(self.env, CREDFS_TEST_FUSE_ABI="99"),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("incompatible", r.stderr)
        self.assertIsNone(m.proc.poll())
        self.assertIn("aws_session_token", m.read("r00", "credentials"))

    def test_two_racing_takeovers_one_wins(self):
        m = self.start(self.roles(2))
        ps = [self.takeover(m) for _ in range(2)]
        self.assertEqual(m.proc.wait(20), 0)
        time.sleep(1)
        # One serves in the end: the other was refused while the first
        # was taking over, or took over from it afterwards (and the first
        # then handed over and left).
        alive = [p for p in ps if p.poll() is None]
        self.assertEqual(len(alive), 1, "%d takeovers serve" % len(alive))
        self.assertIn("aws_session_token", m.read("r00", "credentials"))
        alive[0].send_signal(signal.SIGTERM)
        alive[0].wait(10)

    def test_only_the_same_user_may_take_over(self):
        m = self.start(self.roles(1))
        # The handover socket comes right after the mount.
        socks = wait_for(lambda: [os.path.join(self.runtime, f) for f in os.listdir(self.runtime)
                                  if f.endswith(".sock")], timeout=5)
        self.assertTrue(socks, "no handover socket in %s" % self.runtime)
        sock = socks[0]
        os.chmod(self.dir, 0o755)
        os.chmod(self.runtime, 0o711)
        os.chmod(sock, 0o666)
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
                "s.connect(sys.argv[1]); s.settimeout(5)\n"
                "print(len(s.recv(100)))\n")
        r = subprocess.run(["setpriv", "--reuid", "12345", "--regid", "12345", "--clear-groups",
                            "/usr/bin/python3", "-c", code, sock],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "0", "another user was answered: %r %r"
                         % (r.stdout, r.stderr[-300:]))
        self.assertIn("refusing a takeover by uid 12345", m.output())
        self.assertIsNone(m.proc.poll())

    def test_inode_numbers_survive_takeover_and_a_changed_configuration(self):
        roles = self.roles(6)
        m = self.start(roles)
        before = {r: os.stat(m.path(r, "credentials")).st_ino for r in ("r02", "r04")}
        changed = {"new%d" % i: "subject = n%d\n" % i for i in range(3)}
        changed.update({r: roles[r] for r in ("r04", "r02")})      # reordered, others gone
        cfg = write_config(os.path.join(self.dir, "changed.conf"),
                           self.config_text(roles=changed, defaults="wait_timeout = %d\n" % WAIT))
        p = self.takeover(m, config=cfg)
        self.assertEqual(m.proc.wait(15), 0)
        self.assertTrue(wait_for(lambda: "new0" in os.listdir(m.mnt), 10))
        after = {r: os.stat(m.path(r, "credentials")).st_ino for r in ("r02", "r04")}
        self.assertEqual(before, after)
        self.assertFalse(os.path.exists(m.path("r00")))
        p.send_signal(signal.SIGTERM)
        p.wait(10)


class TestServiceManager(LifecycleCase):
    """systemd is not PID 1 here: its notification socket is played by the
    test, which keeps what credfs stores in it, as systemd's descriptor
    store does, and starts credfs again with them."""

    def notify_socket(self):
        path = os.path.join(self.dir, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(0.2)
        self.addCleanup(s.close)
        return s, path

    def collect(self, s, until, store, messages):
        while time.monotonic() < until:
            try:
                msg, fds, _, _ = socket.recv_fds(s, 4096, 16)
            except socket.timeout:
                continue
            text = msg.decode()
            messages.append(text)
            name = [l[7:] for l in text.split("\n") if l.startswith("FDNAME=")]
            if "FDSTORE=1" in text and fds:
                store.append((name[0] if name else "", fds[0]))
            else:
                for fd in fds:
                    os.close(fd)

    def test_ready_watchdog_and_the_mount_surviving_the_supervisor(self):
        s, path = self.notify_socket()
        env = dict(self.env, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
        roles = self.roles(3)
        m = self.start(roles, env=env)
        store, messages = [], []
        self.collect(s, time.monotonic() + 3, store, messages)
        self.assertTrue(any("READY=1" in x for x in messages), messages)
        self.assertGreaterEqual(sum("WATCHDOG=1" in x for x in messages), 3, "no watchdog beats")
        names = [n for n, _ in store]
        self.assertIn("fuse", names)
        self.assertIn("state", names)
        # The service dies whole, supervisor and worker; the store keeps
        # the connection, so the mount stays and readers only wait.
        with Readers(m, list(roles)) as rd:
            w = worker_of(m.proc.pid)
            m.proc.kill()
            m.proc.wait()
            self.assertTrue(wait_for(lambda: w is None or not os.path.exists("/proc/%d" % w), 5))
            time.sleep(0.3)
            names = [n for n, _ in store]
            fds = [fd for _, fd in store]
            env2 = dict(env, LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names))
            wrapper = ("import os,sys\nfds=[int(x) for x in sys.argv[1].split(',')]\n"
                       "for i,fd in enumerate(fds): os.dup2(fd, 100+i)\n"
                       "for i in range(len(fds)): os.dup2(100+i, 3+i); os.set_inheritable(3+i, True)\n"
                       "os.environ['LISTEN_PID']=str(os.getpid())\n"
                       "os.execv(sys.argv[2], sys.argv[2:])\n")
            log = open(m.log_path + ".again", "wb")
            p = subprocess.Popen(["/usr/bin/python3", "-c", wrapper, ",".join(map(str, fds)),
                                  CREDFS, "-f", m.config, m.mnt],
                                 pass_fds=fds, env=env2, stdout=log, stderr=subprocess.STDOUT)
            self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), log.close()))
            for fd in fds:
                os.close(fd)
            self.assertTrue(wait_for(lambda: worker_of(p.pid) is not None, 10))
            time.sleep(1)
        self.assertEqual(rd.errors, [], "reads failed across the supervisor's death")
        print("supervisor killed, resumed from the store: %d reads, longest %.1f ms"
              % (rd.ops, rd.longest() * 1000), flush=True)
        self.assertIn("aws_session_token", m.read("r00", "credentials"))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        self.assertFalse(is_mounted(m.mnt))
