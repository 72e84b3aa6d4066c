#!/usr/bin/python3
"""Fakes of the cloud token endpoints that workload identity federation uses,
for the integration tests (tests/integration/test_clouds.py).  They validate
what they receive the way the clouds do, so a test that passes proves that
credfs's token and files are right:

  GoogleFake  Google STS       POST /v1/token   (RFC 8693 token exchange)
              IAM Credentials  POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken
              (one server, shared state: IAM only takes STS tokens this fake issued)
  AzureFake   Entra ID         POST /{tenant}/oauth2/v2.0/token  (client_credentials with a
                                    federated client assertion)
                               GET  /{tenant}/v2.0/.well-known/openid-configuration
                               GET  /common/discovery/instance   (MSAL instance discovery)

The subject token's signature is checked against a JWKS file read afresh on
every request (a mount's keys.json), then iss, aud, sub, exp as each cloud
does; errors come in each cloud's shape.  Every fake records what it
received, can be told to fail (HTTP 500, garbage, a truncated or oversized
body, a hang, a connection reset, a given error) and to issue short
lifetimes.  Control is over an admin API on the same port:

  GET  /__fake/state            counts and recorded requests (newest last)
  POST /__fake/reset            clear records, faults and issued tokens
  POST /__fake/fault            {"mode": "http500|garbage|truncated|oversized|hang|reset|error",
                                 "endpoint": "sts|iam|token|discovery|*", "count": N or null,
                                 "status": 400, "body": {...}, "hang_seconds": 30}
                                {"mode": "none"} clears them
  POST /__fake/config           a partial change, e.g. {"expires_in": 5, "jwks": "/mnt/keys.json"}

Only the standard library and Debian's python3-jwt and python3-cryptography:
run it with /usr/bin/python3.

  fake_clouds.py pki   --out DIR                           test CA and server certificate
  fake_clouds.py serve --config CONF.json --ports-file F   run until SIGTERM (or --max-seconds)
  fake_clouds.py sign  --key K.pem --claims JSON [--lifetime S]   a JWT (iat/exp filled in)
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as _dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import jwt  # PyJWT (Debian python3-jwt)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------

GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT = "urn:ietf:params:oauth:token-type:jwt"
TT_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
CLIENT_ASSERTION_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AZURE_FIC_AUDIENCE = "api://AzureADTokenExchange"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
IAM_SCOPE = "https://www.googleapis.com/auth/iam"

# //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R
GOOGLE_WIF_AUDIENCE_RE = re.compile(
    r"^//iam\.googleapis\.com/projects/([^/]+)/locations/([^/]+)/workloadIdentityPools/([^/]+)/providers/([^/]+)$"
)
GOOGLE_GAT_PATH_RE = re.compile(r"^/v1/projects/([^/]+)/serviceAccounts/([^/:]+):generateAccessToken$")
AZURE_TOKEN_PATH_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
AZURE_OIDC_PATH_RE = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
AZURE_KEYS_PATH_RE = re.compile(r"^/([^/]+)/discovery/v2\.0/keys$")

MAX_RECORDS = 200
# The body of the "oversized" fault, made once.
OVERSIZED_BODY = json.dumps({"access_token": "ya29." + "x" * 120, "token_type": "Bearer",
                             "expires_in": 3599, "padding": "x" * (1024 * 1024)}).encode()


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def now_s() -> float:
    return time.time()


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with 'Z', as Google's generateAccessToken returns expireTime."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def aad_timestamp(ts: float | None = None) -> str:
    return _dt.datetime.fromtimestamp(ts if ts is not None else now_s(), tz=_dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%SZ")


def iso7(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# --------------------------------------------------------------------------------------
# Keys, JWKS, JWT helpers (also handy for tests that need a stand-in issuer)
# --------------------------------------------------------------------------------------

def kid_for_public_key(pub) -> str:
    """kid = base64url(SHA-256(DER SubjectPublicKeyInfo)), no padding."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def public_jwk(pub, alg: str | None = None) -> dict:
    kid = kid_for_public_key(pub)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if not isinstance(pub.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported")
        nums = pub.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(nums.x.to_bytes(32, "big")),
                "y": b64url(nums.y.to_bytes(32, "big")), "use": "sig", "alg": alg or "ES256", "kid": kid}
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
        e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "n": b64url(n), "e": b64url(e), "use": "sig", "alg": alg or "RS256", "kid": kid}
    raise TypeError("unsupported key type")


def generate_signing_key(alg: str = "ES256"):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(alg)


def private_key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(path: str | Path):
    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


def sign_jwt(key, claims: dict, alg: str | None = None, kid: str | None = "auto",
             extra_headers: dict | None = None) -> str:
    """kid="auto": derived from the key (b64url SHA-256 of SPKI); kid=None: no kid header."""
    if alg is None:
        alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    headers = {"kid": kid_for_public_key(key.public_key()) if kid == "auto" else kid, "typ": "JWT"}
    if extra_headers:
        headers.update(extra_headers)
    if headers.get("kid") is None:
        del headers["kid"]
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def load_jwks(source) -> dict:
    """source: path to keys.json, a {"keys": [...]} dict, or a list of JWK dicts."""
    if isinstance(source, (str, Path)):
        data = json.loads(Path(source).read_text())
    elif isinstance(source, list):
        data = {"keys": source}
    elif isinstance(source, dict):
        data = source
    else:
        raise TypeError("jwks must be a path, a dict or a list")
    if not isinstance(data.get("keys"), list):
        raise ValueError("JWKS has no 'keys' array")
    return data


# --------------------------------------------------------------------------------------
# Test PKI (CA + server certificate)
# --------------------------------------------------------------------------------------

DEFAULT_CERT_HOSTS = ["127.0.0.1", "::1", "localhost",
                      # names that let a network-namespace + /etc/hosts setup impersonate the
                      # real hosts if ever needed (never used for real traffic)
                      "login.microsoftonline.com", "sts.googleapis.com", "iamcredentials.googleapis.com"]


def make_test_pki(out_dir: str | Path, hosts: list[str] | None = None, days: int = 30) -> dict:
    """Create ca.pem (+ca.key), server.pem (leaf + CA chain) and server.key in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hosts = hosts or DEFAULT_CERT_HOSTS
    now = _dt.datetime.now(_dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-clouds test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (out / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (out / "ca.key").write_bytes(private_key_pem(ca_key))
    (out / "server.pem").write_bytes(srv_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    (out / "server.key").write_bytes(private_key_pem(srv_key))
    os.chmod(out / "ca.key", 0o600)
    os.chmod(out / "server.key", 0o600)
    return {"ca": str(out / "ca.pem"), "cert": str(out / "server.pem"), "key": str(out / "server.key")}


# --------------------------------------------------------------------------------------
# JWT validation shared by the fakes
# --------------------------------------------------------------------------------------

class TokenRejected(Exception):
    """kind is one of: malformed, whitespace, no_kid, bad_alg, unknown_kid, bad_signature,
    missing_claim, issuer, audience, expired, not_yet_valid, iat_future, lifetime, subject."""

    def __init__(self, kind: str, detail: str, claims: dict | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.claims = claims or {}


def _jwk_matches_alg(jwk_dict: dict, alg: str) -> bool:
    if alg.startswith("ES"):
        return jwk_dict.get("kty") == "EC"
    if alg.startswith("RS") or alg.startswith("PS"):
        return jwk_dict.get("kty") == "RSA"
    return False


def parse_unverified(token: str) -> tuple[dict, dict]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception as e:  # noqa: BLE001 - any parse problem is "malformed"
        raise TokenRejected("malformed", f"token is not a well-formed JWS/JWT ({e})")
    if not isinstance(claims, dict):
        raise TokenRejected("malformed", "JWT payload is not a JSON object")
    return header, claims


def verify_signature(token: str, header: dict, jwks: dict, allowed_algs: tuple[str, ...],
                     require_kid: bool = True) -> None:
    alg = header.get("alg")
    if alg not in allowed_algs:
        raise TokenRejected("bad_alg", f"alg {alg!r} not in {list(allowed_algs)}")
    kid = header.get("kid")
    if require_kid and not kid:
        raise TokenRejected("no_kid", "JWT header has no kid")
    candidates = [k for k in jwks.get("keys", [])
                  if (kid is None or k.get("kid") == kid) and _jwk_matches_alg(k, alg)]
    if not candidates:
        raise TokenRejected("unknown_kid", f"no key with kid {kid!r} usable for {alg} in the JWKS")
    last = None
    for k in candidates:
        try:
            key = jwt.PyJWK(k, algorithm=alg).key
            jwt.decode(token, key, algorithms=[alg],
                       options={"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                                "verify_iat": False, "verify_aud": False, "verify_iss": False})
            return
        except Exception as e:  # noqa: BLE001
            last = e
    raise TokenRejected("bad_signature", f"signature verification failed ({last})")


# --------------------------------------------------------------------------------------
# Fault injection + recording + HTTP plumbing
# --------------------------------------------------------------------------------------

class Fault:
    MODES = ("http500", "garbage", "truncated", "oversized", "hang", "reset", "error")

    def __init__(self, mode: str, endpoint: str = "*", count: int | None = None, status: int = 400,
                 body: Any = None, hang_seconds: float = 30.0, headers: dict | None = None):
        if mode not in self.MODES:
            raise ValueError(f"fault mode must be one of {self.MODES}")
        self.mode = mode
        self.endpoint = endpoint
        self.count = count
        self.status = int(status)
        self.body = body
        self.hang_seconds = min(float(hang_seconds), 600.0)
        self.headers = headers or {}

    def to_dict(self) -> dict:
        return {"mode": self.mode, "endpoint": self.endpoint, "count": self.count, "status": self.status,
                "body": self.body, "hang_seconds": self.hang_seconds}


class Reply:
    def __init__(self, status: int, body: Any, headers: dict | None = None, content_type: str = "application/json"):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-clouds/1"
    fake: "BaseFake"  # set on subclass

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.fake.verbose:
            sys.stderr.write(f"[{self.fake.name}] {self.address_string()} {fmt % args}\n")

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str):
        body = self._read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/__fake/"):
            reply = self.fake.admin(method, url.path, body)
            self._send(reply)
            return
        req = Request(method, url.path, urllib.parse.parse_qs(url.query), dict(self.headers.items()), body)
        endpoint = self.fake.classify(req)
        record = self.fake.record(req, endpoint)
        fault = self.fake.take_fault(endpoint)
        if fault is not None:
            record["fault"] = fault.mode
            self._apply_fault(fault, record)
            return
        try:
            reply = self.fake.handle(req, endpoint)
        except Exception as e:  # noqa: BLE001 - a bug in the fake must not hang the client
            reply = Reply(500, {"error": "fake_internal_error", "error_description": repr(e)})
        record["status"] = reply.status
        record["response"] = reply.body if not isinstance(reply.body, bytes) else reply.body.decode("latin-1")
        self._send(reply)

    def _send(self, reply: Reply):
        data = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _kill_connection(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001
            pass

    def _apply_fault(self, fault: Fault, record: dict):
        m = fault.mode
        if m == "http500":
            record["status"] = 500
            self._send(Reply(500, self.fake.server_error_body()))
        elif m == "error":
            record["status"] = fault.status
            self._send(Reply(fault.status, fault.body if fault.body is not None else {}, fault.headers))
        elif m == "garbage":
            record["status"] = 200
            self._send(Reply(200, b"\x00<html>not json at all}{\xff", content_type="application/json"))
        elif m == "oversized":
            # A well-formed success answer padded past any sane cap (1 MiB).
            record["status"] = 200
            self._send(Reply(200, OVERSIZED_BODY))
        elif m == "truncated":
            good = json.dumps(self.fake.truncation_template()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(good)))
            self.end_headers()
            self.wfile.write(good[: len(good) // 2])
            record["status"] = 200
            self._kill_connection()
        elif m == "hang":
            self.fake.stop_event.wait(fault.hang_seconds)
            self._kill_connection()
        elif m == "reset":
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except Exception:  # noqa: BLE001
                pass
            self._kill_connection()


class Request:
    def __init__(self, method: str, path: str, query: dict, headers: dict, raw: bytes):
        self.method = method
        self.path = path
        self.query = {k: v[0] for k, v in query.items()}
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        self.content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        self.form: dict[str, str] = {}
        self.json: Any = None
        self.body_format = "none"
        if raw:
            if self.content_type == "application/json":
                self.body_format = "json"
                try:
                    self.json = json.loads(raw)
                except ValueError:
                    self.body_format = "invalid-json"
            elif self.content_type == "application/x-www-form-urlencoded":
                self.body_format = "form"
                self.form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace"),
                                                                        keep_blank_values=True).items()}
            else:
                self.body_format = "other"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class BaseFake:
    name = "fake"

    def __init__(self, tls: dict | None = None, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.tls = tls
        self.host = host
        self.requested_port = port
        self.verbose = verbose
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.requests: list[dict] = []
        self.counts: dict[str, int] = {}
        self.faults: list[Fault] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "BaseFake":
        handler = type(f"{self.name}Handler", (_Handler,), {"fake": self})
        srv = _Server((self.host, self.requested_port), handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.tls["cert"], self.tls["key"])
            # handshake happens lazily in the per-connection thread, not in accept()
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"{self.name}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # ---- recording -------------------------------------------------------------------
    def record(self, req: Request, endpoint: str) -> dict:
        rec = {"time": now_s(), "endpoint": endpoint, "method": req.method, "path": req.path,
               "query": req.query, "headers": req.headers, "body_format": req.body_format,
               "body": req.raw.decode("utf-8", "replace"), "form": req.form, "json": req.json}
        with self.lock:
            self.counts[endpoint] = self.counts.get(endpoint, 0) + 1
            self.requests.append(rec)
            del self.requests[:-MAX_RECORDS]
        return rec

    def count(self, endpoint: str | None = None) -> int:
        with self.lock:
            return sum(self.counts.values()) if endpoint is None else self.counts.get(endpoint, 0)

    def last(self, endpoint: str | None = None) -> dict | None:
        with self.lock:
            for r in reversed(self.requests):
                if endpoint is None or r["endpoint"] == endpoint:
                    return r
        return None

    def state(self) -> dict:
        with self.lock:
            return {"name": self.name, "url": self.url, "counts": dict(self.counts),
                    "requests": copy.deepcopy(self.requests), "faults": [f.to_dict() for f in self.faults],
                    "config": self.public_config()}

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.counts.clear()
            self.faults.clear()

    # ---- faults ----------------------------------------------------------------------
    def fail(self, mode: str, endpoint: str = "*", count: int | None = None, **kw) -> Fault:
        f = Fault(mode, endpoint, count, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def take_fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.endpoint in ("*", endpoint):
                    if f.count is not None:
                        f.count -= 1
                        if f.count <= 0:
                            self.faults.remove(f)
                    return f
        return None

    # ---- admin API -------------------------------------------------------------------
    def admin(self, method: str, path: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return Reply(400, {"error": "admin body must be JSON"})
        if path == "/__fake/state" and method == "GET":
            return Reply(200, self.state())
        if path == "/__fake/reset" and method == "POST":
            self.reset()
            return Reply(200, {"ok": True})
        if path == "/__fake/fault" and method == "POST":
            if payload.get("mode") in (None, "none", "clear"):
                self.clear_faults()
                return Reply(200, {"ok": True, "faults": []})
            try:
                f = self.fail(payload.pop("mode"), payload.pop("endpoint", "*"), payload.pop("count", None),
                              **payload)
            except (TypeError, ValueError) as e:
                return Reply(400, {"error": str(e)})
            return Reply(200, {"ok": True, "fault": f.to_dict()})
        if path == "/__fake/config" and method == "POST":
            try:
                self.update_config(payload)
            except (KeyError, TypeError, ValueError) as e:
                return Reply(400, {"error": str(e)})
            return Reply(200, {"ok": True, "config": self.public_config()})
        return Reply(404, {"error": "unknown admin path"})

    # ---- to override -----------------------------------------------------------------
    def classify(self, req: Request) -> str:
        return "other"

    def handle(self, req: Request, endpoint: str) -> Reply:
        return Reply(404, {"error": "not_found"})

    def server_error_body(self) -> Any:
        return {"error": "server_error"}

    def truncation_template(self) -> Any:
        return {"access_token": "x" * 64, "expires_in": 3600}

    def public_config(self) -> dict:
        return {}

    def update_config(self, changes: dict):
        raise KeyError("no runtime-configurable settings")


# --------------------------------------------------------------------------------------
# Google: STS + IAM Credentials
# --------------------------------------------------------------------------------------

def google_error(code: int, status: str, message: str, details: list | None = None) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return Reply(code, {"error": err})


def sts_error(error: str, description: str, status: int = 400) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


class GoogleFake(BaseFake):
    """Fake sts.googleapis.com + iamcredentials.googleapis.com (same port).

    Provider defaults follow the real API: when allowed_audiences is empty, the token's aud
    must be the provider's full canonical resource name with or without the https: prefix,
    i.e. //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R
    or https://iam.googleapis.com/projects/N/...
    """

    name = "google"
    RUNTIME_KEYS = {"issuer", "allowed_audiences", "expires_in", "sa_token_lifetime", "max_sa_lifetime",
                    "leeway", "iat_future_tolerance", "max_token_lifetime", "service_accounts",
                    "attribute_condition", "reject_whitespace", "reject_authorization_header", "jwks"}

    def __init__(self, issuer: str, jwks, project_number: str = "123456789012", pool: str = "test-pool",
                 provider: str = "test-provider", location: str = "global",
                 allowed_audiences: list[str] | None = None,
                 service_accounts: dict[str, list[str] | str] | None = None,
                 expires_in: int = 3600, sa_token_lifetime: int | None = None, max_sa_lifetime: int = 3600,
                 leeway: int = 0, iat_future_tolerance: int = 60, max_token_lifetime: int = 48 * 3600,
                 attribute_condition: dict | Callable[[dict], bool] | None = None,
                 reject_whitespace: bool = True, reject_authorization_header: bool = False, **kw):
        super().__init__(**kw)
        self.issuer = issuer
        self.jwks_source = jwks
        self.project_number = str(project_number)
        self.pool = pool
        self.provider = provider
        self.location = location
        self.allowed_audiences = list(allowed_audiences or [])
        # email -> list of allowed google.subject values (or "*")
        self.service_accounts = dict(service_accounts or {})
        self.expires_in = int(expires_in)
        self.sa_token_lifetime = sa_token_lifetime  # force expireTime = now + this (short-lifetime tests)
        self.max_sa_lifetime = int(max_sa_lifetime)
        self.leeway = leeway
        self.iat_future_tolerance = iat_future_tolerance
        self.max_token_lifetime = max_token_lifetime
        self.attribute_condition = attribute_condition
        self.reject_whitespace = reject_whitespace
        self.reject_authorization_header = reject_authorization_header
        self.sts_tokens: dict[str, dict] = {}
        self.sa_tokens: dict[str, dict] = {}

    # ---- config ----------------------------------------------------------------------
    @property
    def provider_resource(self) -> str:
        return (f"//iam.googleapis.com/projects/{self.project_number}/locations/{self.location}/"
                f"workloadIdentityPools/{self.pool}/providers/{self.provider}")

    @property
    def default_audiences(self) -> list[str]:
        return [self.provider_resource, "https:" + self.provider_resource]

    def effective_audiences(self) -> list[str]:
        return self.allowed_audiences or self.default_audiences

    def public_config(self) -> dict:
        return {"issuer": self.issuer, "provider_resource": self.provider_resource,
                "effective_audiences": self.effective_audiences(), "expires_in": self.expires_in,
                "sa_token_lifetime": self.sa_token_lifetime, "service_accounts": self.service_accounts,
                "leeway": self.leeway, "max_token_lifetime": self.max_token_lifetime,
                "jwks": self.jwks_source if isinstance(self.jwks_source, str) else "<inline>"}

    def update_config(self, changes: dict):
        for k, v in changes.items():
            if k not in self.RUNTIME_KEYS:
                raise KeyError(f"not configurable at runtime: {k}")
        with self.lock:
            for k, v in changes.items():
                setattr(self, "jwks_source" if k == "jwks" else k, v)

    def reset(self):
        super().reset()
        with self.lock:
            self.sts_tokens.clear()
            self.sa_tokens.clear()

    # ---- dispatch --------------------------------------------------------------------
    def classify(self, req: Request) -> str:
        if req.path == "/v1/token":
            return "sts"
        if GOOGLE_GAT_PATH_RE.match(req.path):
            return "iam"
        return "other"

    def server_error_body(self):
        return {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}

    def truncation_template(self):
        return {"access_token": "ya29." + "x" * 120, "issued_token_type": TT_ACCESS_TOKEN,
                "token_type": "Bearer", "expires_in": 3599}

    def handle(self, req: Request, endpoint: str) -> Reply:
        if endpoint == "sts":
            if req.method != "POST":
                return google_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")  # approximate
            return self.handle_sts(req)
        if endpoint == "iam":
            if req.method != "POST":
                return google_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
            return self.handle_iam(req)
        return google_error(404, "NOT_FOUND", f"The requested URL {req.path} was not found on this server.")

    # ---- STS -------------------------------------------------------------------------
    @staticmethod
    def _sts_params(req: Request) -> dict[str, str] | None:
        """Form (snake_case, what google-auth-library sends) or JSON (camelCase per the REST
        reference, snake_case also accepted)."""
        if req.body_format == "form":
            return dict(req.form)
        if req.body_format == "json" and isinstance(req.json, dict):
            out = {}
            for k, v in req.json.items():
                snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)
                out[snake] = v if isinstance(v, str) else json.dumps(v)
            return out
        return None

    def handle_sts(self, req: Request) -> Reply:
        p = self._sts_params(req)
        if p is None:
            return sts_error("invalid_request", "Request body must be application/x-www-form-urlencoded or JSON.")
        if self.reject_authorization_header and "authorization" in req.headers:
            return sts_error("invalid_request", "The Authorization header must not be sent to the token endpoint.")
        if p.get("grant_type") != GRANT_TOKEN_EXCHANGE:
            return sts_error("invalid_request", 'Invalid value for "grant_type".')  # wording not verified
        if p.get("requested_token_type") != TT_ACCESS_TOKEN:
            return sts_error("invalid_request", "Invalid value of requested_token_type in request.")
        if p.get("subject_token_type") not in (TT_JWT, TT_ID_TOKEN):
            return sts_error("invalid_request", 'Invalid value for "subject_token_type".')  # not verified
        audience = p.get("audience", "")
        if not GOOGLE_WIF_AUDIENCE_RE.match(audience):
            return sts_error("invalid_request",
                             'Invalid value for "audience". This value should be the full resource name of the '
                             'Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/'
                             'TopLevel/token for the list of possible formats.')
        if audience != self.provider_resource:
            return sts_error("invalid_target",
                             'The target service indicated by the "audience" parameters is invalid. This might '
                             "either be because the pool or provider is disabled or deleted or because it "
                             "doesn't exist.")
        scope = p.get("scope", "")
        if not scope.strip():
            return sts_error("invalid_request", 'Invalid value for "scope".')  # wording not verified
        token = p.get("subject_token", "")
        if not token:
            return sts_error("invalid_request", 'Invalid value for "subject_token".')  # wording not verified
        try:
            claims = self.validate_subject_token(token)
        except TokenRejected as e:
            return self._sts_rejection(e)
        if self.attribute_condition is not None:
            cond = self.attribute_condition
            ok = cond(claims) if callable(cond) else all(claims.get(k) == v for k, v in cond.items())
            if not ok:
                return sts_error("unauthorized_client", "The given credential is rejected by the attribute condition.")
        access = "ya29.d.fake-sts-" + secrets.token_urlsafe(48)
        with self.lock:
            expires_in = int(self.expires_in)
            self.sts_tokens[access] = {"sub": claims["sub"], "scope": scope.split(),
                                       "expires_at": now_s() + expires_in, "claims": claims}
        return Reply(200, {"access_token": access, "issued_token_type": TT_ACCESS_TOKEN,
                           "token_type": "Bearer", "expires_in": expires_in})

    def _sts_rejection(self, e: TokenRejected) -> Reply:
        c = e.claims
        if e.kind == "audience":
            return sts_error("invalid_grant", f"The audience in ID Token [{_fmt_aud(c.get('aud'))}] does not match "
                                              "the expected audience.")
        if e.kind == "expired":
            return sts_error("invalid_grant", f"ID Token issued at {c.get('iat')} is stale to sign-in.")
        if e.kind == "issuer":
            # wording not verified against the real service
            return sts_error("invalid_grant", f"The issuer in ID Token [{c.get('iss')}] does not match the "
                                              "expected ISSUER.")
        if e.kind == "subject_too_long":
            return sts_error("invalid_request", "The size of mapped attribute google.subject exceeds the 127 bytes "
                                                "limit. Either modify your attribute mapping or the incoming "
                                                "assertion to produce a mapped attribute that is less than 127 bytes.")
        # remaining kinds: wording not verified against the real service
        return sts_error("invalid_grant", f"Invalid ID Token: {e.detail}")

    def validate_subject_token(self, token: str) -> dict:
        """Rules from the STS v1 reference (subjectToken) and the provider reference (oidc)."""
        if self.reject_whitespace and token != token.strip():
            raise TokenRejected("malformed", "subject token has leading/trailing whitespace")
        header, claims = parse_unverified(token)
        with self.lock:
            jwks_source = self.jwks_source
        verify_signature(token, header, load_jwks(jwks_source), ("RS256", "ES256"), require_kid=True)
        for claim in ("iss", "aud", "exp", "iat", "sub"):
            if claim not in claims:
                raise TokenRejected("missing_claim", f"required claim {claim!r} is missing", claims)
        if claims["iss"] != self.issuer:
            raise TokenRejected("issuer", f"iss {claims['iss']!r} != {self.issuer!r}", claims)
        auds = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not any(a in self.effective_audiences() for a in auds):
            raise TokenRejected("audience", f"aud {claims['aud']!r} not in {self.effective_audiences()}", claims)
        now = now_s()
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
        except (TypeError, ValueError):
            raise TokenRejected("malformed", "exp/iat are not numbers", claims)
        if exp <= now - self.leeway:
            raise TokenRejected("expired", f"exp {exp} is in the past", claims)
        if iat > now + self.iat_future_tolerance:
            raise TokenRejected("iat_future", f"iat {iat} is in the future", claims)
        if "nbf" in claims and float(claims["nbf"]) > now + self.leeway:
            raise TokenRejected("not_yet_valid", "nbf is in the future", claims)
        if exp - iat >= self.max_token_lifetime:
            raise TokenRejected("lifetime", f"exp - iat = {exp - iat}s is not less than {self.max_token_lifetime}s",
                                claims)
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRejected("missing_claim", "sub is empty", claims)
        if len(claims["sub"].encode()) > 127:
            raise TokenRejected("subject_too_long", "google.subject > 127 bytes", claims)
        return claims

    # ---- IAM Credentials generateAccessToken -----------------------------------------
    def handle_iam(self, req: Request) -> Reply:
        m = GOOGLE_GAT_PATH_RE.match(req.path)
        assert m
        email = urllib.parse.unquote(m.group(2))
        if m.group(1) != "-":
            # reference: "The - wildcard character is required; replacing it with a project ID is invalid."
            return google_error(400, "INVALID_ARGUMENT", "The - wildcard character is required in "
                                "projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}.")  # wording not verified
        auth = req.headers.get("authorization", "")
        unauth = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                  "or other valid authentication credential. See https://developers.google.com/identity/sign-in/"
                  "web/devconsole-project.")
        if not auth.startswith("Bearer "):
            return google_error(401, "UNAUTHENTICATED", unauth)
        with self.lock:
            tok = self.sts_tokens.get(auth[len("Bearer "):])
        if tok is None or tok["expires_at"] <= now_s():
            return google_error(401, "UNAUTHENTICATED", unauth)
        if not ({CLOUD_PLATFORM_SCOPE, IAM_SCOPE} & set(tok["scope"])):
            return google_error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
        if req.body_format != "json" or not isinstance(req.json, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        scopes = req.json.get("scope")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
            return google_error(400, "INVALID_ARGUMENT", "Scope required.")  # wording not verified
        lifetime = 3600.0
        if "lifetime" in req.json:
            lm = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(req.json["lifetime"]))
            if not lm:
                return google_error(400, "INVALID_ARGUMENT", f"Invalid value at 'lifetime' ({req.json['lifetime']}).")
            lifetime = float(lm.group(1))
            if lifetime > self.max_sa_lifetime:
                return google_error(400, "INVALID_ARGUMENT",
                                    "The lifetime exceeds the maximum allowed value.")  # wording not verified
        with self.lock:
            allowed = self.service_accounts.get(email)
        if allowed is None:
            return google_error(404, "NOT_FOUND", f"Not found; Gaia id not found for email {email}")
        if allowed != "*" and tok["sub"] not in allowed:
            return google_error(403, "PERMISSION_DENIED",
                                "Permission 'iam.serviceAccounts.getAccessToken' denied on resource "
                                "(or it may not exist).",
                                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                                  "metadata": {"permission": "iam.serviceAccounts.getAccessToken"}}])
        if self.sa_token_lifetime is not None:
            lifetime = float(self.sa_token_lifetime)
        access = "ya29.c.fake-sa-" + secrets.token_urlsafe(48)
        expire = now_s() + lifetime
        with self.lock:
            self.sa_tokens[access] = {"email": email, "scope": scopes, "expires_at": expire}
        return Reply(200, {"accessToken": access, "expireTime": rfc3339(expire)})


def _fmt_aud(aud) -> str:
    return ", ".join(aud) if isinstance(aud, list) else str(aud)


# --------------------------------------------------------------------------------------
# Azure AD / Entra ID
# --------------------------------------------------------------------------------------

class AzureFake(BaseFake):
    """Fake login.microsoftonline.com for the client_credentials + federated client assertion flow.

    apps: {client_id: [{"issuer": ..., "subject": ..., "audiences": ["api://AzureADTokenExchange"]}, ...]}
    Matching is exact and case-sensitive (Entra switched FIC matching to case-sensitive; a
    case-insensitive-only subject match yields AADSTS7002138 like the real service).
    """

    name = "azure"
    RUNTIME_KEYS = {"expires_in", "ext_expires_in", "refresh_in", "apps", "leeway", "jwks",
                    "max_assertion_lifetime", "reject_whitespace"}

    def __init__(self, tenant_id: str, jwks, apps: dict[str, list[dict]], expires_in: int = 3599,
                 ext_expires_in: int | None = None, refresh_in: int | None = None, leeway: int = 0,
                 max_assertion_lifetime: int | None = None, reject_whitespace: bool = True, **kw):
        super().__init__(**kw)
        self.tenant_id = tenant_id
        self.jwks_source = jwks
        self.apps = apps
        self.expires_in = int(expires_in)
        self.ext_expires_in = ext_expires_in
        self.refresh_in = refresh_in
        self.leeway = leeway
        self.max_assertion_lifetime = max_assertion_lifetime
        self.reject_whitespace = reject_whitespace
        self._own_key = ec.generate_private_key(ec.SECP256R1())  # signs the fake access tokens

    def public_config(self) -> dict:
        return {"tenant_id": self.tenant_id, "apps": self.apps, "expires_in": self.expires_in,
                "ext_expires_in": self.ext_expires_in, "refresh_in": self.refresh_in, "leeway": self.leeway,
                "authority_host": self.url if self._server else None}

    def update_config(self, changes: dict):
        for k in changes:
            if k not in self.RUNTIME_KEYS:
                raise KeyError(f"not configurable at runtime: {k}")
        with self.lock:
            for k, v in changes.items():
                setattr(self, "jwks_source" if k == "jwks" else k, v)

    def classify(self, req: Request) -> str:
        if AZURE_TOKEN_PATH_RE.match(req.path):
            return "token"
        if AZURE_OIDC_PATH_RE.match(req.path):
            return "discovery"
        if req.path == "/common/discovery/instance":
            return "instance_discovery"
        if AZURE_KEYS_PATH_RE.match(req.path):
            return "keys"
        return "other"

    def server_error_body(self):
        return self._aad_body("server_error", 500011, "AADSTS90033: A transient error has occurred. Please try again.",
                              None)

    def truncation_template(self):
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "x" * 200}

    def public_base(self, req: Request) -> str:
        """Base URL as the client addressed us (Host header), so that the fake also works
        when a host name such as login.microsoftonline.com is pointed at it."""
        host = req.headers.get("host") or f"127.0.0.1:{self.port}"
        return f"{'https' if self.tls else 'http'}://{host}"

    def _known_tenant(self, t: str) -> bool:
        return t == self.tenant_id

    def _aad_body(self, error: str, code: int, message: str, req: Request | None) -> dict:
        trace = str(uuid.uuid4())
        # MSAL sends client-request-id as a query parameter (and x-ms-client-request-id header);
        # Entra echoes it as the correlation id
        corr = ((req.query.get("client-request-id") or req.headers.get("client-request-id")
                 or req.headers.get("x-ms-client-request-id")) if req else None) or str(uuid.uuid4())
        ts = aad_timestamp()
        return {"error": error,
                "error_description": f"{message} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}",
                "error_codes": [code], "timestamp": ts, "trace_id": trace, "correlation_id": corr,
                "error_uri": f"{self.url}/error?code={code}"}

    def aad_error(self, status: int, error: str, code: int, message: str, req: Request) -> Reply:
        return Reply(status, self._aad_body(error, code, f"AADSTS{code}: {message}", req))

    def handle(self, req: Request, endpoint: str) -> Reply:
        if endpoint == "token":
            return self.handle_token(req)
        if endpoint == "discovery":
            return self.handle_oidc_config(req)
        if endpoint == "instance_discovery":
            return self.handle_instance_discovery(req)
        if endpoint == "keys":
            return Reply(200, {"keys": [public_jwk(self._own_key.public_key())]})
        return Reply(404, {"error": "not_found"})

    # ---- metadata --------------------------------------------------------------------
    def handle_oidc_config(self, req: Request) -> Reply:
        tenant = AZURE_OIDC_PATH_RE.match(req.path).group(1)
        if not self._known_tenant(tenant):
            return self.aad_error(400, "invalid_tenant", 90002,
                                  f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                                  "and are signing into the correct cloud.", req)
        root = self.public_base(req)
        base = f"{root}/{tenant}"
        return Reply(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{root}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "ver", "oid"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def handle_instance_discovery(self, req: Request) -> Reply:
        # MSAL asks https://login.microsoftonline.com/common/discovery/instance?api-version=1.1
        #   &authorization_endpoint=<authority>/oauth2/v2.0/authorize
        auth_ep = req.query.get("authorization_endpoint", "")
        parts = urllib.parse.urlsplit(auth_ep) if auth_ep else urllib.parse.urlsplit(self.public_base(req))
        host = parts.netloc
        root = f"{parts.scheme or 'https'}://{host}"
        return Reply(200, {
            "tenant_discovery_endpoint": f"{root}/{{tenant}}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    # ---- token -----------------------------------------------------------------------
    def handle_token(self, req: Request) -> Reply:
        tenant = AZURE_TOKEN_PATH_RE.match(req.path).group(1)
        if req.method != "POST":
            return self.aad_error(400, "invalid_request", 900561,
                                  "The endpoint only accepts POST requests. Received a GET request.", req)
        if not self._known_tenant(tenant):
            return self.aad_error(400, "invalid_request", 90002,
                                  f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                                  "and are signing into the correct cloud.", req)
        if req.body_format != "form":
            return self.aad_error(400, "invalid_request", 900144,
                                  "The request body must contain the following parameter: 'grant_type'.", req)
        f = req.form
        if not f.get("grant_type"):
            return self.aad_error(400, "invalid_request", 900144,
                                  "The request body must contain the following parameter: 'grant_type'.", req)
        if f["grant_type"] != "client_credentials":
            return self.aad_error(400, "unsupported_grant_type", 70003,
                                  "The app requested an unsupported grant type.", req)  # approximate
        client_id = f.get("client_id", "")
        with self.lock:
            fics = self.apps.get(client_id)
            jwks_source = self.jwks_source
        if fics is None:
            return self.aad_error(400, "unauthorized_client", 700016,
                                  f"Application with identifier '{client_id}' was not found in the directory "
                                  f"'{tenant}'. This can happen if the application has not been installed by the "
                                  "administrator of the tenant or consented to by any user in the tenant. You may "
                                  "have sent your authentication request to the wrong tenant.", req)
        scopes = f.get("scope", "").split()
        resource_scopes = [s for s in scopes if s not in ("openid", "profile", "offline_access", "email")]
        if not resource_scopes:
            return self.aad_error(400, "invalid_request", 900144,
                                  "The request body must contain the following parameter: 'scope'.", req)
        for s in resource_scopes:
            if not s.endswith("/.default"):
                return self.aad_error(400, "invalid_scope", 1002012,
                                      f"The provided value for scope {s} is not valid. Client credential flows "
                                      "must have a scope value with /.default suffixed to the resource identifier "
                                      "(application ID URI).", req)
        if len(resource_scopes) > 1:
            return self.aad_error(400, "invalid_scope", 70011,
                                  "The provided request must include a 'scope' input parameter. The provided value "
                                  "for the input parameter 'scope' is not valid.", req)  # approximate
        assertion = f.get("client_assertion", "")
        if not assertion:
            return self.aad_error(401, "invalid_client", 7000216,
                                  "'client_assertion', 'client_secret' or 'request' is required for the "
                                  "'client_credentials' grant type.", req)
        if f.get("client_assertion_type") != CLIENT_ASSERTION_JWT:
            return self.aad_error(400, "invalid_request", 50027,
                                  "JWT token is invalid or malformed.", req)  # approximate
        try:
            claims, fic = self.validate_assertion(assertion, fics, load_jwks(jwks_source))
        except TokenRejected as e:
            return self._assertion_rejection(e, req)
        return Reply(200, self._issue(client_id, tenant, resource_scopes[0], claims))

    def validate_assertion(self, token: str, fics: list[dict], jwks: dict) -> tuple[dict, dict]:
        if self.reject_whitespace and token != token.strip():
            raise TokenRejected("malformed", "assertion has leading/trailing whitespace")
        header, claims = parse_unverified(token)
        iss = claims.get("iss")
        by_issuer = [x for x in fics if x.get("issuer") == iss]
        if not by_issuer:
            raise TokenRejected("issuer", "no FIC for issuer", claims)
        try:
            verify_signature(token, header, jwks, ("RS256", "ES256", "RS384", "RS512", "PS256"), require_kid=True)
        except TokenRejected as e:
            e.claims = claims
            raise
        now = now_s()
        if "exp" not in claims:
            raise TokenRejected("malformed", "assertion has no exp", claims)
        exp = float(claims["exp"])
        nbf = float(claims.get("nbf", claims.get("iat", 0)) or 0)
        if exp <= now - self.leeway or nbf > now + self.leeway:
            raise TokenRejected("expired", "assertion outside its validity window", claims)
        if self.max_assertion_lifetime is not None and "iat" in claims and \
                exp - float(claims["iat"]) > self.max_assertion_lifetime:
            raise TokenRejected("lifetime", "assertion lifetime too long", claims)
        sub = claims.get("sub")
        by_subject = [x for x in by_issuer if x.get("subject") == sub]
        if not by_subject:
            ci = any(isinstance(sub, str) and str(x.get("subject", "")).lower() == sub.lower() for x in by_issuer)
            raise TokenRejected("subject_case" if ci else "subject", "no FIC for subject", claims)
        auds = claims.get("aud")
        auds = auds if isinstance(auds, list) else [auds]
        for x in by_subject:
            if any(a in x.get("audiences", [AZURE_FIC_AUDIENCE]) for a in auds):
                return claims, x
        raise TokenRejected("audience", "no FIC for audience", claims)

    def _assertion_rejection(self, e: TokenRejected, req: Request) -> Reply:
        c = e.claims
        tail = ("Please check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation")
        if e.kind == "issuer":
            return self.aad_error(401, "invalid_client", 700211,
                                  f"No matching federated identity record found for presented assertion issuer "
                                  f"'{c.get('iss')}'. {tail}", req)
        if e.kind == "subject":
            return self.aad_error(401, "invalid_client", 700213,
                                  f"No matching federated identity record found for presented assertion subject "
                                  f"'{c.get('sub')}'. {tail}", req)
        if e.kind == "subject_case":
            return self.aad_error(401, "invalid_client", 7002138,
                                  f"No matching federated identity record found for presented assertion subject "
                                  f"'{c.get('sub')}'. The subject matches with case-insensitive comparison, but not "
                                  f"with case-sensitive comparison. {tail}", req)
        if e.kind == "audience":
            return self.aad_error(401, "invalid_client", 700212,
                                  f"No matching federated identity record found for presented assertion audience "
                                  f"'{_fmt_aud(c.get('aud'))}'. {tail}", req)
        if e.kind == "expired":
            nbf = float(c.get("nbf", c.get("iat", 0)) or 0)
            return self.aad_error(401, "invalid_client", 700024,
                                  f"Client assertion is not within its valid time range. Current time: "
                                  f"{iso7(now_s())}, assertion valid from {iso7(nbf)}, expiry time of assertion "
                                  f"{iso7(float(c.get('exp', 0)))}. Review the documentation at "
                                  "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .", req)
        if e.kind in ("bad_signature", "unknown_kid", "no_kid", "bad_alg"):
            reason = "The key was not found." if e.kind in ("unknown_kid", "no_kid") else \
                "Key was found, but use of the key to verify the signature failed."
            return self.aad_error(401, "invalid_client", 50013,
                                  f"Assertion failed signature validation. [Reason - {reason}]", req)
        if e.kind == "lifetime":
            return self.aad_error(401, "invalid_client", 700025,
                                  "Client assertion lifetime is too long.", req)  # approximate
        return self.aad_error(400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({e.detail})", req)

    def _issue(self, client_id: str, tenant: str, scope: str, assertion_claims: dict) -> dict:
        now = int(now_s())
        with self.lock:
            expires_in = int(self.expires_in)
            ext = int(self.ext_expires_in) if self.ext_expires_in is not None else expires_in
            refresh_in = self.refresh_in
        resource = scope[: -len("/.default")]
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{client_id}"))
        at_claims = {"aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "iat": now, "nbf": now,
                     "exp": now + expires_in, "appid": client_id, "appidacr": "2", "idp": f"https://sts.windows.net/{tenant}/",
                     "oid": oid, "sub": oid, "tid": tenant, "ver": "1.0", "uti": secrets.token_urlsafe(16),
                     "xms_fic_sub": assertion_claims.get("sub")}
        out: dict[str, Any] = {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": ext,
                               "access_token": sign_jwt(self._own_key, at_claims, "ES256")}
        if refresh_in is not None:
            out["refresh_in"] = int(refresh_in)
        return out


# --------------------------------------------------------------------------------------
# Config-file driven runner
# --------------------------------------------------------------------------------------

def build_from_config(conf: dict, verbose: bool = False) -> dict[str, BaseFake]:
    tls = conf.get("tls")
    fakes: dict[str, BaseFake] = {}
    if conf.get("google"):
        g = dict(conf["google"])
        g_tls = tls if g.pop("tls", True) else None
        fakes["google"] = GoogleFake(tls=g_tls, verbose=verbose, port=g.pop("port", 0), **g)
    if conf.get("azure"):
        a = dict(conf["azure"])
        a_tls = tls if a.pop("tls", True) else None
        fakes["azure"] = AzureFake(tls=a_tls, verbose=verbose, port=a.pop("port", 0), **a)
    return fakes


def _cmd_serve(args) -> int:
    conf = json.loads(Path(args.config).read_text())
    fakes = build_from_config(conf, verbose=args.verbose)
    for f in fakes.values():
        f.start()
    info = {name: {"url": f.url, "port": f.port, **({"provider_resource": f.provider_resource}
                                                   if isinstance(f, GoogleFake) else {})}
            for name, f in fakes.items()}
    info["pid"] = os.getpid()
    text = json.dumps(info)
    if args.ports_file:
        tmp = Path(args.ports_file + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.ports_file)
    print(text, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait(args.max_seconds if args.max_seconds else None)
    for f in fakes.values():
        f.stop()
    return 0


def _cmd_pki(args) -> int:
    print(json.dumps(make_test_pki(args.out, args.host or None)))
    return 0


def _cmd_sign(args) -> int:
    key = load_private_key(args.key)
    claims = json.loads(args.claims)
    now = int(time.time())
    claims.setdefault("iat", now)
    claims.setdefault("exp", now + args.lifetime)
    sys.stdout.write(sign_jwt(key, claims, args.alg))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--config", required=True)
    s.add_argument("--ports-file")
    s.add_argument("--max-seconds", type=float, default=0, help="exit after this long (0 = until signalled)")
    s.add_argument("--verbose", action="store_true")
    s.set_defaults(fn=_cmd_serve)
    p = sub.add_parser("pki")
    p.add_argument("--out", required=True)
    p.add_argument("--host", action="append")
    p.set_defaults(fn=_cmd_pki)
    g = sub.add_parser("sign")
    g.add_argument("--key", required=True)
    g.add_argument("--claims", required=True)
    g.add_argument("--alg", default=None)
    g.add_argument("--lifetime", type=int, default=600)
    g.set_defaults(fn=_cmd_sign)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
