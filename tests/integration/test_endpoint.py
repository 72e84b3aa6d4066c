"""The HTTP face with real clients: the AWS CLI v2 (Debian's 2.9, which knows
only AWS_CONTAINER_AUTHORIZATION_TOKEN), boto3 (through endpoint.env, and as
a long-running session across renewals), the AWS SDK for JavaScript v3
(fromHttp, fromInstanceMetadata), IMDSv2 through
AWS_EC2_METADATA_SERVICE_ENDPOINT; one STS call for 64 first requests; the
kernel's permissions on authorization_token deciding who gets credentials;
rotation; metrics checked by promtool on both faces."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from endpoint_util import (JS_DIR, EndpointCase, promtool_check, read_env, request)
import jsdeps
from harness import AWS_CLI, SYSTEM_PYTHON, clean_aws_env, wait_for

ARN = "arn:aws:sts::123456789012:assumed-role/%s-role/%s"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Renew every ~6 s while read: credentials the proxy makes last 120 s.
SHORT = "duration_seconds = 900\nrefresh_fraction = 0.05\nmin_validity = 60\n"
WHOAMI = ("import boto3, json\n"
          "s = boto3.session.Session()\n"
          "ident = s.client('sts', endpoint_url=%r).get_caller_identity()\n"
          "c = s.get_credentials()\n"
          "print(json.dumps({'Arn': ident['Arn'], 'method': c.method,"
          " 'AccessKeyId': c.get_frozen_credentials().access_key}))\n")


class TestFiles(EndpointCase):
    def test_authorization_token_and_endpoint_env(self):
        m = self.endpoint_mount(roles={"app": "subject = system:serviceaccount:prod:app\n"
                                              "uid = 1000\ngid = 1000\nmode = 0440\n"})
        token = m.read("app", "authorization_token")
        self.assertRegex(token, TOKEN_RE)
        for f in ("authorization_token", "endpoint.env"):
            st = os.stat(m.path("app", f))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (1000, 1000, 0o440), f)
        env = read_env(m.path("app", "endpoint.env"))
        self.assertEqual(env, {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url(),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": m.path("app", "authorization_token"),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        })
        self.assertEqual(self.proxy.count(), 0, "the files alone never call STS")

    def test_consumer_path_and_the_address_every_sdk_accepts(self):
        m = self.endpoint_mount(roles={"app": "subject = s\nconsumer_path = /root/.aws\n"},
                                listen="[::1]:%d, 127.0.0.1:%d" % (self.port_hint(), self.port_hint()))
        env = read_env(m.path("app", "endpoint.env"))
        self.assertEqual(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"],
                         "/root/.aws/authorization_token")
        self.assertTrue(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:"))

    def port_hint(self):
        if not hasattr(self, "_hint"):
            from sts_proxy import free_port
            self._hint = free_port()
        return self._hint

    def test_no_endpoint_no_files(self):
        m = self.mount()
        self.assertNotIn("authorization_token", os.listdir(m.path("app")))
        self.assertNotIn("endpoint.env", os.listdir(m.path("app")))


class TestContainerEndpoint(EndpointCase):
    def test_credentials_json_and_generic_refusals(self):
        m = self.endpoint_mount(roles={"app": "subject = a\n", "other": "subject = b\n"})
        token = m.read("app", "authorization_token")
        status, headers, body = self.get("/roles/app/credentials", {"Authorization": token})
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(sorted(doc), ["AccessKeyId", "Expiration", "SecretAccessKey", "Token"])
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(headers.get("cache-control"), "no-store")
        self.assertIn("aws_access_key_id = %s" % doc["AccessKeyId"], m.read("app", "credentials"))
        # Refusals: no hint, the same for a wrong token, another role's
        # token, an unknown role and a malformed name.
        s401 = self.get("/roles/app/credentials")
        self.assertEqual(s401[0], 401)
        self.assertEqual(set(json.loads(s401[2])), {"code", "message"})
        denied = [self.get("/roles/app/credentials", {"Authorization": "x" * 43}),
                  self.get("/roles/app/credentials",
                           {"Authorization": m.read("other", "authorization_token")}),
                  self.get("/roles/nosuch/credentials", {"Authorization": token}),
                  self.get("/roles/app/credentials", {"Authorization": token + "x"}),
                  self.get("/roles/app/credentials", {"Authorization": ""})]
        for status, _, body in denied:
            self.assertEqual((status, body), (denied[0][0], denied[0][2]))
        self.assertEqual(denied[0][0], 403)
        for _, _, body in denied + [s401]:
            self.assertNotIn("app", body)
            self.assertNotIn("nosuch", body)
        self.assertEqual(self.proxy.count(), 1)

    def test_aws_cli_v2_and_boto3_through_endpoint_env(self):
        m = self.endpoint_mount()
        env = clean_aws_env(**read_env(m.path("app", "endpoint.env")))
        env["AWS_DEFAULT_REGION"] = "ap-northeast-1"
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["Arn"], ARN % ("app", "credfs-app"))
        out = subprocess.run([sys.executable, "-c", WHOAMI % self.moto.url], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))
        self.assertEqual(got["method"], "container-role")
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)

    def test_which_variable_wins(self):
        """With both variables set, botocore 1.43 and the JS SDK read the
        file; Debian's CLI 2.9 knows only the variable."""
        jsdeps.ensure()
        m = self.endpoint_mount()
        env = clean_aws_env(**read_env(m.path("app", "endpoint.env")))
        env["AWS_DEFAULT_REGION"] = "ap-northeast-1"
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "W" * 43
        out = subprocess.run([sys.executable, "-c", WHOAMI % self.moto.url], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, "botocore must prefer the file: " + out.stderr)
        out = subprocess.run(["node", os.path.join(JS_DIR, "endpoint.mjs"), "http",
                              self.moto.url], env=env, capture_output=True, text=True,
                             timeout=60, cwd=JS_DIR)
        self.assertEqual(out.returncode, 0, "the JS SDK must prefer the file: " + out.stderr)
        self.assertIn("awsContainerAuthorizationTokenFile will take precedence", out.stderr)
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--endpoint-url",
                              self.moto.url], env=env, capture_output=True, text=True,
                             timeout=60)
        self.assertNotEqual(out.returncode, 0, "CLI 2.9 uses the variable, here a wrong one")

    def test_boto3_session_runs_across_renewals_without_a_failure(self):
        self.proxy.lifetime = 120
        m = self.endpoint_mount(defaults=SHORT)
        env = read_env(m.path("app", "endpoint.env"))
        code = ("import boto3, json, sys, time\n"
                "s = boto3.session.Session()\n"
                "sts = s.client('sts', endpoint_url=%r)\n"
                "keys, calls, end = [], 0, time.time() + 60\n"
                "while time.time() < end and len(set(keys)) < 4:\n"
                "    sts.get_caller_identity(); calls += 1\n"
                "    keys.append(s.get_credentials().get_frozen_credentials().access_key)\n"
                "    time.sleep(0.5)\n"
                "print(json.dumps({'keys': len(set(keys)), 'calls': calls,"
                " 'method': s.get_credentials().method}))\n" % self.moto.url)
        e = clean_aws_env(**env)
        e["AWS_DEFAULT_REGION"] = "ap-northeast-1"
        out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        got = json.loads(out.stdout)
        self.assertEqual(got["method"], "container-role")
        self.assertGreaterEqual(got["keys"], 4, "three renewals within a minute: %r" % got)
        self.assertGreaterEqual(m.status("app")["renewals"], 4)

    def test_64_concurrent_first_requests_make_one_sts_call(self):
        self.proxy.faults = []
        m = self.endpoint_mount()
        token = m.read("app", "authorization_token")
        results, barrier = [], threading.Barrier(64)

        def one():
            barrier.wait()
            results.append(request(self.port, "GET", "/roles/app/credentials",
                                   {"Authorization": token}))

        threads = [threading.Thread(target=one) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 64)
        self.assertEqual({r[0] for r in results}, {200})
        self.assertEqual(len({json.loads(r[2])["AccessKeyId"] for r in results}), 1)
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)

    def test_a_uid_that_cannot_read_the_token_gets_no_credentials(self):
        m = self.endpoint_mount(roles={"app": "subject = a\nuid = 1000\nmode = 0400\n"},
                                extra_args=["-o", "allow_other"])
        os.chmod(self.dir, 0o755)
        probe = ("import os, sys, json, urllib.request, urllib.error\n"
                 "os.setgroups([]); os.setgid(%d); os.setuid(%d)\n"
                 "out = {}\n"
                 "try:\n"
                 "    tok = open(%r).read(); out['read'] = True\n"
                 "except OSError as e:\n"
                 "    tok = 'guess'; out['read'] = e.errno\n"
                 "req = urllib.request.Request(%r, headers={'Authorization': tok})\n"
                 "try:\n"
                 "    out['status'] = urllib.request.urlopen(req, timeout=10).status\n"
                 "except urllib.error.HTTPError as e:\n"
                 "    out['status'] = e.code\n"
                 "print(json.dumps(out))\n")
        path = m.path("app", "authorization_token")
        results = {}
        for uid in (1000, 65534):
            r = subprocess.run([SYSTEM_PYTHON, "-c", probe % (uid, uid, path, self.url())],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            results[uid] = json.loads(r.stdout)
        self.assertEqual(results[1000], {"read": True, "status": 200})
        self.assertEqual(results[65534], {"read": 13, "status": 403})

    def test_rotation_replaces_the_token(self):
        m = self.endpoint_mount()
        old = m.read("app", "authorization_token")
        self.assertEqual(self.get("/roles/app/credentials", {"Authorization": old})[0], 200)
        with open(m.config, "a") as f:
            f.write("\n")
        text = open(m.config).read().replace(
            "[role app]\n", "[role app]\nauthorization_token_rotation = 1\n")
        with open(m.config, "w") as f:
            f.write(text)
        m.proc.send_signal(signal.SIGHUP)
        new = wait_for(lambda: (lambda t: t if t != old else None)(
            m.read("app", "authorization_token")), timeout=10)
        self.assertTrue(new and TOKEN_RE.match(new))
        self.assertEqual(self.get("/roles/app/credentials", {"Authorization": old})[0], 403)
        self.assertEqual(self.get("/roles/app/credentials", {"Authorization": new})[0], 200)
        self.assertIn(new, m.read("app", "endpoint.env"))
        self.assertEqual(self.proxy.count(), 1, "rotation keeps the credentials")

    def test_reload_moves_the_listen_address(self):
        from sts_proxy import free_port
        m = self.endpoint_mount()
        token = m.read("app", "authorization_token")
        old, new = self.port, free_port()
        text = open(m.config).read().replace("127.0.0.1:%d" % old, "127.0.0.1:%d" % new)
        with open(m.config, "w") as f:
            f.write(text)
        m.proc.send_signal(signal.SIGHUP)

        def moved():
            try:
                return request(new, "GET", "/roles/app/credentials", {"Authorization": token})[0]
            except OSError:
                return None
        self.assertEqual(wait_for(moved, timeout=10), 200)
        with self.assertRaises(OSError):
            request(old, "GET", "/metrics", timeout=2)
        self.assertIn("127.0.0.1:%d" % new, m.read("app", "endpoint.env"))
        # Without [endpoint] it listens nowhere and the files are gone.
        with open(m.config, "w") as f:
            f.write(text.split("[endpoint]")[0])
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "endpoint.env" not in os.listdir(m.path("app")),
                                 timeout=10))
        self.assertTrue(wait_for(lambda: moved() is None, timeout=10), "still listening")

    def test_an_address_in_use_fails_the_start_naming_it(self):
        """No SO_REUSEPORT: a second daemon must not share the port (it
        would answer half the requests with tokens of its own)."""
        self.endpoint_mount()
        text = open(self.mounts[0].config).read()
        with self.assertRaises(RuntimeError) as cm:
            self.mount(text, name="second")
        self.assertIn("cannot listen on 127.0.0.1:%d" % self.port, str(cm.exception))

    def test_the_token_is_never_logged(self):
        m = self.endpoint_mount(extra_args=["-d"])
        token = m.read("app", "authorization_token")
        self.assertEqual(self.get("/roles/app/credentials", {"Authorization": token})[0], 200)
        self.get("/roles/app/credentials", {"Authorization": token[:-1] + "A"})
        secret = json.loads(self.get("/roles/app/credentials",
                                     {"Authorization": token})[2])["SecretAccessKey"]
        m.stop()
        log = m.output()
        self.assertNotIn(token, log)
        self.assertNotIn(token[:20], log)
        self.assertNotIn(secret, log)


class TestImds(EndpointCase):
    def imds_token(self, ttl="21600", headers=None):
        h = {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        h.update(headers or {})
        return request(self.port, "PUT", "/latest/api/token", h)

    def test_protocol(self):
        self.endpoint_mount()
        status, headers, token = self.imds_token("60")
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-aws-ec2-metadata-token-ttl-seconds"], "60")
        t = {"X-aws-ec2-metadata-token": token}
        base = "/latest/meta-data/iam/security-credentials/"
        self.assertEqual(self.get(base, t)[0:3:2], (200, "app"))
        status, _, body = self.get(base + "app", t)
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["Code"], "Success")
        self.assertEqual(doc["Type"], "AWS-HMAC")
        self.assertEqual(sorted(doc), sorted(["Code", "LastUpdated", "Type", "AccessKeyId",
                                              "SecretAccessKey", "Token", "Expiration"]))
        # What SDKs probe first, and other names: 404, so they fall back.
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials-extended/", t)[0], 404)
        self.assertEqual(self.get("/latest/meta-data/iam/info", t)[0], 404)
        self.assertEqual(self.get(base + "other", t)[0], 404)
        # Refusals.
        self.assertEqual(self.get(base)[0], 401)
        self.assertEqual(self.get(base, {"X-aws-ec2-metadata-token": "A" * 54})[0], 401)
        self.assertEqual(self.get(base, {"X-aws-ec2-metadata-token": token[:-1]})[0], 401)
        for ttl in ("", "0", "21601", "-1", "1e3", "abc"):
            self.assertEqual(self.imds_token(ttl)[0], 400, ttl)
        self.assertEqual(request(self.port, "PUT", "/latest/api/token")[0], 400)
        self.assertEqual(self.imds_token("60", {"X-Forwarded-For": "10.0.0.1"})[0], 403)
        for host in ("evil.example", "evil.example:%d" % self.port, "127.0.0.2:%d" % self.port,
                     "127.0.0.1:1"):
            self.assertEqual(self.get(base, dict(t, Host=host))[0], 403, host)
            self.assertEqual(self.imds_token("60", {"Host": host})[0], 403, host)
        self.assertEqual(self.get(base, dict(t, Host="169.254.169.254"))[0], 200)
        self.assertEqual(request(self.port, "POST", "/latest/api/token")[0], 405)
        self.assertEqual(request(self.port, "GET", "/latest/api/token")[0], 405)

    def test_a_session_token_expires(self):
        self.endpoint_mount()
        token = self.imds_token("1")[2]
        t = {"X-aws-ec2-metadata-token": token}
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials/", t)[0], 200)
        time.sleep(2.1)
        self.assertEqual(self.get("/latest/meta-data/iam/security-credentials/", t)[0], 401)

    def test_no_imds_role_no_imds(self):
        self.endpoint_mount(imds_role=None)
        self.assertEqual(self.imds_token("60")[0], 404)

    def test_boto3_through_aws_ec2_metadata_service_endpoint(self):
        self.endpoint_mount()
        env = clean_aws_env(AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d/" % self.port,
                            AWS_EC2_METADATA_DISABLED="false",
                            AWS_DEFAULT_REGION="ap-northeast-1")
        out = subprocess.run([sys.executable, "-c", WHOAMI % self.moto.url], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        got = json.loads(out.stdout)
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))
        self.assertEqual(got["method"], "iam-role")


class TestJavaScriptSdk(EndpointCase):
    """fromHttp and fromInstanceMetadata of the AWS SDK for JavaScript v3."""

    @classmethod
    def setUpClass(cls):
        jsdeps.ensure()
        super().setUpClass()

    def node(self, mode, env):
        out = subprocess.run(["node", os.path.join(JS_DIR, "endpoint.mjs"), mode, self.moto.url],
                             env=env, capture_output=True, text=True, timeout=60, cwd=JS_DIR)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        return json.loads(out.stdout)

    def test_from_http_with_endpoint_env(self):
        m = self.endpoint_mount()
        got = self.node("http", clean_aws_env(**read_env(m.path("app", "endpoint.env"))))
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))
        self.assertIn("aws_access_key_id = %s" % got["AccessKeyId"], m.read("app", "credentials"))

    def test_from_http_with_the_token_file_only(self):
        m = self.endpoint_mount()
        env = read_env(m.path("app", "endpoint.env"))
        del env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        got = self.node("http", clean_aws_env(**env))
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))

    def test_from_instance_metadata_imdsv2(self):
        self.endpoint_mount()
        env = clean_aws_env(AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % self.port,
                            AWS_EC2_METADATA_DISABLED="false")
        got = self.node("imds", env)
        self.assertEqual(got["Arn"], ARN % ("app", "credfs-app"))


class TestMetrics(EndpointCase):
    def test_promtool_accepts_both_faces_and_they_agree(self):
        m = self.endpoint_mount(roles={"app": "subject = a\n", "idle": "subject = b\n"})
        token = m.read("app", "authorization_token")
        self.assertEqual(self.get("/roles/app/credentials", {"Authorization": token})[0], 200)
        m.read("app", "credentials")
        texts = {"file": m.read("metrics")}
        status, headers, texts["http"] = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        for face, text in texts.items():
            rc, out = promtool_check(text)
            self.assertEqual(rc, 0, "%s: %s" % (face, out))
            for family in ("credfs_credentials_expiry_timestamp_seconds{role=\"app\"}",
                           "credfs_credentials_refresh_seconds{role=\"app\"}",
                           "credfs_renewals_total{role=\"app\",result=\"success\"} 1",
                           "credfs_requests_total{role=\"app\",outcome=\"200\"} 1",
                           "credfs_request_duration_seconds_bucket{le=\"+Inf\"} 1",
                           "credfs_roles_configured 2", "credfs_roles_in_use 1",
                           "credfs_build_info{version="):
                self.assertIn(family, text, face)
            self.assertIn('credfs_endpoint_requests_total{route="container",code="200"} 1', text)
            self.assertNotIn("idle", text, "roles not in use have no series")
            self.assertNotIn(token, text)

        def strip(t):
            return [l for l in t.splitlines() if not l.startswith("credfs_credentials_refresh_seconds")
                    and not l.startswith("credfs_endpoint_")]
        self.assertEqual(strip(texts["file"]), strip(texts["http"]))

    def test_the_alert_rules_are_valid(self):
        from harness import ROOT
        rules = os.path.join(ROOT, "deploy", "prometheus", "credfs-alerts.yml")
        r = subprocess.run(["promtool", "check", "rules", rules], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("2 rules found", r.stdout)
