"""Shared machinery of the integration tests: a moto STS, the counting
proxy in front of it, keys and configs in a temporary directory, and a real
credfs mount that is always unmounted, even when a test fails."""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from sts_proxy import StsProxy, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CREDFS = os.environ.get("CREDFS_BIN", os.path.join(ROOT, "build", "daemon", "credfs"))
AWS_CLI = "/usr/bin/aws"
SYSTEM_PYTHON = "/usr/bin/python3"   # Debian's, with python3-jwt
ACCOUNT = "123456789012"
ARN = "arn:aws:sts::" + ACCOUNT + ":assumed-role/%s-role/%s"   # % (role, session name)
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error: ")


def moto_command():
    exe = shutil.which("moto_server")
    if exe:
        return [exe]
    pyenv = os.path.expanduser("~/.pyenv/shims/moto_server")
    if os.path.exists(pyenv):
        return [pyenv]
    raise RuntimeError("moto_server not found (it comes with the machine's pyenv Python)")


def die_with_parent():
    """In the child, before exec: SIGTERM when the test process goes, however
    it goes, so no server a test starts outlives it (PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Moto:
    """moto_server on a free loopback port, for the life of a test class."""

    def __init__(self, env=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = tempfile.TemporaryFile()
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(moto_command() + ["-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=self.log, env=e,
                                     start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited at start")
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def keygen(path, kind="ec"):
    subprocess.run([CREDFS, "keygen", "--type", kind, path], check=True)
    return path


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def is_mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mnt and " - fuse.credfs " in line:
                return True
    return False


class Mount:
    """credfs -f CONFIG MNT in the background.  start() waits for the mount
    with a deadline and fails if the daemon exits first; stop() always
    unmounts (fusermount3 -u, then -uz, then kill)."""

    def __init__(self, config, mnt, extra_args=(), env=None):
        self.config = config
        self.mnt = mnt
        self.log_path = mnt.rstrip("/") + ".log"
        self.args = [CREDFS, "-f"] + list(extra_args) + [config, mnt]
        self.env = env
        self.proc = None

    def start(self, timeout=10):
        os.makedirs(self.mnt, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("credfs exited (%d) before mounting:\n%s"
                                   % (self.proc.returncode, self.output()))
            if is_mounted(self.mnt):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("credfs did not mount within %d s" % timeout)

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if is_mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        self.log.close()
        self.proc = None
        # Under the sanitizer build a report in the daemon's log fails the test.
        report = SANITIZER_REPORT.search(self.output())
        if report:
            raise AssertionError("sanitizer report in the credfs log:\n"
                                 + self.output()[report.start():][:4000])

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def read(self, *parts):
        with open(self.path(*parts)) as f:
            return f.read()

    def status(self, role):
        return json.loads(self.read(role, "status"))


def fd_holder(case, path, uid):
    """A process of uid holding path open (opened once, at start); it reads
    it from the start whenever holder_read asks.  Killed at cleanup."""
    code = ("import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\n"
            "for line in sys.stdin:\n"
            "    try:\n"
            "        d=os.pread(fd,65536,0); print('ok', len(d), flush=True)\n"
            "    except OSError as e: print('err', e.errno, flush=True)\n")
    p = subprocess.Popen(["setpriv", "--reuid", str(uid), "--regid", str(uid),
                          "--clear-groups", "/usr/bin/python3", "-c", code, path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    case.addCleanup(lambda: (p.kill(), p.wait()))
    return p


def holder_read(p):
    """What fd_holder p's read gave: ["ok", LEN] or ["err", ERRNO]."""
    p.stdin.write("read\n")
    p.stdin.flush()
    return p.stdout.readline().split()


def clean_aws_env(**extra):
    """The environment of a process that knows of AWS only what we give it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["HOME"] = tempfile.mkdtemp(prefix="credfs-home-")
    env.update(extra)
    return env


class CredfsTestCase(unittest.TestCase):
    """A moto STS and a counting proxy per class; a temp dir and a signing
    key per test; mounts made with self.mount() are always unmounted."""

    @classmethod
    def setUpClass(cls):
        cls.moto = Moto()
        cls.proxy = StsProxy(cls.moto.port).start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.moto.stop()

    def setUp(self):
        self.proxy.reset()
        self.dir = tempfile.mkdtemp(prefix="credfs-test-")
        self.key = keygen(os.path.join(self.dir, "signer.pem"))
        self.mounts = []
        self.binds = []
        self.first = []

    def before_unmount(self, fn):
        """fn() runs at tearDown, before bind mounts and mounts are undone and
        the temp dir removed (addCleanup's run after all that): for what
        holds a mount or would hang a walk of the temp dir."""
        self.first.append(fn)

    def tearDown(self):
        for fn in reversed(self.first):
            fn()
        # Bind mounts next: a bind holds the credfs mount it was made of.
        for target in reversed(self.binds):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        for m in reversed(self.mounts):
            m.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def bind(self, source, target):
        """mount --bind source target (what docker -v does), undone at tearDown."""
        if not os.path.exists(target):
            if os.path.isdir(source):
                os.makedirs(target)
            else:
                open(target, "w").close()
        r = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.binds.append(target)
        return target

    def config_text(self, roles=None, endpoint=None, defaults="", key=None, signer_extra=""):
        endpoint = endpoint or self.proxy.url
        if roles is None:
            roles = {"app": "subject = system:serviceaccount:prod:app\n"}
        if "wait_timeout" not in defaults:
            defaults = "wait_timeout = 5\n" + defaults
        text = ("[credfs]\nregion = ap-northeast-1\nsts_endpoint = %s\n%s\n"
                "[signer]\nkey = %s\nissuer = https://oidc.example.com\n%s\n"
                % (endpoint, defaults, key or self.key, signer_extra))
        for name, body in roles.items():
            text += "[role %s]\nrole_arn = arn:aws:iam::%s:role/%s-role\n%s\n" % (
                name, ACCOUNT, name, body)
        return text

    def mount(self, text=None, extra_args=(), name="mnt", **kw):
        cfg = write_config(os.path.join(self.dir, name + ".conf"), text or self.config_text(**kw))
        m = Mount(cfg, os.path.join(self.dir, name), extra_args)
        self.mounts.append(m)
        return m.start()


# ---- helpers shared by the test modules ---------------------------------

def parse_credentials(text):
    """The [default] section of a credentials document."""
    import configparser
    ini = configparser.ConfigParser()
    ini.read_string(text)
    return ini["default"]


def jwt_part(token, i):
    """Header (0) or payload (1) of a JWT, decoded, without verifying it."""
    import base64
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def read_errno(path):
    """0 if path reads, else the errno of the failure."""
    try:
        with open(path) as f:
            f.read()
    except OSError as e:
        return e.errno
    return 0


def worker_of(supervisor):
    """The pid of the worker (credfs --worker) of the supervisor with pid
    supervisor, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != supervisor:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if b"--worker" in f.read():
                    return int(d)
        except (OSError, IndexError, ValueError):
            pass
    return None


def wait_for(predicate, timeout=10.0, step=0.1):
    """predicate() once it is true within timeout seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    return predicate()


def sanitized(pid):
    """Whether process pid runs the AddressSanitizer build."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def fd_count(pid):
    """Open descriptors of process pid."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rfc3339(text):
    """Seconds since the epoch of "2026-11-22T11:41:34Z"."""
    import calendar
    return calendar.timegm(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ"))
