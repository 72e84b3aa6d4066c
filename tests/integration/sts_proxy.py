"""A local STS for tests: a counting, validating, fault-injecting proxy in
front of moto.

Every request is checked the way STS would check it (form encoding, Action,
Version, required parameters and their limits), counted by Action, and then
either forwarded to moto or answered with an injected fault.  It listens on
loopback only, over plain HTTP or, given a certificate, over TLS.

Faults come from three places, first match wins: `faults` (consumed one per
request), a per-role fault set with fail_role() (matched on RoleArn), and
the sticky fault of fail_always().  Setting `lifetime` makes forwarded
successes expire that many seconds from now (moto's minimum is 900 s), so
tests can watch credentials expire.
"""
import datetime
import http.client
import http.server
import json
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse

REQUIRED = {
    "AssumeRoleWithWebIdentity": ["RoleArn", "RoleSessionName", "WebIdentityToken"],
    "AssumeRole": ["RoleArn", "RoleSessionName"],
}

ERROR_XML = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>
"""

# An entity-expansion bomb: 10^9 "lol"s if a parser expanded it.
BILLION_LAUGHS = ("""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
""" + "".join(' <!ENTITY lol%d "%s">\n' % (i, ("&lol%s;" % (i - 1 if i > 1 else "")) * 10)
              for i in range(1, 10)) + """]>
<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>ASIALAUGHS</AccessKeyId><SecretAccessKey>&lol9;</SecretAccessKey>
<SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>
</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>
""")


class Fault:
    """What the proxy answers instead of forwarding:
    "error"      an STS error document (code, message) with status;
    "hang"       nothing for `seconds`, then a 503;
    "reset"      the connection is reset (TCP RST) without an answer;
    "raw"        status with `message` as the body, as is (garbage, HTML,
                 oversized or malicious documents);
    "truncated"  status and a Content-Length for the whole of `message`,
                 then only its first half and a closed connection."""

    def __init__(self, kind="error", status=400, code="AccessDenied",
                 message="Not authorized to perform sts:AssumeRoleWithWebIdentity",
                 seconds=0.0):
        self.kind = kind
        self.status = status
        self.code = code
        self.message = message
        self.seconds = seconds

    def __repr__(self):
        return "Fault(%s, %s, %s)" % (self.kind, self.status, self.code)


def make_tls_cert(directory, san="IP:127.0.0.1"):
    """A self-signed certificate for `san` made with openssl in directory;
    returns (certfile, keyfile)."""
    cert, key = directory + "/sts-cert.pem", directory + "/sts-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=credfs test STS", "-addext", "subjectAltName=" + san],
                   check=True, capture_output=True)
    return cert, key


class StsProxy:
    def __init__(self, upstream_port, tls=None):
        """tls: None for plain HTTP, or (certfile, keyfile) to serve TLS."""
        self.upstream_port = upstream_port
        self.tls = tls
        self.lock = threading.Lock()
        self.calls = []          # (action, params) per request received
        self.times = []          # (monotonic time, action, RoleArn) per request
        self.faults = []         # consumed one per request
        self.role_faults = {}    # RoleArn -> Fault, until heal_role()/heal()
        self.sticky_fault = None
        self.lifetime = None     # seconds: rewrite Expiration of forwarded successes
        self.mutate = None       # bytes -> bytes: rewrite forwarded successes
        self.connections = 0     # TCP connections accepted (TLS handshakes tried)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # Clients that give up on a hung answer, and failed TLS handshakes,
        # are expected; stay quiet.
        self.server.handle_error = lambda request, address: None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        accept = self.server.get_request

        def get_request():
            conn = accept()
            with self.lock:
                self.connections += 1
            return conn

        self.server.get_request = get_request
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.calls = []
            self.times = []
            self.faults = []
            self.role_faults = {}
            self.sticky_fault = None
            self.lifetime = None
            self.mutate = None
            self.connections = 0

    def fail_always(self, fault):
        with self.lock:
            self.sticky_fault = fault

    def fail_role(self, role_arn, fault):
        """Every exchange for role_arn gets fault until heal_role()/heal()."""
        with self.lock:
            self.role_faults[role_arn] = fault

    def heal_role(self, role_arn):
        with self.lock:
            self.role_faults.pop(role_arn, None)

    def heal(self):
        with self.lock:
            self.sticky_fault = None
            self.faults = []
            self.role_faults = {}

    def count(self, action=None, role_arn=None):
        with self.lock:
            return sum(1 for a, p in self.calls
                       if (action is None or a == action)
                       and (role_arn is None or p.get("RoleArn") == role_arn))

    def params(self, action):
        with self.lock:
            return [p for a, p in self.calls if a == action]

    def attempt_times(self, role_arn):
        """Monotonic times of the exchanges received for role_arn."""
        with self.lock:
            return [t for t, _, arn in self.times if arn == role_arn]

    def _next_fault(self, role_arn):
        with self.lock:
            if self.faults:
                return self.faults.pop(0)
            if role_arn in self.role_faults:
                return self.role_faults[role_arn]
            return self.sticky_fault

    def set_session_token(self, fn):
        """Forwarded successes get fn(session token) as their SessionToken:
        a long one, a hostile one."""
        def mutate(data):
            return re.sub(rb"<SessionToken>([^<]*)</SessionToken>",
                          lambda m: b"<SessionToken>" + fn(m.group(1).decode()).encode()
                          + b"</SessionToken>", data)
        with self.lock:
            self.mutate = mutate

    def _rewrite_expiration(self, data):
        with self.lock:
            lifetime = self.lifetime
            mutate = self.mutate
        if mutate and b"<Credentials>" in data:
            data = mutate(data)
        if lifetime is None or b"<Expiration>" not in data:
            return data
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        return re.sub(rb"<Expiration>[^<]*</Expiration>",
                      b"<Expiration>" + stamp + b"</Expiration>", data)

    def _handler(proxy):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this,
            # Nagle's algorithm holds the body back 40 ms on a kept-alive
            # connection.
            disable_nagle_algorithm = True
            timeout = 60

            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="text/xml"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, method, body, exchange=False):
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if exchange and resp.status == 200:
                    data = proxy._rewrite_expiration(data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def do_GET(self):
                self._forward("GET", None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("application/x-www-form-urlencoded"):
                    return self._forward("POST", body)
                params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                action = params.get("Action", "")
                if action not in REQUIRED:
                    # Not an exchange (e.g. the CLI's GetCallerIdentity).
                    return self._forward("POST", body)
                with proxy.lock:
                    proxy.calls.append((action, params))
                    proxy.times.append((time.monotonic(), action, params.get("RoleArn")))
                problem = self._validate(action, params)
                if problem:
                    return self._reply(400, ERROR_XML.format(code="ValidationError", message=problem))
                fault = proxy._next_fault(params.get("RoleArn"))
                if fault is None:
                    return self._forward("POST", body, exchange=True)
                if fault.kind == "hang":
                    time.sleep(fault.seconds)
                    return self._reply(503, ERROR_XML.format(code="ServiceUnavailable", message="late"))
                if fault.kind == "reset":
                    # SO_LINGER 0: close() sends a RST instead of a FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault.kind == "raw":
                    return self._reply(fault.status, fault.message)
                if fault.kind == "truncated":
                    data = fault.message.encode() if isinstance(fault.message, str) else fault.message
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                return self._reply(fault.status, ERROR_XML.format(code=fault.code, message=fault.message))

            def _validate(self, action, params):
                if params.get("Version") != "2011-06-15":
                    return "Version must be 2011-06-15"
                for key in REQUIRED[action]:
                    if not params.get(key):
                        return "missing %s" % key
                name = params["RoleSessionName"]
                if not (2 <= len(name) <= 64):
                    return "RoleSessionName length"
                if "DurationSeconds" in params and not (900 <= int(params["DurationSeconds"]) <= 43200):
                    return "DurationSeconds out of range"
                if action == "AssumeRoleWithWebIdentity":
                    if "ProviderId" in params:
                        return "ProviderId must not be sent for OIDC"
                    if "Authorization" in self.headers:
                        return "AssumeRoleWithWebIdentity must not be signed"
                    tok = params["WebIdentityToken"]
                    if not (4 <= len(tok) <= 20000):
                        return "WebIdentityToken length"
                else:
                    auth = self.headers.get("Authorization", "")
                    if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
                        return "AssumeRole must be SigV4-signed"
                return None

        return Handler


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def json_calls(proxy):
    return json.dumps([a for a, _ in proxy.calls])
