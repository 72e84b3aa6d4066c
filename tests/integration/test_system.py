"""credfs as a system service: the manuals, the systemd unit (verified, and
its capability set tried for real), an fstab line mounted through
mount.fuse3 with the daemon detached and logging to syslog, and the
deployment manifests."""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import CREDFS, ROOT, CredfsTestCase, Mount, is_mounted, write_config

MAN8 = os.path.join(ROOT, "man", "credfs.8")
MAN5 = os.path.join(ROOT, "man", "credfs.conf.5")
UNIT = os.path.join(ROOT, "deploy", "systemd", "credfs.service")
BUILD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(CREDFS)))


def roff_text(path):
    with open(path) as f:
        return f.read()


def section(roff, name):
    """The roff source of one .SH section."""
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH |\Z)" % re.escape(name), roff, re.S | re.M)
    if not m:
        raise AssertionError("no .SH %s section" % name)
    return m.group(1)


def options_in(text):
    """Command-line options (-f, --type) named in roff source or plain text."""
    text = re.sub(r"\\f[BIRP]", " ", text).replace("\\-", "-")
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def help_text():
    r = subprocess.run([CREDFS, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    return r.stdout


class TestManuals(unittest.TestCase):
    def test_man_pages_have_no_warnings(self):
        for page in (MAN8, MAN5):
            r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                               timeout=30, env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", "%s: %s" % (page, r.stderr))
            self.assertIn("NAME", re.sub(".\b", "", r.stdout))

    def test_help_and_manual_name_the_same_commands_and_options(self):
        roff, helped = roff_text(MAN8), help_text()
        documented = options_in(section(roff, "OPTIONS")) | options_in(section(roff, "COMMANDS"))
        synopsis = options_in(section(roff, "SYNOPSIS"))
        usage = options_in("\n".join(l for l in helped.splitlines()
                                     if l.startswith(("usage:", "       credfs"))))
        self.assertEqual(usage, synopsis, "the SYNOPSIS and the usage lines of --help differ")
        missing = documented - options_in(helped)
        self.assertEqual(missing, set(), "credfs.8 documents options --help does not mention")
        self.assertEqual(options_in(helped) - documented, set(),
                         "--help mentions options credfs.8 does not document")
        for command in ("keygen", "oidc", "check"):
            self.assertRegex(section(roff, "SYNOPSIS"), r"\.B credfs %s\b" % command)
            self.assertRegex(section(roff, "COMMANDS"), r"\.B %s\b" % command)
            self.assertRegex(helped, r"(?m)^       credfs %s " % command)
            self.assertRegex(helped, r"(?m)^%s " % command)

    def test_config_manual_documents_every_key(self):
        with open(os.path.join(ROOT, "backend", "cfg_keys.c")) as f:   # the key table
            keys = re.findall(r'^\s*\[K_\w+\] = \{ "(\w+)"', f.read(), re.M)
        self.assertGreater(len(keys), 20)
        entries = "\n".join(re.findall(r"^\.BI (.*)$", roff_text(MAN5), re.M))
        self.assertEqual({k for k in keys if not re.search(r"(^|\W)%s\W" % k, entries, re.M)},
                         set(), "keys without a .BI entry in credfs.conf.5")
        with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
            md = f.read()
        self.assertEqual({k for k in keys if "`%s`" % k not in md}, set(),
                         "keys missing from docs/configuration.md")

    def test_meson_installs_the_manuals(self):
        r = subprocess.run(["meson", "introspect", "--installed", BUILD_DIR],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        installed = json.loads(r.stdout).values()
        self.assertTrue(any(p.endswith("/man8/credfs.8") for p in installed), installed)
        self.assertTrue(any(p.endswith("/man5/credfs.conf.5") for p in installed), installed)


class TestSystemdUnit(CredfsTestCase):
    def unit_for_this_build(self):
        """The unit with ExecStart pointing at the credfs under test, and a
        MANPATH where its Documentation= pages resolve."""
        d = os.path.join(self.dir, "unit")
        os.makedirs(os.path.join(d, "man", "man8"))
        os.makedirs(os.path.join(d, "man", "man5"))
        shutil.copy(MAN8, os.path.join(d, "man", "man8"))
        shutil.copy(MAN5, os.path.join(d, "man", "man5"))
        text = roff_text(UNIT).replace("/usr/local/sbin/credfs", os.path.abspath(CREDFS))
        path = os.path.join(d, "credfs.service")
        with open(path, "w") as f:
            f.write(text)
        return path, dict(os.environ, MANPATH=os.path.join(d, "man"))

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze is missing (Debian package systemd)")
        path, env = self.unit_for_this_build()
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def test_unit_is_hardened_without_hiding_the_mount(self):
        unit = roff_text(UNIT)
        settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
        self.assertEqual(settings["NoNewPrivileges"], "yes")
        self.assertEqual(settings["CapabilityBoundingSet"], "CAP_SYS_ADMIN")
        self.assertEqual(settings["Restart"], "on-failure")
        self.assertEqual(settings["DeviceAllow"], "/dev/fuse rw")
        self.assertIn("-o allow_other,auto_unmount /etc/credfs/credfs.conf /run/credfs",
                      settings["ExecStart"])
        # Each of these gives the service a private mount namespace, from
        # which the FUSE mount would never propagate to the host.
        for hiding in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                       "ReadWritePaths", "ReadOnlyPaths", "ProtectKernelTunables",
                       "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                       "PrivateMounts", "MountFlags", "TemporaryFileSystem", "BindPaths"):
            self.assertNotIn(hiding, settings, "%s would hide the mount from the host" % hiding)

    def run_with_caps(self, bounding):
        """Mounts like the unit does (-f -o allow_other,auto_unmount) with
        only the capabilities in bounding and no_new_privs."""
        cfg = write_config(os.path.join(self.dir, "unit.conf"), self.config_text())
        m = Mount(cfg, os.path.join(self.dir, "unitmnt"), ["-o", "allow_other,auto_unmount"])
        m.args = ["setpriv", "--bounding-set", bounding, "--inh-caps", "-all",
                  "--no-new-privs", "--"] + m.args
        self.mounts.append(m)
        return m

    def test_cap_sys_admin_is_all_the_mount_needs(self):
        m = self.run_with_caps("-all,+sys_admin").start()
        self.assertIn("aws_access_key_id = ", m.read("app", "credentials"))
        with open("/proc/%d/status" % m.proc.pid) as f:
            caps = dict(l.split(":\t") for l in f.read().splitlines() if l.startswith("Cap"))
        self.assertEqual(int(caps["CapBnd"], 16), 1 << 21)      # CAP_SYS_ADMIN only
        # And without it there is no mount at all.
        m2 = self.run_with_caps("-all")
        m2.mnt = os.path.join(self.dir, "nocaps")
        m2.args[-1] = m2.mnt
        with self.assertRaises(RuntimeError):
            m2.start(timeout=5)
        self.assertFalse(is_mounted(m2.mnt))


FSTAB_SCRIPT = r"""
set -eu
T=$1
# A private /dev whose /dev/log is the test's socket, and credfs where
# mount.fuse3 looks for it (mount(8) runs helpers with the default PATH).
mkdir -p "$T/hostdev"
mount --rbind /dev "$T/hostdev"
mount -t tmpfs -o mode=0755 credfs-test-dev /dev
for d in null zero full random urandom fuse; do
	touch "/dev/$d"
	mount --bind "$T/hostdev/$d" "/dev/$d"
done
touch /dev/log
mount --bind "$T/log.sock" /dev/log
mount --bind "$T/sbin" /usr/local/sbin
mount -T "$T/fstab" "$T/mnt"
grep " $T/mnt " /proc/self/mountinfo
echo "config: $(head -c 200 "$T/mnt/app/config" | tr '\n' '|')"
echo "key lines: $(grep -c '^aws_access_key_id = ' "$T/mnt/app/credentials")"
umount "$T/mnt"
"""


class TestFstab(CredfsTestCase):
    def daemons(self, config):
        """Pids of the processes started with config on their command line."""
        pids = []
        for p in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(p, "rb") as f:
                    if config.encode() in f.read().split(b"\0"):
                        pids.append(int(p.split("/")[2]))
            except OSError:
                pass
        return pids

    def test_fstab_line_mounts_through_mount_fuse3(self):
        if not shutil.which("unshare"):
            self.fail("unshare (util-linux) is missing")
        t = self.dir
        config = write_config(os.path.join(t, "credfs.conf"), self.config_text())
        os.makedirs(os.path.join(t, "mnt"))
        os.makedirs(os.path.join(t, "sbin"))
        os.symlink(os.path.abspath(CREDFS), os.path.join(t, "sbin", "credfs"))
        line = "%s %s/mnt fuse.credfs allow_other,auto_unmount,nofail 0 0\n" % (config, t)
        with open(os.path.join(t, "fstab"), "w") as f:
            f.write("# the line docs/containers.md and credfs(8) give, with test paths\n" + line)
        log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        log.bind(os.path.join(t, "log.sock"))
        os.chmod(os.path.join(t, "log.sock"), 0o666)
        self.addCleanup(log.close)
        try:
            r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                                "sh", "-c", FSTAB_SCRIPT, "sh", t],
                               capture_output=True, text=True, timeout=60)
            deadline = time.time() + 10
            while self.daemons(config) and time.time() < deadline:
                time.sleep(0.1)
            left = self.daemons(config)
        finally:
            for pid in self.daemons(config):
                os.kill(pid, signal.SIGTERM)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(left, [], "the detached daemon did not exit after umount")
        mountinfo = [l for l in r.stdout.splitlines() if " - fuse.credfs " in l]
        self.assertEqual(len(mountinfo), 1, r.stdout)
        opts, super_opts = mountinfo[0].split()[5], mountinfo[0].split(" - ")[1].split()[2]
        # mount.fuse3 passes rw,dev,suid: credfs keeps its mount read-only,
        # nosuid and nodev anyway.
        self.assertEqual(opts.split(",")[:3], ["ro", "nosuid", "nodev"])
        self.assertIn("allow_other", super_opts.split(","))
        self.assertIn("default_permissions", super_opts.split(","))
        self.assertEqual(mountinfo[0].split(" - ")[1].split()[1], config)
        self.assertIn("config: [default]|region = ap-northeast-1|", r.stdout)
        self.assertIn("key lines: 1", r.stdout)
        # Detached, the daemon logs to syslog.
        log.setblocking(False)
        lines = []
        while True:
            try:
                lines.append(log.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                break
        text = "\n".join(lines)
        self.assertRegex(text, r"<30>.*credfs\[\d+\]: mounted %s at " % re.escape(config))
        self.assertRegex(text, r"<30>.*credfs\[\d+\]: role app: renewed \(1 STS call\), "
                               r"expires \S+Z, next refresh \S+Z")
        self.assertEqual(self.proxy.count("AssumeRoleWithWebIdentity"), 1)


class TestDeploy(unittest.TestCase):
    def load(self, *parts):
        import yaml
        with open(os.path.join(ROOT, "deploy", *parts)) as f:
            return [d for d in yaml.safe_load_all(f) if d]

    def test_daemonset(self):
        docs = {d["kind"]: d for d in self.load("kubernetes", "daemonset.yaml")}
        self.assertEqual(set(docs), {"Namespace", "ConfigMap", "DaemonSet"})
        spec = docs["DaemonSet"]["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        self.assertTrue(c["securityContext"]["privileged"])
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        run = [m for m in mounts.values() if m["mountPath"] == "/run/credfs"]
        self.assertEqual(len(run), 1)
        self.assertEqual(run[0]["mountPropagation"], "Bidirectional")
        self.assertEqual(volumes[run[0]["name"]]["hostPath"]["path"], "/run/credfs")
        self.assertEqual(volumes["fuse"]["hostPath"]["path"], "/dev/fuse")
        self.assertIn("configMap", volumes["config"])
        self.assertIn("secret", volumes["signer"])
        self.assertEqual(volumes["signer"]["secret"]["defaultMode"], 0o400)
        self.assertIn("credfs.conf", docs["ConfigMap"]["data"])
        conf = docs["ConfigMap"]["data"]["credfs.conf"]
        # The configuration in the ConfigMap is one credfs accepts.
        with tempfile.TemporaryDirectory() as d:
            keypath = os.path.join(d, "signer.pem")
            subprocess.run([CREDFS, "keygen", keypath], check=True, capture_output=True)
            conf = conf.replace("/etc/credfs/signer/signer.pem", keypath)
            r = subprocess.run([CREDFS, "check", write_config(os.path.join(d, "c.conf"), conf)],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_pod_example(self):
        (pod,) = self.load("kubernetes", "pod-example.yaml")
        self.assertEqual(pod["kind"], "Pod")
        (c,) = pod["spec"]["containers"]
        (vm,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/root/.aws"]
        self.assertTrue(vm["readOnly"])
        self.assertEqual(vm["mountPropagation"], "HostToContainer")
        (vol,) = [v for v in pod["spec"]["volumes"] if v["name"] == vm["name"]]
        self.assertEqual(vol["hostPath"]["path"], "/run/credfs/app")

    def test_docker_compose_example(self):
        (compose,) = self.load("docker", "compose.yaml")
        app = compose["services"]["app"]
        self.assertIn("/run/credfs/app:/root/.aws:ro", app["volumes"])
        self.assertFalse(any(k.startswith("AWS_") for k in app.get("environment", {})))
