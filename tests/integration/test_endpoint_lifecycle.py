"""The HTTP face across the mount's life (docs/lifecycle.md, docs/endpoint.md).
The supervisor keeps the daemon secret and the listening sockets, so each
role's authorization_token and the listen port are the same after a SIGKILL
of the worker and after `credfs takeover`, a client given the token before
goes on with it, and a connection made while no worker serves waits in the
listen backlog for the next one.  A reload that moves `listen` lets the old
port go in the supervisor too; a reload or a start that cannot have its
address is refused, naming it.  Requests are plain http.client ones, a new
connection each; the clients are boto3 and the AWS CLI through endpoint.env."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from endpoint_util import EndpointCase, read_env, request
from harness import (AWS_CLI, CREDFS, Mount, clean_aws_env, is_mounted, wait_for, worker_of,
                     write_config)
from sts_proxy import free_port
from test_lifecycle import takeover

ARN = "arn:aws:sts::123456789012:assumed-role/app-role/credfs-app"
# A boto3 process that lives across the events of a test: for each line on
# stdin a new session, so each line fetches credentials from the endpoint
# again, with the token its environment was given at its start.
BOTO3_CLIENT = (
    "import json, sys, boto3\n"
    "for line in sys.stdin:\n"
    "    try:\n"
    "        s = boto3.session.Session()\n"
    "        c = s.get_credentials()\n"
    "        arn = s.client('sts', endpoint_url=sys.argv[1]).get_caller_identity()['Arn']\n"
    "        out = {'Arn': arn, 'method': c.method}\n"
    "    except Exception as e:\n"
    "        out = {'error': '%s: %s' % (type(e).__name__, e)}\n"
    "    print(json.dumps(out), flush=True)\n")
LONGEST = 1.0   # seconds a request may wait for the next worker


def credentials(port, token, timeout=10):
    """The status of GET /roles/app/credentials with token on port."""
    return request(port, "GET", "/roles/app/credentials", {"Authorization": token},
                   timeout=timeout)[0]


def answer(port, token):
    """credentials(), or None when nothing answers on port."""
    try:
        return credentials(port, token, timeout=2)
    except OSError:
        return None


def refused(port):
    """True if a connection to port is refused (nothing listens on it: a
    socket some process still held would take the connection into its
    backlog instead), False if it is taken."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except socket.timeout:
        return False
    return False


def text_of(path):
    with open(path) as f:
        return f.read()


def credfs_processes(config):
    """Pids of the processes whose command line names config."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if config.encode() in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def busy_socket(case):
    """A socket of the test's own listening on a loopback port: an address
    in use.  Closed at cleanup."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    case.addCleanup(s.close)
    return s, s.getsockname()[1]


class MountWatch:
    """A thread looking at the mount table over and over while it is
    entered: seen is True if mnt was ever mounted meanwhile."""

    def __init__(self, mnt):
        self.mnt, self.seen = mnt, False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop)

    def loop(self):
        while not self.stop.is_set() and not self.seen:
            self.seen = is_mounted(self.mnt)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class Requests:
    """Threads asking for credentials over and over, each request on a new
    connection, until stopped.  Kept: every failure, the requests cut off
    without an answer (with when they began and ended), and how long each
    took.  A request cut off is made again at once, as SDKs do: a worker
    SIGKILLed holding a connection it has accepted takes that connection
    with it, and nothing can answer it then; the test decides whether a
    cut was such a one."""

    def __init__(self, port, token, threads=2):
        self.port, self.token = port, token
        self.failures, self.cuts, self.took, self.answered = [], [], [], []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def one(self):
        """None when the answer is credentials, else what is wrong with it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/roles/app/credentials",
                         headers={"Authorization": self.token})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            return "HTTP %d %s" % (resp.status, body[:80])
        return None if "AccessKeyId" in json.loads(body) else "no credentials in %r" % body[:80]

    def attempt(self):
        """(None or what went wrong, cut: whether the connection was cut)."""
        t0 = time.monotonic()
        try:
            wrong = self.one()
            if not wrong:
                with self.lock:
                    self.answered.append((t0, time.monotonic()))
            return wrong, False
        except ConnectionRefusedError as e:
            return "refused: %s" % e, False
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            # http.client.RemoteDisconnected is a ConnectionResetError.
            return "%s: %s" % (type(e).__name__, e), True
        except Exception as e:  # noqa: BLE001 - recorded for the test
            return "%s: %s" % (type(e).__name__, e), False

    def loop(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            wrong, cut = self.attempt()
            if cut:
                with self.lock:
                    self.cuts.append((t0, time.monotonic(), wrong))
                wrong, _ = self.attempt()
            t1 = time.monotonic()
            with self.lock:
                self.took.append((t0, t1 - t0))
                if wrong:
                    self.failures.append("%.3f: %s" % (t0, wrong))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def longest(self, since=0.0, until=float("inf")):
        """The longest request that began between since and until, in ms."""
        return 1000 * max([d for t0, d in self.took if since <= t0 < until] or [0.0])

    def waited(self, when):
        """How many requests were made before when and answered after it."""
        return sum(1 for t0, t1 in self.answered if t0 < when < t1)


class EndpointLifecycleCase(EndpointCase):
    def setUp(self):
        super().setUp()
        self.runtime = tempfile.mkdtemp(prefix="credfs-runtime-", dir=self.dir)
        os.chmod(self.runtime, 0o700)
        self.env = dict(os.environ, CREDFS_RUNTIME_DIR=self.runtime)

    def endpoint_config(self, listen, roles=None):
        return self.config_text(roles=roles) + "[endpoint]\nlisten = %s\nimds_role = app\n" % listen

    def start(self):
        """A mount with [endpoint] on a free loopback port (self.port), the
        role app read once, so its credentials are at hand."""
        self.port = free_port()
        cfg = write_config(os.path.join(self.dir, "mnt.conf"),
                           self.endpoint_config("127.0.0.1:%d" % self.port))
        m = Mount(cfg, os.path.join(self.dir, "mnt"), env=self.env)
        self.mounts.append(m)
        m.start()
        m.read("app", "credentials")
        return m

    def reload(self, m, text):
        write_config(m.config, text)
        m.proc.send_signal(signal.SIGHUP)

    def boto3_client(self, env):
        """The long-running boto3 process with env; ask() makes it fetch
        credentials and call moto's STS with them."""
        p = subprocess.Popen([sys.executable, "-c", BOTO3_CLIENT, self.moto.url], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (p.stdin.close(), p.kill(), p.wait(), p.stdout.close()))

        def ask():
            p.stdin.write("go\n")
            p.stdin.flush()
            line = p.stdout.readline()
            self.assertTrue(line, "the boto3 client died")
            return json.loads(line)
        return ask

    def kill(self, supervisor):
        """SIGKILL of supervisor's worker: (when it was sent, when the
        supervisor had started the next one)."""
        w = worker_of(supervisor.pid)
        self.assertIsNotNone(w, "no worker")
        t0 = time.monotonic()
        os.kill(w, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: worker_of(supervisor.pid) not in (None, w), 5, 0.01),
                        "no new worker")
        return t0, time.monotonic()

    def assert_nothing_lost(self, rq, kills, what):
        """No request of rq failed.  A connection the killed worker had
        accepted dies with it, and was made again; any other cut is a
        failure (none in a takeover: the old worker stops on purpose)."""
        self.assertEqual(rq.failures, [], "requests failed across " + what)
        stray = ["%.3f-%.3f %s" % c for c in rq.cuts
                 if not any(c[0] < k1 and c[1] > k0 for k0, k1 in kills)]
        self.assertEqual(stray, [], "connections cut off, not by a SIGKILL, across " + what)
        self.assertLessEqual(len(rq.cuts), len(kills) * len(rq.threads))
        # Requests waiting when the next worker started were answered by
        # it: their connections waited in the backlog.
        self.assertNotIn(0, [rq.waited(k1) for _, k1 in kills],
                         "no request waited for the next worker")
        self.assertLess(rq.longest(), LONGEST * 1000,
                        "a request waited over %.1f s across %s" % (LONGEST, what))

    def sdk_env(self, m, token_file=True):
        """endpoint.env as read now, for a client; without the token file,
        the client has only the token it was given now."""
        env = read_env(m.path("app", "endpoint.env"))
        if not token_file:
            del env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
        return clean_aws_env(AWS_DEFAULT_REGION="ap-northeast-1", **env)


class TestTokensAndPortSurvive(EndpointLifecycleCase):
    def test_token_and_port_are_the_same_after_kills_and_a_takeover(self):
        m = self.start()
        token = m.read("app", "authorization_token")
        env_file = m.read("app", "endpoint.env")
        self.assertIn("http://127.0.0.1:%d/roles/app/credentials" % self.port, env_file)
        imds = request(self.port, "PUT", "/latest/api/token",
                       {"X-aws-ec2-metadata-token-ttl-seconds": "3600"})[2]
        given = self.sdk_env(m, token_file=False)   # the token itself, read now
        ask = self.boto3_client(given)
        self.assertEqual(ask(), {"Arn": ARN, "method": "container-role"})
        sup = m.proc
        for event in ("a SIGKILL of the worker", "credfs takeover",
                      "a SIGKILL of the successor's worker"):
            if event == "credfs takeover":
                p = takeover(self, m)
                self.assertEqual(m.proc.wait(15), 0, "the old credfs did not hand over and exit")
                sup = p
                self.assertRegex(text_of(m.log_path + ".takeover"),
                                 r"taking over \S+ from credfs \d")
            else:
                self.kill(sup)
            self.assertEqual(m.read("app", "authorization_token"), token, event)
            self.assertEqual(m.read("app", "endpoint.env"), env_file, event)
            self.assertEqual(credentials(self.port, token), 200, event)
            status, _, body = request(self.port, "GET",
                                      "/latest/meta-data/iam/security-credentials/",
                                      {"X-aws-ec2-metadata-token": imds})
            self.assertEqual((status, body), (200, "app"), "IMDS session token after " + event)
            self.assertEqual(ask(), {"Arn": ARN, "method": "container-role"}, event)
        self.assertIsNone(sup.poll(), "the successor is not serving")
        # Debian's CLI 2.9 knows only the token variable: the one read at
        # the start.
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url, "--output", "json"],
                             env=given, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["Arn"], ARN)


class TestNoRequestLost(EndpointLifecycleCase):
    def test_requests_across_three_kills_and_a_takeover(self):
        m = self.start()
        token = m.read("app", "authorization_token")
        kills = []
        with Requests(self.port, token) as rq:
            for _ in range(3):
                time.sleep(1.2)     # past QUICK_DEATH_MS: no restart backoff
                kills.append(self.kill(m.proc))
            time.sleep(1.2)
            # A request on a connection the old worker accepted, its end
            # sent while that worker stops: it is answered, not cut off.
            held = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.addCleanup(held.close)
            held.sendall(b"GET /roles/app/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: " + token.encode() + b"\r\n")
            time.sleep(0.1)
            t_takeover = time.monotonic()
            p = takeover(self, m)
            self.assertTrue(wait_for(lambda: "serving again" in text_of(m.log_path + ".takeover"),
                                     15, 0.01), "the successor does not serve")
            time.sleep(0.1)         # its RELEASE: the old worker stops
            held.sendall(b"\r\n")
            resp = http.client.HTTPResponse(held)
            try:
                resp.begin()
                held_status = resp.status
            except OSError as e:
                held_status = "%s: %s" % (type(e).__name__, e)
            self.assertEqual(m.proc.wait(15), 0, "the old credfs did not hand over and exit")
            t_handed = time.monotonic()
            time.sleep(1.0)
        across_kills = max(rq.longest(k0 - 0.1, k1 + 0.5) for k0, k1 in kills)
        across_takeover = rq.longest(t_takeover - 0.1, t_handed + 0.5)
        print("%d requests across 3 SIGKILLs and a takeover: longest %.1f ms (across a kill "
              "%.1f ms, across the takeover %.1f ms); %s waiting for the next worker, "
              "answered by it; %d cut off with a killed worker, made again"
              % (len(rq.took), rq.longest(), across_kills, across_takeover,
                 "+".join(str(rq.waited(k1)) for _, k1 in kills), len(rq.cuts)),
              flush=True)
        self.assertIsNone(p.poll(), "the new credfs is not serving")
        self.assertEqual(held_status, 200, "a request the old worker had begun to read")
        self.assert_nothing_lost(rq, kills, "3 kills and a takeover (%.3f-%.3f)"
                                 % (t_takeover, t_handed))
        self.assertGreater(len(rq.took), 300)
        self.assertEqual(m.read("app", "authorization_token"), token)


class TestReloadListen(EndpointLifecycleCase):
    def test_a_reload_moves_the_port_and_a_kill_keeps_the_new_one(self):
        m = self.start()
        token = m.read("app", "authorization_token")
        old, new = self.port, free_port()
        self.reload(m, self.endpoint_config("127.0.0.1:%d" % new))
        self.assertEqual(wait_for(lambda: answer(new, token), 10), 200,
                         "the new port does not answer")
        # The old port's socket is closed by the worker and by the
        # supervisor, which kept a copy for the next worker.
        self.assertTrue(wait_for(lambda: refused(old), 5),
                        "the old port still takes connections: its socket is still held")
        self.assertIn("127.0.0.1:%d/roles/app" % new, m.read("app", "endpoint.env"))
        # The supervisor keeps the new port for the next worker: requests
        # made meanwhile wait for it, none is refused.
        with Requests(new, token, threads=1) as rq:
            time.sleep(0.3)
            kill = self.kill(m.proc)
            time.sleep(0.5)
        self.assert_nothing_lost(rq, [kill], "a SIGKILL after the move")
        self.assertEqual(credentials(new, token), 200)
        self.assertEqual(m.read("app", "authorization_token"), token)
        self.assertTrue(refused(old), "the next worker listens on the old port")
        self.assertEqual(self.boto3_client(self.sdk_env(m))(),
                         {"Arn": ARN, "method": "container-role"})

    def test_a_reload_to_an_address_in_use_is_refused_whole(self):
        m = self.start()
        token = m.read("app", "authorization_token")
        _, busy = busy_socket(self)
        roles = {"app": "subject = system:serviceaccount:prod:app\n",
                 "added": "subject = added\n"}
        self.reload(m, self.endpoint_config("127.0.0.1:%d" % busy, roles=roles))
        self.assertTrue(wait_for(lambda: "reload refused" in m.output(), 10),
                        "no refusal in the log:\n" + m.output()[-2000:])
        line = [l for l in m.output().splitlines() if "reload refused" in l][0]
        self.assertIn("127.0.0.1:%d" % busy, line)
        self.assertIn("in use", line)
        # Nothing of it was taken: the role it adds, the address it moves.
        self.assertNotIn("added", os.listdir(m.mnt))
        self.assertEqual(credentials(self.port, token), 200)
        self.assertIn("127.0.0.1:%d/roles/app" % self.port, m.read("app", "endpoint.env"))
        self.assertEqual(m.read("app", "authorization_token"), token)
        self.assertIsNotNone(worker_of(m.proc.pid))


class TestStartRefused(EndpointLifecycleCase):
    def test_an_address_in_use_at_start_mounts_nothing(self):
        _, busy = busy_socket(self)
        first = free_port()
        cfg = write_config(os.path.join(self.dir, "busy.conf"),
                           self.endpoint_config("127.0.0.1:%d, 127.0.0.1:%d" % (first, busy)))
        mnt = os.path.join(self.dir, "busy")
        os.mkdir(mnt)

        def clean():
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
            for pid in credfs_processes(cfg):
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(clean)
        for how, args in (("in the foreground", ["-f"]), ("detaching", [])):
            with MountWatch(mnt) as watch:
                r = subprocess.run([CREDFS] + args + [cfg, mnt], env=self.env,
                                   capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, how)
            self.assertIn("cannot listen on 127.0.0.1:%d" % busy, r.stderr, how)
            self.assertFalse(watch.seen, "mounted for a moment %s" % how)
            self.assertFalse(is_mounted(mnt), "mounted %s" % how)
            self.assertEqual(wait_for(lambda: not credfs_processes(cfg), 5), True,
                             "a credfs process is left %s" % how)
            self.assertEqual(os.listdir(self.runtime), [], how)
            # The address it had bound before the busy one is free again.
            self.assertTrue(refused(first), how)
