"""A local STS that answers by itself and throttles per account, for the
fleet tests and benchmarks.

The counting proxy (sts_proxy.py) forwards to moto, which answers about a
hundred exchanges a second on this kind of machine and has no notion of an
account-wide rate.  STS throttles per account: above its rate it answers
HTTP 400 with the code Throttling ("Rate exceeded").  This one does that:

  - every AssumeRoleWithWebIdentity and AssumeRole is checked the way the
    proxy checks it (Version, required parameters and their limits) and
    answered with fresh credentials that expire `lifetime` seconds later;
  - an account-wide token bucket (`rate` requests per second, `burst` at
    once, 0: no limit) decides; a request that finds it empty gets the
    throttling answer (HTTP 400 and code Throttling by default; 429 or 503
    can be asked for) and is counted, never answered with credentials;
  - `latency` seconds pass before a success is answered, so requests stay
    in flight for a while;
  - `faults` (consumed one per request) and a sticky fault answer an error
    instead, as in the proxy;
  - every request is recorded: arrival and answer on CLOCK_MONOTONIC (what
    time.monotonic() reads in every process), RoleArn, RoleSessionName,
    the outcome ("ok", "throttled", "fault", "invalid"), how many
    requests were in flight when it arrived, and the AccessKeyId handed out.

The server runs in a process of its own (`python3 local_sts.py`), one
asyncio event loop, so that a busy test or benchmark (whose Python holds
its own interpreter lock) never delays it; arrival times are the kernel's
receive timestamps of each request's first bytes.  It exits when its
parent does.  LocalSts starts it and talks to it over the same port:
GET /_control/requests, GET /_control/state, POST /_control/set.  It
listens on loopback only, plain HTTP/1.1 with keep-alive, TCP_NODELAY and
one write per answer.
"""
import asyncio
import base64
import datetime
import http.client
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse

SO_TIMESTAMPNS = 35     # Linux, <asm-generic/socket.h>; Python has no name for it

REQUIRED = {
    "AssumeRoleWithWebIdentity": ["RoleArn", "RoleSessionName", "WebIdentityToken"],
    "AssumeRole": ["RoleArn", "RoleSessionName"],
}

ERROR_XML = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
             "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
             "<RequestId>%s</RequestId></ErrorResponse>\n")

SUCCESS_XML = ('<%(action)sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
               "<%(action)sResult><Credentials>"
               "<AccessKeyId>%(akid)s</AccessKeyId>"
               "<SecretAccessKey>%(secret)s</SecretAccessKey>"
               "<SessionToken>%(token)s</SessionToken>"
               "<Expiration>%(expiration)s</Expiration></Credentials>"
               "<AssumedRoleUser><AssumedRoleId>AROA%(rid)s:%(session)s</AssumedRoleId>"
               "<Arn>%(assumed)s</Arn></AssumedRoleUser>"
               "<Audience>sts.amazonaws.com</Audience><Provider>oidc.example.com</Provider>"
               "</%(action)sResult><ResponseMetadata><RequestId>%(reqid)s</RequestId>"
               "</ResponseMetadata></%(action)sResponse>\n")


def validate(action, params, headers):
    """What STS would refuse in a request (as sts_proxy.py checks), or None."""
    if action not in REQUIRED:
        return "unknown Action %r" % action
    if params.get("Version") != "2011-06-15":
        return "Version must be 2011-06-15"
    for key in REQUIRED[action]:
        if not params.get(key):
            return "missing %s" % key
    if not (2 <= len(params["RoleSessionName"]) <= 64):
        return "RoleSessionName length"
    d = params.get("DurationSeconds")
    if d is not None and not (d.isdigit() and 900 <= int(d) <= 43200):
        return "DurationSeconds out of range"
    if action == "AssumeRoleWithWebIdentity":
        if "authorization" in headers:
            return "AssumeRoleWithWebIdentity must not be signed"
        if not (4 <= len(params["WebIdentityToken"]) <= 20000):
            return "WebIdentityToken length"
    elif not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
        return "AssumeRole must be SigV4-signed"
    return None


# ---- the server (its own process) --------------------------------------------

class Bucket:
    """The account's token bucket: `rate` per second, at most `burst` kept
    (default: one second's worth).  rate 0: no limit."""

    def __init__(self, rate=0, burst=None):
        self.set(rate, burst)

    def set(self, rate, burst=None):
        self.rate = float(rate)
        self.burst = float(burst) if burst else max(self.rate, 1.0)
        self.tokens = self.burst
        self.at = time.monotonic()

    def take(self, now):
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Server:
    def __init__(self, sock):
        self.sock = sock
        self.bucket = Bucket()
        self.lifetime = 3600
        self.latency = 0.0
        self.throttle = (400, "Throttling")
        self.faults = []            # [status, code, message], one per request
        self.sticky = None
        # [arrived, answered, action, arn, session, outcome, in_flight,
        #  the AccessKeyId handed out or None]
        self.requests = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.connections = 0

    def configure(self, c):
        if c.get("reset"):
            self.requests = []
            self.faults = []
            self.sticky = None
            self.peak_in_flight = self.in_flight
            self.bucket.set(self.bucket.rate, self.bucket.burst)
        if "rate" in c or "burst" in c:
            self.bucket.set(c.get("rate", self.bucket.rate), c.get("burst"))
        if "lifetime" in c:
            self.lifetime = c["lifetime"]
        if "latency" in c:
            self.latency = c["latency"]
        if "throttle" in c:
            self.throttle = tuple(c["throttle"])
        if "faults" in c:
            self.faults = list(c["faults"])
        if "sticky" in c:
            self.sticky = c["sticky"]

    # A request's arrival is when its first bytes reached the socket, as
    # the kernel stamped them (SO_TIMESTAMPNS), not when this loop got to
    # them: a busy moment here must not bunch arrivals up.

    def accepted(self, sock):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.connections += 1
        conn = Connection(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self.readable, conn)

    def readable(self, conn):
        """Bytes for conn: complete requests are answered in order."""
        try:
            data, anc, _, _ = conn.sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        if not conn.buf:
            conn.arrived = arrival_of(anc)
        conn.buf += data
        while conn.buf:
            req = parse_request(conn.buf)
            if req is None:
                if len(conn.buf) > 1 << 20:
                    self.close(conn)
                return
            method, path, headers, body, used = req
            conn.buf = conn.buf[used:]
            conn.last = asyncio.ensure_future(
                self.respond(conn, conn.last, conn.arrived, method, path, headers, body))
            conn.arrived = time.monotonic()

    def close(self, conn):
        loop = asyncio.get_running_loop()
        loop.remove_reader(conn.sock.fileno())
        conn.sock.close()

    async def respond(self, conn, before, arrived, method, path, headers, body):
        if path.startswith("/_control/"):
            status, ctype, answer = self.control(method, path, body)
        else:
            ctype = "text/xml"
            status, answer = await self.exchange(arrived, method, headers, body)
        if before is not None:
            await before        # answers go out in the order asked
        data = answer.encode()
        try:
            await asyncio.get_running_loop().sock_sendall(conn.sock, (
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                % (status, http.client.responses.get(status, ""), ctype, len(data))
            ).encode() + data)
        except OSError:
            pass

    def control(self, method, path, body):
        if path.startswith("/_control/requests"):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            start = int(q.get("from", ["0"])[0])
            return 200, "application/json", json.dumps(self.requests[start:])
        if path == "/_control/state":
            return 200, "application/json", json.dumps({
                "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                "connections": self.connections, "requests": len(self.requests),
                "rate": self.bucket.rate})
        if path == "/_control/set" and method == "POST":
            self.configure(json.loads(body or b"{}"))
            return 200, "application/json", "{}"
        return 404, "text/plain", "no such control"

    def decide(self):
        """(outcome, fault or None) for a valid request."""
        fault = self.faults.pop(0) if self.faults else self.sticky
        if fault:
            return "fault", fault
        if not self.bucket.take(time.monotonic()):
            return "throttled", [self.throttle[0], self.throttle[1], "Rate exceeded"]
        return "ok", None

    async def exchange(self, arrived, method, headers, body):
        """(HTTP status, body) for one request to STS; records it."""
        params = dict(urllib.parse.parse_qsl(body.decode(errors="replace"),
                                             keep_blank_values=True))
        action = params.get("Action", "")
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        rec = [arrived, None, action, params.get("RoleArn"), params.get("RoleSessionName"),
               None, self.in_flight, None]
        self.requests.append(rec)
        try:
            problem = "POST only" if method != "POST" else validate(action, params, headers)
            if problem:
                rec[5] = "invalid"
                return 400, ERROR_XML % ("ValidationError", problem, secrets.token_hex(8))
            rec[5], fault = self.decide()
            if fault:
                return fault[0], ERROR_XML % (fault[1], fault[2], secrets.token_hex(8))
            if self.latency:
                await asyncio.sleep(self.latency)
            akid = "ASIA" + secrets.token_hex(8).upper()
            rec[7] = akid
            return 200, self.success(action, params, akid)
        finally:
            self.in_flight -= 1
            rec[1] = time.monotonic()

    def success(self, action, params, akid):
        now = datetime.datetime.now(datetime.timezone.utc)
        when = now + datetime.timedelta(seconds=self.lifetime)
        arn = params["RoleArn"]
        account = arn.split(":")[4] if arn.count(":") >= 5 else "123456789012"
        role = arn.rsplit("/", 1)[-1]
        session = params["RoleSessionName"]
        return SUCCESS_XML % {
            "action": action,
            "akid": akid,
            # The alphabets STS uses: base64, as credfs checks.
            "secret": base64.b64encode(secrets.token_bytes(30)).decode(),
            "token": base64.b64encode(secrets.token_bytes(150)).decode(),
            "expiration": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rid": secrets.token_hex(8).upper(),
            "session": session,
            "assumed": "arn:aws:sts::%s:assumed-role/%s/%s" % (account, role, session),
            "reqid": secrets.token_hex(16),
        }

    async def run(self, parent):
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)

        def accept():
            while True:
                try:
                    sock, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                self.accepted(sock)

        loop.add_reader(self.sock.fileno(), accept)
        # Nothing outlives its starter: gone parent, gone server.
        while os.getppid() == parent:
            await asyncio.sleep(0.5)


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.arrived = None     # of the request whose bytes are in buf
        self.last = None        # the answer being made


def arrival_of(anc):
    """The kernel's receive time of a segment (SO_TIMESTAMPNS, wall clock)
    on time.monotonic(); now when there is none."""
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return time.monotonic() - (time.time() - (sec + nsec / 1e9))
    return time.monotonic()


def parse_request(buf):
    """(method, path, headers, body, bytes used) of the first complete
    request in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    method, path = (lines[0].split(" ") + ["", ""])[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    if len(buf) < end + 4 + length:
        return None
    return method, path, headers, buf[end + 4:end + 4 + length], end + 4 + length


def serve_main(argv):
    """python3 local_sts.py: prints the port it listens on, then serves
    until its parent exits or it gets SIGTERM."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    print(sock.getsockname()[1], flush=True)
    try:
        asyncio.run(Server(sock).run(parent))
    except KeyboardInterrupt:
        pass
    return 0


# ---- the client (the test's or benchmark's process) ---------------------------

class Request:
    """One request as the STS saw it (times on time.monotonic())."""
    __slots__ = ("arrived", "answered", "action", "role_arn", "session", "outcome",
                 "in_flight", "akid")

    def __init__(self, rec):
        (self.arrived, self.answered, self.action, self.role_arn, self.session,
         self.outcome, self.in_flight, self.akid) = rec


class LocalSts:
    """Starts the server process and asks it what it saw."""

    def __init__(self, rate=0, burst=None, lifetime=3600, latency=0.0,
                 throttle_status=400, throttle_code="Throttling"):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the local STS did not start")
        self.port = int(line)
        self.url = "http://127.0.0.1:%d" % self.port
        self._cache = []
        self.set(rate=rate, burst=burst, lifetime=lifetime, latency=latency,
                 throttle=[throttle_status, throttle_code])

    def start(self):
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def _call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError("local STS %s: HTTP %d" % (path, resp.status))
            return json.loads(data)
        finally:
            conn.close()

    def set(self, **settings):
        """rate, burst, lifetime, latency, throttle=[status, code],
        faults=[[status, code, message], ...], sticky=[...] or None,
        reset=True (forget what was recorded, fill the bucket)."""
        if settings.get("reset"):
            self._cache = []
        self._call("POST", "/_control/set", json.dumps(
            {k: v for k, v in settings.items() if v is not None or k == "sticky"}))

    def reset(self):
        self.set(reset=True)

    def set_rate(self, rate, burst=None):
        self.set(rate=rate, burst=burst)

    def fail_always(self, status=400, code="AccessDenied", message="Not authorized"):
        self.set(sticky=[status, code, message])

    def heal(self):
        self.set(sticky=None, faults=[])

    def state(self):
        return self._call("GET", "/_control/state")

    @property
    def peak_in_flight(self):
        return self.state()["peak_in_flight"]

    def snapshot(self):
        """Every request recorded so far, in arrival order.  The answered
        ones up to the first unanswered are kept here; the rest are asked
        for again next time."""
        keep = 0
        while keep < len(self._cache) and self._cache[keep].answered is not None:
            keep += 1
        fresh = [Request(rec) for rec in self._call("GET", "/_control/requests?from=%d"
                                                    % keep)]
        self._cache = self._cache[:keep] + fresh
        return list(self._cache)

    def count(self, outcome=None, role_arn=None, since=None, until=None):
        return sum(1 for r in self.snapshot()
                   if (outcome is None or r.outcome == outcome)
                   and (role_arn is None or r.role_arn == role_arn)
                   and (since is None or r.arrived >= since)
                   and (until is None or r.arrived < until))

    def peak_rate(self, window=1.0, outcome=None, since=None, until=None, requests=None):
        """The most requests that arrived within any `window` seconds."""
        return peak_in_window([r.arrived for r in (requests or self.snapshot())
                               if (outcome is None or r.outcome == outcome)
                               and (since is None or r.arrived >= since)
                               and (until is None or r.arrived < until)], window)

    def per_second(self, start, seconds, outcome=None, requests=None):
        """Arrivals per whole second from `start` (monotonic), `seconds` bins."""
        bins = [0] * seconds
        for r in requests or self.snapshot():
            if outcome is not None and r.outcome != outcome:
                continue
            i = int(r.arrived - start)
            if 0 <= i < seconds:
                bins[i] += 1
        return bins


def peak_in_window(times, window):
    """The most of `times` within any half-open interval of `window`."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv))
