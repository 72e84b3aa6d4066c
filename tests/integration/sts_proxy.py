"""A local STS for tests: a counting, validating, fault-injecting proxy in
front of moto.

Every request is checked the way STS would check it (form encoding, Action,
Version, required parameters and their limits), counted by Action, and then
either forwarded to moto or answered with an injected fault.  It listens on
loopback only.
"""
import http.client
import http.server
import json
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


class Fault:
    """What the proxy answers instead of forwarding: an STS error document
    with a status, a hang, or a reset connection."""

    def __init__(self, kind="error", status=400, code="AccessDenied",
                 message="Not authorized to perform sts:AssumeRoleWithWebIdentity",
                 seconds=0.0):
        self.kind = kind
        self.status = status
        self.code = code
        self.message = message
        self.seconds = seconds


class StsProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.calls = []          # (action, params) per request received
        self.faults = []         # consumed one per request; the last one sticks if sticky
        self.sticky_fault = None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # Clients that give up on a hung answer are expected; stay quiet.
        self.server.handle_error = lambda request, address: None
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.calls = []
            self.faults = []
            self.sticky_fault = None

    def fail_always(self, fault):
        with self.lock:
            self.sticky_fault = fault

    def heal(self):
        with self.lock:
            self.sticky_fault = None
            self.faults = []

    def count(self, action=None):
        with self.lock:
            return sum(1 for a, _ in self.calls if action is None or a == action)

    def params(self, action):
        with self.lock:
            return [p for a, p in self.calls if a == action]

    def _next_fault(self):
        with self.lock:
            if self.faults:
                return self.faults.pop(0)
            return self.sticky_fault

    def _handler(proxy):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="text/xml"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, method, body):
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
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
                problem = self._validate(action, params)
                if problem:
                    return self._reply(400, ERROR_XML.format(code="ValidationError", message=problem))
                fault = proxy._next_fault()
                if fault is None:
                    return self._forward("POST", body)
                if fault.kind == "hang":
                    time.sleep(fault.seconds)
                    return self._reply(503, ERROR_XML.format(code="ServiceUnavailable", message="late"))
                if fault.kind == "reset":
                    self.connection.shutdown(2)
                    return
                if fault.kind == "raw":
                    return self._reply(fault.status, fault.message)
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
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def json_calls(proxy):
    return json.dumps([a for a, _ in proxy.calls])
