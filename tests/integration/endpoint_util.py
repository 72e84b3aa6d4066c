"""Helpers of the HTTP face's tests: a mount with [endpoint], plain HTTP
requests to it, and endpoint.env read as an environment."""
import http.client
import os
import socket
import subprocess

from harness import CredfsTestCase, fd_count  # noqa: F401 (for the tests)
from sts_proxy import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")


def request(port, method, path, headers=None, host="127.0.0.1", timeout=15):
    """(status, headers dict with lower-case names, body text) of one request."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def raw_exchange(port, data, timeout=5.0, closed=None):
    """Sends data as is and returns everything the server answers until it
    closes the connection (or timeout passes): bytes.  closed, a list, gets
    True appended when the server closed (or reset) the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if closed is not None:
                    closed.append(True)
                break
            out += chunk
        return out
    finally:
        s.close()


def read_env(path):
    """The NAME=value lines of an env file as a dict."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env




def promtool_check(text):
    """(returncode, output) of promtool check metrics on text."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


class EndpointCase(CredfsTestCase):
    """Mounts with an [endpoint] on a free loopback port."""

    def endpoint_mount(self, roles=None, defaults="", imds_role="app", listen=None,
                       extra_args=(), name="mnt"):
        self.port = free_port()
        listen = listen or "127.0.0.1:%d" % self.port
        text = self.config_text(roles=roles, defaults=defaults)
        text += "[endpoint]\nlisten = %s\n" % listen
        if imds_role:
            text += "imds_role = %s\n" % imds_role
        return self.mount(text, extra_args=extra_args, name=name)

    def url(self, role="app"):
        return "http://127.0.0.1:%d/roles/%s/credentials" % (self.port, role)

    def get(self, path, headers=None, **kw):
        return request(self.port, "GET", path, headers, **kw)
