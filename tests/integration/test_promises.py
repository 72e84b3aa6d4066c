"""credfs's promises against what a real deployment throws at it: token
files that block, hang, lie or point elsewhere; documents larger than a
page; hostile values from STS; reloads in bursts and during long renewals;
removed roles and revoked owners with descriptors held open; a relative
mountpoint; a wall-clock step; a daemon killed under a bind mount; and the
kernel-cache backstop with no invalidation pushed at all.  Each test asserts
what a user would check: every read is whole and unexpired or fails with
EIO, nothing hangs past wait_timeout plus a second, nothing secret leaks."""
import ctypes
import errno
import json
import os
import signal
import subprocess
import threading
import time

from harness import (ACCOUNT, CREDFS, CredfsTestCase, Mount, fd_holder, holder_read,
                     is_mounted, jwt_part, keygen, parse_credentials, read_errno, rfc3339,
                     rss_kb, sanitized, wait_for, worker_of, write_config)
from sts_proxy import Fault

WAIT = 2                      # wait_timeout of these mounts
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2
libc = ctypes.CDLL(None, use_errno=True)


def timed_errno(path):
    """(errno or 0, seconds) of reading path whole."""
    t0 = time.monotonic()
    e = read_errno(path)
    return e, time.monotonic() - t0


class HungMount:
    """A FUSE mount whose server never answers: the descriptor is held
    here and never read, so every request to it waits until close()."""

    def __init__(self, path):
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.fd = os.open("/dev/fuse", os.O_RDWR)
        opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % self.fd
        if libc.mount(b"hung", path.encode(), b"fuse.credfshung", MS_NOSUID | MS_NODEV,
                      opts.encode()):
            e = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(e, os.strerror(e), path)

    def close(self):
        """Aborts the connection (waiting requests fail) and unmounts."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            libc.umount2(self.path.encode(), MNT_DETACH)


class PromiseCase(CredfsTestCase):
    def token(self, text, name="token", mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def mount_roles(self, roles, defaults="", **kw):
        return self.mount(roles=roles, defaults="wait_timeout = %d\n%s" % (WAIT, defaults), **kw)

    def assert_bounded_eio(self, path):
        e, took = timed_errno(path)
        self.assertEqual(e, errno.EIO, "%s: errno %d" % (path, e))
        self.assertLess(took, WAIT + 1, "%s took %.1f s" % (path, took))

    def renewing_reader(self, m, role, stop, seen, errors):
        """Reads role's credentials until stop; records access key ids and
        every error."""
        while not stop.is_set():
            try:
                seen.add(parse_credentials(m.read(role, "credentials"))["aws_access_key_id"])
            except Exception as e:      # noqa: BLE001 - reported by the test
                errors.append(repr(e)[:80])
            time.sleep(0.05)


class TestTokenFiles(PromiseCase):
    """A token file that blocks, hangs or points elsewhere never stalls the
    mount, and never leaks what it points at."""

    def test_fifo_and_device_token_files_fail_fast_and_block_nothing(self):
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        self.proxy.lifetime = 8
        m = self.mount_roles({"fifo": "web_identity_token_file = %s\n" % fifo,
                              "zero": "web_identity_token_file = /dev/zero\n",
                              "app": "subject = app\n"},
                             defaults="refresh_fraction = 0.3\nmin_validity = 1\n")
        stop, seen, errors = threading.Event(), set(), []
        reader = threading.Thread(target=self.renewing_reader, args=(m, "app", stop, seen, errors))
        reader.start()
        try:
            for _ in range(3):
                for role in ("fifo", "zero"):
                    self.assert_bounded_eio(m.path(role, "token"))
                    self.assert_bounded_eio(m.path(role, "credentials"))
            self.assertIn("not a regular file", m.status("fifo")["last_error"]["message"])
            self.assertIn("not a regular file", m.status("zero")["last_error"]["message"])
            # Meanwhile the other role kept being renewed and read.
            self.assertTrue(wait_for(lambda: len(seen) >= 3, 20), "app was not renewed: %r" % seen)
        finally:
            stop.set()
            reader.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.proxy.count(role_arn="arn:aws:iam::%s:role/fifo-role" % ACCOUNT), 0)
        m.stop()
        self.assertFalse(is_mounted(m.mnt), "the mount did not go away")

    def test_planted_symlink_is_refused_and_nothing_leaks(self):
        # A directory its owner (not root) can write: the owner plants a
        # link to a secret of root's.
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chown(shared, 12345, 12345)
        os.chmod(self.dir, 0o755)
        link = os.path.join(shared, "token")
        os.symlink("/etc/shadow", link)
        os.lchown(link, 12345, 12345)
        # A link root made in a directory only root writes is followed
        # (the layout of a Kubernetes projected token: token -> ..data/token),
        # under /run: /tmp is world-writable, so no link under it is.
        import shutil
        import tempfile
        good_dir = tempfile.mkdtemp(prefix="credfs-projected-", dir="/run")
        self.addCleanup(shutil.rmtree, good_dir, True)
        os.chmod(good_dir, 0o755)
        os.makedirs(os.path.join(good_dir, "..2026_12_01"))
        with open(os.path.join(good_dir, "..2026_12_01", "token"), "w") as f:
            f.write("eyJhbGciOiJub25lIn0.eyJzdWIiOiJrOHMifQ.sig")
        os.symlink("..2026_12_01", os.path.join(good_dir, "..data"))
        os.symlink("..data/token", os.path.join(good_dir, "token"))
        m = self.mount_roles({"planted": "web_identity_token_file = %s\n" % link,
                              "k8s": "web_identity_token_file = %s/token\n" % good_dir})
        self.assert_bounded_eio(m.path("planted", "token"))
        self.assert_bounded_eio(m.path("planted", "credentials"))
        st = m.status("planted")
        self.assertEqual(st["last_error"]["code"], "TokenFile")
        self.assertIn("symbolic link", st["last_error"]["message"])
        self.assertEqual(self.proxy.count(role_arn="arn:aws:iam::%s:role/planted-role" % ACCOUNT), 0)
        with open("/etc/shadow") as f:
            shadow_line = f.readline().strip()
        self.assertNotIn(shadow_line, m.output())
        self.assertNotIn(shadow_line, json.dumps(st))
        self.assertEqual(m.read("k8s", "token"), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJrOHMifQ.sig")
        self.assertIn("aws_session_token", m.read("k8s", "credentials"))

    def test_token_file_on_a_hung_mount_blocks_nothing_else(self):
        hung = HungMount(os.path.join(self.dir, "hung"))
        self.before_unmount(hung.close)
        self.proxy.lifetime = 8
        m = self.mount_roles({"stuck": "web_identity_token_file = %s/token\n" % hung.path,
                              "app": "subject = app\n"},
                             defaults="refresh_fraction = 0.3\nmin_validity = 1\n")
        stop, seen, errors = threading.Event(), set(), []
        reader = threading.Thread(target=self.renewing_reader, args=(m, "app", stop, seen, errors))
        reader.start()
        try:
            for _ in range(3):
                t0 = time.monotonic()
                os.stat(m.path("stuck", "token"))           # never waits
                self.assertLess(time.monotonic() - t0, 0.5)
                self.assert_bounded_eio(m.path("stuck", "token"))
                self.assert_bounded_eio(m.path("stuck", "credentials"))
            st = m.status("stuck")
            self.assertRegex(st["last_error"]["message"], r"not ready within \d+ s")
            self.assertTrue(wait_for(lambda: len(seen) >= 3, 20), "app was not renewed: %r" % seen)
            t0 = time.monotonic()
            self.assertIn("app", os.listdir(m.mnt))
            self.assertLess(time.monotonic() - t0, 0.5)
        finally:
            stop.set()
            reader.join()
        self.assertEqual(errors, [])
        hung.close()
        m.stop()
        self.assertFalse(is_mounted(m.mnt))

    def test_token_file_replaced_while_read_is_never_torn(self):
        a = "eyJ0eXAiOiJKV1QifQ." + "a" * 700 + ".sigA"
        b = "eyJ0eXAiOiJKV1QifQ." + "b" * 1500 + ".sigB"
        path = self.token(a)
        m = self.mount_roles({"ci": "web_identity_token_file = %s\n" % path})
        stop = threading.Event()

        def replace():
            i = 0
            while not stop.is_set():
                tmp = path + ".new"
                with open(tmp, "w") as f:
                    f.write(b if i % 2 else a)
                os.rename(tmp, path)
                i += 1
                time.sleep(0.002)

        writer = threading.Thread(target=replace)
        writer.start()
        bad, seen = [], set()
        # 3.5 s at least, and until both versions were read (the file is
        # read again about once a second: on a loaded machine a few
        # seconds can go by with only one version read).
        t_min, t_max = time.monotonic() + 3.5, time.monotonic() + 30
        try:
            while time.monotonic() < t_min or (len(seen) < 2 and time.monotonic() < t_max):
                # One read call, as the promise is made: a reader that
                # reads in several calls while the file grows can straddle
                # two versions (docs/caching.md, "What is not promised").
                fd = os.open(m.path("ci", "token"), os.O_RDONLY)
                try:
                    t = os.pread(fd, 65536, 0).decode()
                finally:
                    os.close(fd)
                seen.add(len(t))
                if t not in (a, b):
                    bad.append((len(t), t[:24], t[-8:].encode(), t.count("a"), t.count("b"), t.count("\x00")))
        finally:
            stop.set()
            writer.join()
        self.assertEqual(bad, [], "torn tokens")
        self.assertEqual(seen, {len(a), len(b)})


class TestDocuments(PromiseCase):
    def test_large_session_token_is_whole_on_first_and_every_read(self):
        self.proxy.set_session_token(lambda t: (t * 40)[:9000])
        m = self.mount_roles({"big": "subject = big\n"})
        first = m.read("big", "credentials")
        tok = parse_credentials(first)["aws_session_token"]
        self.assertEqual(len(tok), 9000)
        for _ in range(50):
            self.assertEqual(parse_credentials(m.read("big", "credentials"))["aws_session_token"], tok)
        proc = json.loads(m.read("big", "process.json"))
        self.assertEqual(proc["SessionToken"], tok)
        self.assertIn("AWS_SESSION_TOKEN=" + tok + "\n", m.read("big", "env"))
        self.assertNotIn("\x00", first)

    def test_hostile_values_from_sts_are_an_error_never_a_file(self):
        pwned = os.path.join(self.dir, "pwned")
        hostile = {
            "shell": "FQoGZX$(touch %s)" % pwned,
            "quote": 'FQoGZX"},"Version":2,"x":"',
            "newline": "FQoGZX\nAWS_ACCESS_KEY_ID=EVIL",
            "space": "FQoGZX abc",
            "huge": "A" * 40000,
        }
        for name, value in hostile.items():
            with self.subTest(name):
                self.proxy.set_session_token(lambda t, v=value: v)
                m = self.mount_roles({"app": "subject = app\n"}, name="m-" + name)
                for f in ("credentials", "env", "process.json", "expiry"):
                    self.assert_bounded_eio(m.path("app", f))
                st = m.status("app")
                self.assertEqual(st["last_error"]["code"], "Malformed", st["last_error"])
                self.assertNotIn(value[:30], json.dumps(st))
                self.assertNotIn(value[:30], m.output())
                m.stop()
        self.assertFalse(os.path.exists(pwned))

    def test_stat_then_read_after_a_reload_is_whole(self):
        """What botocore does: stat, then read, right after a reload that
        changed the role (so its credentials were dropped)."""
        m = self.mount_roles({"app": "subject = app\nduration_seconds = 1800\n"})
        for i in range(12):
            write_config(m.config, self.config_text(
                roles={"app": "subject = app\nduration_seconds = %d\n" % (1800 + 60 * (i % 2 + 1))},
                defaults="wait_timeout = %d\n" % WAIT))
            m.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: m.output().count("reloaded") > i, 5, 0.02)
            size = os.stat(m.path("app", "credentials")).st_size
            with open(m.path("app", "credentials")) as f:
                text = f.read()
            self.assertNotIn("\x00", text, "NUL padding after reload %d (stat said %d)" % (i, size))
            self.assertIn("aws_session_token", parse_credentials(text))


class TestReloads(PromiseCase):
    def test_renewal_outliving_its_configuration_is_harmless(self):
        """A renewal stuck on a slow STS while its configuration is replaced
        again and again: it ends long after, its result is dropped, nothing
        is used after it was freed (the sanitizer build runs this too)."""
        self.proxy.fail_role("arn:aws:iam::%s:role/slow-role" % ACCOUNT,
                             Fault(kind="hang", seconds=6))
        m = self.mount(roles={"slow": "subject = slow\n", "app": "subject = app\n"},
                       defaults="wait_timeout = 5\n")
        t = threading.Thread(target=read_errno, args=(m.path("slow", "credentials"),))
        t.start()
        time.sleep(0.5)
        for i in range(30):
            write_config(m.config, self.config_text(
                roles={"slow": "subject = slow-%d\n" % i, "app": "subject = app\n"}))
            m.proc.send_signal(signal.SIGHUP)
            time.sleep(0.05)
        t.join()
        self.proxy.heal()
        time.sleep(7)
        self.assertIn("aws_session_token", m.read("slow", "credentials"))
        self.assertIn("aws_session_token", m.read("app", "credentials"))
        self.assertIsNone(m.proc.poll())

    def test_reload_bursts_keep_memory_flat_and_reloads_working(self):
        rsa = keygen(os.path.join(self.dir, "rsa4096.pem"), "rsa")
        subprocess.run([CREDFS, "keygen", "--type", "rsa", "--bits", "4096",
                        os.path.join(self.dir, "big.pem")], check=True)
        big = os.path.join(self.dir, "big.pem")
        roles = {"r%d" % i: "subject = s%d\n" % i for i in range(20)}
        # A role no reload changes (its token is not signed, so a new key
        # does not concern it): its reader must never notice anything.
        steady = {"steady": "web_identity_token_file = %s\n"
                            % self.token("eyJ0eXAiOiJKV1QifQ.c3RlYWR5.c2ln")}
        m = self.mount(text=self.config_text(roles=dict(roles, **steady), key=big))
        m.read("r0", "credentials")
        stop = threading.Event()
        errors = []

        def read_loop():
            while not stop.is_set():
                try:
                    parse_credentials(m.read("steady", "credentials"))["aws_access_key_id"]
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e)[:80])

        reader = threading.Thread(target=read_loop)
        reader.start()
        try:
            # A burst: one signal after another, as fast as they come.
            for _ in range(300):
                m.proc.send_signal(signal.SIGHUP)
            time.sleep(1)
            base = None
            # Then 2,000 reloads that each happen (key, role set and order
            # change every time).
            for i in range(2000):
                keys = (big, rsa) if i % 2 else (rsa, big)
                names = sorted(roles, reverse=bool(i % 3))[:15 + i % 5]
                write_config(m.config, self.config_text(
                    roles=dict({n: roles[n] for n in names}, **steady), key=keys[0],
                    signer_extra="previous_keys = %s\n" % keys[1]))
                before = m.output().count("reloaded")
                m.proc.send_signal(signal.SIGHUP)
                self.assertTrue(wait_for(lambda: m.output().count("reloaded") > before, 10, 0.002),
                                "reload %d was not made: %s" % (i, m.output()[-800:]))
                if i == 200:
                    worker = worker_of(m.proc.pid)
                    base = rss_kb(worker)
            grown = rss_kb(worker) - base
            print("2,000 reloads with an RSA-4096 signer: worker RSS %d -> %d kB"
                  % (base, base + grown), flush=True)
        finally:
            stop.set()
            reader.join()
        self.assertEqual(errors[:5], [])
        # Under AddressSanitizer its quarantine grows RSS by design; there
        # LeakSanitizer checks that nothing leaked instead.
        if not sanitized(worker):
            self.assertLess(grown, 4096, "RSS grew by %d kB over 1,800 reloads" % grown)
        self.assertNotIn("reload refused", m.output())
        # Still accepted afterwards, and signing still works.
        write_config(m.config, self.config_text(roles={"last": "subject = last\n"}, key=big))
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.isdir(m.path("last")), 10))
        self.assertEqual(jwt_part(m.read("last", "token"), 0)["alg"], "RS256")

    def test_listing_across_a_reload_neither_skips_nor_repeats(self):
        roles = {"role%04d" % i: "subject = s%d\n" % i for i in range(600)}
        m = self.mount(roles=roles)
        current = len(roles)
        for trial in range(3):
            with os.scandir(m.mnt) as it:
                names = [next(it).name for _ in range(50)]
                keep = sorted(roles)[trial * 50:]
                write_config(m.config, self.config_text(
                    roles={n: roles[n] for n in reversed(keep)}))
                m.proc.send_signal(signal.SIGHUP)
                time.sleep(0.5)
                names += [e.name for e in it]
            roles_seen = [n for n in names if n.startswith("role")]
            self.assertEqual(len(roles_seen), len(set(roles_seen)), "an entry repeated")
            # One listing is of one configuration: the one in force when
            # the directory was opened.
            self.assertEqual(len(roles_seen), current, "a listing skipped entries")
            current = len(keep)


class TestAccess(PromiseCase):
    def holder(self, path, uid):
        return fd_holder(self, path, uid)

    def ask(self, p):
        return holder_read(p)

    def test_changing_the_owner_revokes_open_descriptors(self):
        self.proxy.lifetime = 6
        os.chmod(self.dir, 0o755)
        roles = lambda uid: {"app": "subject = app\nuid = %d\nmode = 0400\n" % uid}
        m = self.mount(roles=roles(12345), extra_args=["-o", "allow_other"],
                       defaults="refresh_fraction = 0.3\nmin_validity = 1\n")
        old = self.holder(m.path("app", "credentials"), 12345)
        self.assertEqual(self.ask(old)[0], "ok")
        write_config(m.config, self.config_text(roles=roles(12346),
                                                defaults="refresh_fraction = 0.3\nmin_validity = 1\n"))
        m.proc.send_signal(signal.SIGHUP)
        # The new owner shows on the directory and on the file itself (the
        # kernel may hold the file's attributes a moment longer).
        self.assertTrue(wait_for(lambda: os.stat(m.path("app")).st_uid == 12346 and
                                 os.stat(m.path("app", "credentials")).st_uid == 12346, 5))
        self.assertEqual(self.ask(old), ["err", str(errno.EACCES)])
        new = self.holder(m.path("app", "credentials"), 12346)
        # Across renewals the new owner keeps reading and the old
        # descriptor never sees what was minted after the change.
        for _ in range(8):
            self.assertEqual(self.ask(new)[0], "ok")
            self.assertEqual(self.ask(old), ["err", str(errno.EACCES)])
            time.sleep(1)
        self.assertGreaterEqual(self.proxy.count(), 2)

    def test_a_removed_role_is_dropped_from_the_kernel(self):
        self.proxy.lifetime = 5
        m = self.mount(roles={"gone": "subject = gone\n", "app": "subject = app\n"})
        fd = os.open(m.path("gone", "credentials"), os.O_RDONLY)
        self.before_unmount(lambda: os.close(fd))
        text = os.pread(fd, 65536, 0).decode()
        expires = rfc3339(m.read("gone", "expiry"))
        write_config(m.config, self.config_text(roles={"app": "subject = app\n"}))
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "gone" not in os.listdir(m.mnt), 5))
        while time.time() < expires + 2:
            try:
                again = os.pread(fd, 65536, 0).decode()
                if time.time() >= expires:
                    self.assertNotEqual(again, text, "expired credentials of a removed role were read")
            except OSError:
                pass
            time.sleep(0.2)


class TestDaemon(PromiseCase):
    def test_relative_mountpoint_is_unmounted_on_sigterm(self):
        write_config(os.path.join(self.dir, "rel.conf"), self.config_text())
        os.mkdir(os.path.join(self.dir, "rel"))
        log = open(os.path.join(self.dir, "rel.log"), "wb")
        p = subprocess.Popen([CREDFS, "-f", "rel.conf", "rel"], cwd=self.dir,
                             stdout=log, stderr=subprocess.STDOUT)
        mnt = os.path.join(self.dir, "rel")
        try:
            self.assertTrue(wait_for(lambda: is_mounted(mnt), 10))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
            self.assertFalse(is_mounted(mnt), "a relative mountpoint stayed mounted")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt])
            log.close()

    def test_no_push_backstop_never_serves_past_the_refresh_point(self):
        """With every invalidation push turned off, the attribute timeouts
        and mtimes alone keep the kernel from serving credentials past
        their refresh point (plus the time a renewal takes)."""
        lifetime, fraction = 8, 0.5
        self.proxy.lifetime = lifetime
        cfg = write_config(os.path.join(self.dir, "np.conf"), self.config_text(
            defaults="wait_timeout = %d\nrefresh_fraction = %s\nmin_validity = 1\n" % (WAIT, fraction)))
        m = Mount(cfg, os.path.join(self.dir, "np"),
                  env=dict(os.environ, CREDFS_TEST_NO_PUSH="1"))
        self.mounts.append(m)
        m.start()
        late, reads, keys = [], 0, set()
        t_end = time.monotonic() + 3 * lifetime
        while time.monotonic() < t_end:
            started = time.time()
            text = m.read("app", "credentials")
            expires = rfc3339(m.read("app", "expiry"))
            keys.add(parse_credentials(text)["aws_access_key_id"])
            refresh = expires - lifetime * (1 - fraction)
            if started > refresh + 2:
                late.append(started - refresh)
            reads += 1
            time.sleep(0.02)
        self.assertEqual(late, [], "served past the refresh point by %s s" % late[:3])
        self.assertGreaterEqual(len(keys), 3, "not renewed")
        self.assertGreater(reads, 100)

    def test_a_killed_daemon_never_serves_expired_credentials_to_a_bind_mount(self):
        self.proxy.lifetime = 6
        m = self.mount(defaults="refresh_fraction = 0.5\nmin_validity = 1\n")
        bind = self.bind(m.path("app"), os.path.join(self.dir, "bind"))
        text = open(os.path.join(bind, "credentials")).read()
        expires = rfc3339(m.read("app", "expiry"))
        m.proc.kill()
        m.proc.wait()
        while time.time() < expires + 3:
            try:
                with open(os.path.join(bind, "credentials")) as f:
                    again = f.read()
                if time.time() > expires:
                    self.fail("credentials read through a bind mount after they expired")
                self.assertEqual(again, text)
            except OSError:
                pass
            time.sleep(0.25)
