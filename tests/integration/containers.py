"""Real containers for the integration tests: rootful podman with runc, and
an image built locally from a Debian root filesystem (mmdebstrap) with the
AWS CLI in it, since no image registry is reachable.  Typical use::

    import containers as C

    C.ensure_tools()                 # apt-get install what is missing
    image = C.ensure_image()         # localhost/credfs-test:awscli, cached
    with C.run_container(image, binds=[(mnt + "/app", "/root/.aws", True)]) as c:
        r = c.exec(["aws", "sts", "get-caller-identity", "--endpoint-url", url])

Nothing here touches /etc: what podman needs on this host is detected by
detect_host() (the notes of each decision are kept in host-profile.json),
written to a containers.conf of our own under CACHE_DIR and handed to the
podman child processes only (CONTAINERS_CONF), and repeated as global flags
so that a logged command line works by itself.  Facts that shaped it:
- without CAP_SYS_RESOURCE podman's default rlimits (1048576) cannot be set
  and runc fails every start, hence default_ulimits = [];
- no systemd as PID 1 means --cgroup-manager cgroupfs and file events;
- podman prefers crun when both are installed, so the runtime is pinned;
- no storage.conf: conmon runs the cleanup command with a scrubbed
  environment and libpod's database pins the first run's storage settings,
  so any difference hangs every `podman run --rm` for 20 s;
- the bridge network adds an interface and iptables rules to the host, so
  only host or no networking is allowed;
- killing a `podman exec` client does not kill what runs inside: bound
  commands with `timeout` in the image.
Containers are labelled with their owner (pid and start time): stop() and an
atexit hook remove them, a later run removes those of a killed one, and
podman's --timeout is the last backstop.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterable, Sequence

# --------------------------------------------------------------------------
# constants / knobs (environment overrides for CI or local experiments)

CACHE_DIR = Path(os.environ.get("CREDFS_TEST_CACHE", "/var/cache/credfs-test"))
CONFIG_DIR = Path(os.environ.get("CREDFS_TEST_PODMAN_CONFIG", str(CACHE_DIR / "podman")))

AWSCLI_IMAGE = "localhost/credfs-test:awscli"

LABEL_RECIPE = "credfs-test.recipe"      # on images: hash of the build recipe
LABEL_OWNER = "credfs-test.owner"        # on containers: "<pid>:<starttime>"

# Bump to force a rebuild of the awscli rootfs everywhere.
AWSCLI_RECIPE = {
    "version": 1,
    "suite": "bookworm",
    "variant": "essential",          # Essential:yes set (bash, coreutils, dpkg, ...) + deps
    "include": ["awscli", "ca-certificates"],
    "dpkgopt": [
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/locale/*",
    ],
    "changes": [
        'CMD ["/bin/bash"]',
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV AWS_PAGER=",                 # no pager: `less` is not in the image
        "ENV AWS_EC2_METADATA_DISABLED=true",  # never probe 169.254.169.254
        "WORKDIR /root",
    ],
}

CORE_PACKAGES = ["podman", "runc", "conmon", "catatonit", "mmdebstrap"]

# podman (4.x) sets RLIMIT_NOFILE and RLIMIT_NPROC to this for rootful
# containers unless containers.conf overrides it.
PODMAN_DEFAULT_RLIMIT = 1048576

DEFAULT_GRAPHROOT = "/var/lib/containers/storage"
DEFAULT_RUNROOT = "/run/containers/storage"
VFS_GRAPHROOT = "/var/lib/containers/credfs-test-vfs"
VFS_RUNROOT = "/run/containers/credfs-test-vfs"

DEFAULT_MAX_LIFETIME = 900  # seconds; `podman run --timeout`, backstop only

_apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", NEEDRESTART_MODE="a")


class ContainerError(RuntimeError):
    pass


def _log(msg: str) -> None:
    if os.environ.get("CREDFS_TEST_QUIET") != "1":
        print(f"[containers] {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], *, timeout: float = 120, check: bool = True, env=None,
         input: str | None = None) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                           env=env, input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise ContainerError(f"timeout after {timeout}s: {shlex.join(cmd)}\n"
                             f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
    if check and r.returncode != 0:
        raise ContainerError(f"exit {r.returncode}: {shlex.join(cmd)}\n"
                             f"stdout: {r.stdout[-4000:]}\nstderr: {r.stderr[-4000:]}")
    return r


@contextlib.contextmanager
def _flock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# tools

def _dpkg_installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def ensure_packages(packages: Iterable[str]) -> list[str]:
    """apt-get install the packages that are not installed yet; return those installed."""
    missing = [p for p in dict.fromkeys(packages) if not _dpkg_installed(p)]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ContainerError(f"need root to install {missing}")
    _log(f"apt-get install {' '.join(missing)}")
    lock = ["-o", "DPkg::Lock::Timeout=600"]   # another apt may be running
    with _flock(CACHE_DIR / ".apt.lock"):
        missing = [p for p in missing if not _dpkg_installed(p)]
        if not missing:
            return []
        _run(["apt-get", "update", "-qq", *lock], timeout=600, env=_apt_env)
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *lock, *missing],
             timeout=1200, env=_apt_env)
    still = [p for p in missing if not _dpkg_installed(p)]
    if still:
        raise ContainerError(f"packages still missing after apt-get install: {still}")
    return missing


def ensure_tools(extra: Iterable[str] = ()) -> list[str]:
    """Install podman/runc/conmon/catatonit/mmdebstrap (+extra) if missing.

    Conditional extras are decided by detection after podman is present:
    fuse-overlayfs only if the kernel cannot do overlay on the storage fs,
    uidmap only when not root (rootless is otherwise unsupported here).
    Returns the list of packages that were actually installed.
    """
    installed = ensure_packages([*CORE_PACKAGES, *extra])
    if os.geteuid() != 0:
        installed += ensure_packages(["uidmap", "slirp4netns", "fuse-overlayfs"])
    detect_host.cache_clear()
    return installed


# --------------------------------------------------------------------------
# host detection

@dataclasses.dataclass
class HostProfile:
    rootful: bool
    systemd_pid1: bool
    cgroup_manager: str          # "cgroupfs" | "systemd"
    cgroup_version: str          # "v1" | "v1-hybrid" | "v2" | "none"
    runtime: str                 # "runc" | "crun"
    runtime_path: str
    events_logger: str           # "file" | "journald"
    ulimits_inherit: bool        # write default_ulimits = [] (see the module's docstring)
    rlimit_hard: dict
    cap_sys_resource: bool
    storage_driver: str          # "overlay" | "vfs"
    graphroot: str
    runroot: str
    init: bool                   # catatonit available -> --init
    cni_plugins: bool
    dev_fuse: bool
    root_propagation: str        # of the "/" mount: "private" | "shared" | "slave"
    podman_version: str
    notes: dict                  # detection -> human readable reason

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def _mountinfo() -> list[dict]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.rstrip("\n").split(" - ", 1)
            p = pre.split()
            fstype, source, *rest = post.split()
            opt = {"shared": None, "master": None}
            for tag in p[6:]:
                k, _, v = tag.partition(":")
                opt[k] = v or True
            out.append({"id": int(p[0]), "parent": int(p[1]), "root": p[3],
                        "target": p[4].replace("\\040", " "), "options": p[5],
                        "fstype": fstype, "source": source,
                        "shared": opt.get("shared"), "master": opt.get("master"),
                        "unbindable": "unbindable" in opt})
    return out


def mount_of(path: str | os.PathLike) -> dict:
    """mountinfo entry of the mount that contains `path` (last, i.e. top-most, match)."""
    path = os.path.realpath(path)
    best = None
    for m in _mountinfo():
        t = m["target"]
        if path == t or path.startswith(t.rstrip("/") + "/"):
            if best is None or len(t) >= len(best["target"]):
                best = m
    assert best is not None
    return best


def propagation(m: dict) -> str:
    if m["shared"]:
        return "shared" + (" (and slave)" if m["master"] else "")
    if m["master"]:
        return "slave"
    return "unbindable" if m["unbindable"] else "private"


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _can_raise_rlimit(name: str, value: int) -> bool:
    code = ("import resource,sys;r=getattr(resource,%r);s,h=resource.getrlimit(r)\n"
            "try: resource.setrlimit(r,(min(s,%d),%d))\n"
            "except Exception: sys.exit(1)") % (name, value, value)
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def _overlay_works(base: Path) -> tuple[bool, str]:
    """Try a real kernel overlay mount on the filesystem that will hold the storage."""
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=".credfs-overlay-probe-", dir=base))
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (d / sub).mkdir()
        (d / "lower" / "f").write_text("x")
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={d}/lower,upperdir={d}/upper,workdir={d}/work",
                            str(d / "merged")], capture_output=True, text=True)
        if r.returncode != 0:
            return False, r.stderr.strip()
        try:
            (d / "merged" / "g").write_text("y")
            ok = (d / "merged" / "f").read_text() == "x" and (d / "upper" / "g").exists()
        finally:
            subprocess.run(["umount", str(d / "merged")], capture_output=True)
        return ok, "mounted, read lower, wrote upper"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def detect_host() -> HostProfile:
    notes: dict[str, str] = {}
    rootful = os.geteuid() == 0
    notes["rootful"] = ("euid 0: rootful podman, no user namespace; container uid 0 is host "
                        "uid 0, so a FUSE mount owned by root is readable by container root "
                        "even without allow_other" if rootful else
                        "not root: rootless podman would need subuids, slirp4netns, "
                        "fuse-overlayfs; unsupported by this module")
    if not rootful:
        raise ContainerError("containers.py supports rootful podman only (run tests as root)")

    systemd = os.path.isdir("/run/systemd/system")
    with open("/proc/1/comm") as f:
        pid1 = f.read().strip()
    cgm = "systemd" if systemd else "cgroupfs"
    notes["cgroup_manager"] = (f"PID 1 is {pid1!r}; /run/systemd/system "
                               f"{'exists' if systemd else 'absent'} -> {cgm} "
                               "(the systemd manager needs a systemd PID 1 over D-Bus)")
    journald = os.path.exists("/run/systemd/journal/socket")
    events = "journald" if journald else "file"
    notes["events_logger"] = f"journald socket {'present' if journald else 'absent'} -> {events}"

    mi = _mountinfo()
    cg = [m for m in mi if m["target"] == "/sys/fs/cgroup"]
    if cg and cg[-1]["fstype"] == "cgroup2":
        cgv = "v2"
    elif any(m["fstype"] == "cgroup" for m in mi):
        cgv = "v1-hybrid" if any(m["target"] == "/sys/fs/cgroup/unified" and m["fstype"] == "cgroup2"
                                 for m in mi) else "v1"
    else:
        cgv = "none"
    notes["cgroup_version"] = (f"/sys/fs/cgroup is {cg[-1]['fstype'] if cg else 'not mounted'}"
                               f" -> {cgv}; runc 1.1 handles v1 and v2 with cgroupfs")

    runc, crun = shutil.which("runc"), shutil.which("crun")
    if runc:
        runtime, rpath = "runc", runc
        notes["runtime"] = (f"runc at {runc} (crun {'also present' if crun else 'absent'}); "
                            "pinned to runc explicitly because podman silently prefers crun "
                            "when both are installed; the tests are written against runc")
    elif crun:
        runtime, rpath = "crun", crun
        notes["runtime"] = f"runc missing, crun at {crun}"
    else:
        raise ContainerError("no OCI runtime (runc/crun); run ensure_tools()")

    cap_res = bool(_cap_eff() & (1 << 24))  # CAP_SYS_RESOURCE
    import resource
    hard = {n: resource.getrlimit(getattr(resource, n))[1] for n in ("RLIMIT_NOFILE", "RLIMIT_NPROC")}
    too_low = {n: h for n, h in hard.items()
               if h != resource.RLIM_INFINITY and h < PODMAN_DEFAULT_RLIMIT}
    cannot_raise = {n: h for n, h in too_low.items()
                    if not _can_raise_rlimit(n, PODMAN_DEFAULT_RLIMIT)}
    inherit = bool(cannot_raise)
    notes["ulimits"] = (f"CAP_SYS_RESOURCE {'present' if cap_res else 'MISSING'}; hard limits {hard}; "
                        f"podman would set nofile/nproc={PODMAN_DEFAULT_RLIMIT}; cannot raise {cannot_raise or 'none'}"
                        + (" -> default_ulimits = [] (container inherits podman's limits; otherwise "
                           "runc fails 'error setting rlimit type 7: operation not permitted')"
                           if inherit else " -> podman defaults are fine"))

    default_root = Path(DEFAULT_GRAPHROOT)
    ok, why = _overlay_works(default_root.parent)
    if os.environ.get("CREDFS_TEST_FORCE_VFS") == "1":
        ok, why = False, "forced by CREDFS_TEST_FORCE_VFS=1"
    if ok:
        driver, graphroot, runroot = "overlay", str(default_root), DEFAULT_RUNROOT
        notes["storage"] = (f"kernel overlay probe on {default_root.parent}: {why} -> podman defaults "
                            "(overlay, native diff; fuse-overlayfs not needed), no storage flags")
    else:
        driver, graphroot, runroot = "vfs", VFS_GRAPHROOT, VFS_RUNROOT
        notes["storage"] = (f"kernel overlay probe on {default_root.parent} failed ({why}) -> vfs in a "
                            f"separate store {graphroot} via --root/--runroot/--storage-driver "
                            "(a different driver in the default store would clash with its database)")

    init = bool(shutil.which("catatonit") or os.path.exists("/usr/libexec/podman/catatonit"))
    notes["init"] = ("catatonit present -> --init (PID 1 reaps zombies of exec'd commands and "
                     "forwards signals)" if init else "no catatonit -> no --init")
    cni = os.path.isfile("/usr/lib/cni/bridge") or os.path.isfile("/opt/cni/bin/bridge")
    notes["network"] = ("always --network host (AWS CLI must reach an STS on the host loopback); "
                        f"CNI plugins {'present' if cni else 'absent'} but the bridge network is "
                        "never used: it creates cni-podman0 (10.88.0.0/16) plus iptables rules on the host")
    dev_fuse = os.path.exists("/dev/fuse")
    notes["dev_fuse"] = f"/dev/fuse {'present' if dev_fuse else 'absent'} (host side FUSE mounts)"
    rootm = next(m for m in mi if m["target"] == "/")
    rprop = propagation(rootm)
    notes["propagation"] = (f"'/' mount is {rprop}: rslave/rshared binds only receive later host "
                            "mounts if the host-side source is in a shared peer group "
                            "(make it with mount --bind X X; mount --make-shared X)")
    pv = _run(["podman", "--version"], timeout=30).stdout.strip()
    return HostProfile(rootful=rootful, systemd_pid1=systemd, cgroup_manager=cgm, cgroup_version=cgv,
                       runtime=runtime, runtime_path=rpath, events_logger=events, ulimits_inherit=inherit,
                       rlimit_hard=hard, cap_sys_resource=cap_res, storage_driver=driver,
                       graphroot=graphroot, runroot=runroot, init=init,
                       cni_plugins=cni, dev_fuse=dev_fuse, root_propagation=rprop,
                       podman_version=pv, notes=notes)


def write_config(profile: HostProfile | None = None) -> dict:
    """Write containers.conf into CONFIG_DIR; return the env additions for podman."""
    p = profile or detect_host()
    conf = ["# generated by containers.py from detect_host(); do not edit", "[containers]"]
    if p.ulimits_inherit:
        conf.append("default_ulimits = []")
    conf += ["", "[engine]", f'runtime = "{p.runtime}"', f'cgroup_manager = "{p.cgroup_manager}"',
             f'events_logger = "{p.events_logger}"', ""]
    # No storage.conf on purpose: libpod's database pins the storage settings of the
    # first podman run on the machine, and conmon runs the exit command
    # (`podman container cleanup`) with a scrubbed environment (no CONTAINERS_*), so a
    # storage.conf that differs from podman's defaults gives "database configuration
    # mismatch" in the cleanup and a 20 s hang in every `podman run --rm`.  Deviations
    # from the defaults are passed as global flags instead (see podman_base()), which
    # podman copies into the exit command.
    _atomic_write(CONFIG_DIR / "containers.conf", "\n".join(conf))
    _atomic_write(CONFIG_DIR / "host-profile.json", p.as_json() + "\n")
    return {"CONTAINERS_CONF": str(CONFIG_DIR / "containers.conf")}


_env_cache: dict | None = None


def podman_env() -> dict:
    global _env_cache
    if _env_cache is None:
        _env_cache = dict(os.environ, **write_config())
    return _env_cache


def podman_base() -> list[str]:
    """`podman` plus the global flags that detection decided (also in containers.conf;
    repeated on the command line so logged command lines are self-contained)."""
    p = detect_host()
    a = ["podman", "--runtime", p.runtime, "--cgroup-manager", p.cgroup_manager,
         "--events-backend", p.events_logger]
    if p.graphroot != DEFAULT_GRAPHROOT:
        a += ["--root", p.graphroot, "--runroot", p.runroot, "--storage-driver", p.storage_driver]
    return a


def podman(*args: str, timeout: float = 120, check: bool = True, input=None) -> subprocess.CompletedProcess:
    return _run([*podman_base(), *args], timeout=timeout, check=check, env=podman_env(), input=input)


def shell_prefix() -> str:
    """Command-line prefix to reproduce what this module runs, for a person reproducing a run."""
    e = podman_env()
    return f"CONTAINERS_CONF={e['CONTAINERS_CONF']} " + shlex.join(podman_base())


# --------------------------------------------------------------------------
# images

def _recipe_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def image_label(image: str, label: str = LABEL_RECIPE) -> str | None:
    r = podman("image", "inspect", "--format", "{{index .Config.Labels \"%s\"}}" % label, image,
               check=False, timeout=60)
    if r.returncode != 0:
        return None
    v = r.stdout.strip()
    return None if v in ("", "<no value>") else v


def _image_id(image: str) -> str | None:
    r = podman("image", "inspect", "--format", "{{.Id}}", image, check=False, timeout=60)
    return r.stdout.strip() if r.returncode == 0 else None


def _import(tarball: Path, image: str, recipe: str, changes: Sequence[str]) -> None:
    old = _image_id(image)
    args = ["import", "-q"]
    for c in [*changes, f"LABEL {LABEL_RECIPE}={recipe}"]:
        args += ["--change", c]
    new = podman(*args, str(tarball), image, timeout=900).stdout.strip().removeprefix("sha256:")
    if old and old != new:   # the previous build would stay behind as a dangling <none> image
        podman("rmi", old, check=False, timeout=120)


def _host_sources() -> str:
    f = Path("/etc/apt/sources.list.d/debian.sources")
    if f.is_file():
        return str(f)  # mmdebstrap accepts a sources file as the mirror argument
    return "deb http://deb.debian.org/debian bookworm main"


def build_awscli_rootfs(dest: Path) -> float:
    r = AWSCLI_RECIPE
    cmd = ["mmdebstrap", "--quiet", f"--variant={r['variant']}", "--include=" + ",".join(r["include"]),
           "--aptopt=Acquire::Retries \"3\""]
    cmd += [f"--dpkgopt={o}" for o in r["dpkgopt"]]
    mirrors = [_host_sources()]
    if not mirrors[0].startswith("/"):
        mirrors.append("deb http://deb.debian.org/debian-security bookworm-security main")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp.tar")
    cmd += [r["suite"], str(tmp), *mirrors]
    _log("building rootfs: " + shlex.join(cmd))
    t0 = time.monotonic()
    try:
        _run(cmd, timeout=1800)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return time.monotonic() - t0


def ensure_image(image: str = AWSCLI_IMAGE, force: bool = False) -> str:
    """Make sure the awscli image is in podman storage; build/import only what is missing.

    Rebuild rule: the image must carry label credfs-test.recipe == hash(AWSCLI_RECIPE);
    otherwise it is (re)imported from CACHE_DIR/awscli-rootfs-<h>.tar (h = hash of the
    mmdebstrap inputs only, so editing the image `changes` just re-imports), which is
    built with mmdebstrap only if it is missing or its size differs from the manifest
    next to it.  force=True rebuilds both.
    """
    recipe = _recipe_hash(AWSCLI_RECIPE)                      # image label: everything
    rootfs_recipe = _recipe_hash({k: v for k, v in AWSCLI_RECIPE.items() if k != "changes"})
    if not force and image_label(image) == recipe:
        return image
    tarball = CACHE_DIR / f"awscli-rootfs-{rootfs_recipe}.tar"   # tarball: mmdebstrap inputs only
    manifest = tarball.with_suffix(".json")
    with _flock(CACHE_DIR / ".image.lock"):
        if not force and image_label(image) == recipe:   # someone else did it meanwhile
            return image
        info = json.loads(manifest.read_text()) if manifest.exists() else {}
        if force or not tarball.exists() or info.get("size") != tarball.stat().st_size:
            secs = build_awscli_rootfs(tarball)
            info = {"rootfs_recipe": rootfs_recipe, "recipe_body": AWSCLI_RECIPE, "size": tarball.stat().st_size,
                    "build_seconds": round(secs, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            _atomic_write(manifest, json.dumps(info, indent=2) + "\n")
            for old in CACHE_DIR.glob("awscli-rootfs-*.tar"):  # drop stale recipes
                if old != tarball:
                    old.unlink(missing_ok=True)
                    old.with_suffix(".json").unlink(missing_ok=True)
        t0 = time.monotonic()
        _import(tarball, image, recipe, AWSCLI_RECIPE["changes"])
        _log(f"imported {image} in {time.monotonic() - t0:.1f}s")
    return image


# --------------------------------------------------------------------------
# containers

def _proc_starttime(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


_OWNER = f"{os.getpid()}:{_proc_starttime(os.getpid())}"
_live: dict[str, "Container"] = {}
_live_lock = threading.Lock()
_stale_done = False


def cleanup_stale() -> list[str]:
    """Remove credfs-test containers whose owning process is gone (e.g. a SIGKILLed pytest)."""
    r = podman("ps", "-a", "--filter", f"label={LABEL_OWNER}", "--format",
               "{{.Names}} {{index .Labels \"%s\"}}" % LABEL_OWNER, check=False, timeout=60)
    removed = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        name, owner = parts
        pid, _, st = owner.partition(":")
        if owner == _OWNER or (pid.isdigit() and _proc_starttime(int(pid)) == st):
            continue  # ours or owner still alive
        podman("rm", "-f", "-t", "0", name, check=False, timeout=60)
        removed.append(name)
    if removed:
        _log(f"removed stale containers: {removed}")
    return removed


@dataclasses.dataclass
class Bind:
    host: str
    container: str
    ro: bool = True
    propagation: str | None = None   # None (podman default: rprivate) | rprivate | rslave | rshared | ...

    def volume_arg(self) -> str:
        for s in (self.host, self.container):
            if ":" in s or "," in s:
                raise ValueError(f"bind path must not contain ':' or ',': {s!r}")
        opts = ["ro" if self.ro else "rw"]
        if self.propagation:
            opts.append(self.propagation)
        return f"{self.host}:{self.container}:{','.join(opts)}"


def _as_bind(b) -> Bind:
    if isinstance(b, Bind):
        return b
    return Bind(*b)


class Container:
    """A running container started by run_container().  Use as a context manager."""

    def __init__(self, name: str, image: str, cmd: list[str], proc: subprocess.Popen,
                 logdir: Path, logfile: Path):
        self.name, self.image, self.cmd = name, image, cmd
        self.proc, self.logdir, self.logfile = proc, logdir, logfile
        self.started_at = time.monotonic()
        self.start_latency: float | None = None
        self._spawned: list[subprocess.Popen] = []
        self._stopped = False

    # -- main process
    def output(self) -> str:
        """stdout+stderr of the container's main process so far."""
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_output(self, pattern: str, timeout: float = 30) -> re.Match:
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                raise ContainerError(f"{self.name} exited {self.proc.returncode} before "
                                     f"{pattern!r}; output:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise ContainerError(f"timeout waiting for {pattern!r} in {self.name}; "
                                     f"output:\n{self.output()[-4000:]}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 60) -> int:
        """Wait for the main process to exit; returns its exit code (podman run's)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ContainerError(f"{self.name} still running after {timeout}s") from None

    # -- exec
    def exec_argv(self, args: Sequence[str], env: dict | None = None, user: str | None = None,
                  workdir: str | None = None, interactive: bool = False) -> list[str]:
        a = [*podman_base(), "exec"]
        if interactive:
            a.append("-i")
        for k, v in (env or {}).items():
            a += ["--env", f"{k}={v}"]
        if user:
            a += ["--user", user]
        if workdir:
            a += ["--workdir", workdir]
        return [*a, self.name, *args]

    def exec(self, args: Sequence[str], *, timeout: float = 60, check: bool = True,
             env: dict | None = None, user: str | None = None, input: str | None = None,
             workdir: str | None = None) -> subprocess.CompletedProcess:
        """Run a command in the container, wait for it, return CompletedProcess (text).

        On timeout the podman-exec client is killed and ContainerError raised; the
        process inside the container may keep running until the container stops
        (podman does not propagate the client's death), so prefer commands that end,
        or prefix `timeout N` inside the image.
        """
        argv = self.exec_argv(args, env, user, workdir, interactive=input is not None)
        return _run(argv, timeout=timeout, check=check, env=podman_env(), input=input)

    def spawn(self, args: Sequence[str], *, env: dict | None = None,
              stdout=subprocess.PIPE) -> subprocess.Popen:
        """Start `podman exec` in the background (text, line-buffered stdout+stderr).

        The Popen is killed at stop(); the in-container process dies with the container.
        """
        p = subprocess.Popen(self.exec_argv(args, env), stdout=stdout, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, text=True, bufsize=1, env=podman_env(),
                             start_new_session=True)
        self._spawned.append(p)
        return p

    # -- lifecycle
    def stop(self, timeout: float = 30) -> None:
        """Kill and remove the container (idempotent, never raises for an already-gone one)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.proc.poll() is None or _container_exists(self.name):
                _run([*podman_base(), "rm", "-f", "-t", "0", self.name], timeout=timeout,
                     check=False, env=podman_env())
        finally:
            for p in [*self._spawned, self.proc]:
                if p.poll() is None:
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(p.pid, signal.SIGKILL)
                        p.wait(5)
                for s in (p.stdout,):
                    if s:
                        s.close()
            with _live_lock:
                _live.pop(self.name, None)
            shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Container {self.name} {self.image} {'running' if self.running() else 'exited'}>"


def _container_exists(name: str) -> bool:
    return _run([*podman_base(), "container", "exists", name], check=False, timeout=30,
                env=podman_env()).returncode == 0


def _container_status(name: str) -> str | None:
    r = _run([*podman_base(), "container", "inspect", "--format", "{{.State.Status}}", name],
             check=False, timeout=30, env=podman_env())
    return r.stdout.strip() if r.returncode == 0 else None


def run_argv(image: str, args: Sequence[str] | None = None, binds: Iterable = (),
             env: dict | None = None, network: str = "host", name: str | None = None,
             user: str | None = None, workdir: str | None = None, init: bool | None = None,
             max_lifetime: int = DEFAULT_MAX_LIFETIME, extra_args: Sequence[str] = ()) -> list[str]:
    if network not in ("host", "none"):
        # bridge would create cni-podman0 + iptables rules on the host; see the module's docstring
        raise ValueError("network must be 'host' or 'none'")
    p = detect_host()
    a = [*podman_base(), "run", "--rm", "--pull", "never", "--name", name or "x",
         "--label", f"{LABEL_OWNER}={_OWNER}", "--network", network,
         "--timeout", str(int(max_lifetime)), "--log-driver", "none"]
    if init if init is not None else p.init:
        a.append("--init")
    for b in binds:
        a += ["-v", _as_bind(b).volume_arg()]
    for k, v in (env or {}).items():
        a += ["--env", f"{k}={v}"]
    if user:
        a += ["--user", user]
    if workdir:
        a += ["--workdir", workdir]
    a += [*extra_args, image, *(args or ["sleep", "infinity"])]
    return a


def run_container(image: str, args: Sequence[str] | None = None, binds: Iterable = (),
                  env: dict | None = None, network: str = "host", *, name: str | None = None,
                  user: str | None = None, workdir: str | None = None, init: bool | None = None,
                  max_lifetime: int = DEFAULT_MAX_LIFETIME, start_timeout: float = 60,
                  extra_args: Sequence[str] = ()) -> Container:
    """Start a container (attached `podman run --rm`) and wait until it is running.

    args: main command (default `sleep infinity`, so the handle is used via exec()).
    binds: (host, container[, ro=True[, propagation]]) tuples or Bind objects.
    The main process' output goes to a private log file (see Container.output()),
    so it survives --rm.  The container is removed by stop()/__exit__, at interpreter
    exit (atexit), by cleanup_stale() in a later process if this one was SIGKILLed,
    and in the worst case by podman itself after max_lifetime seconds (--timeout).
    """
    global _stale_done
    if not _stale_done:
        _stale_done = True
        cleanup_stale()
    name = name or f"credfs-test-{uuid.uuid4().hex[:10]}"
    argv = run_argv(image, args, binds, env, network, name, user, workdir, init, max_lifetime, extra_args)
    logdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    logfile = logdir / "main.log"
    t0 = time.monotonic()
    lf = open(logfile, "wb")
    proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=podman_env(), start_new_session=True)
    lf.close()
    c = Container(name, image, argv, proc, logdir, logfile)
    with _live_lock:
        _live[name] = c
    try:
        deadline = t0 + start_timeout
        while True:
            if proc.poll() is not None:
                # main process may legitimately be short-lived: then it ran.
                # 125: podman error, 126: cannot invoke (OCI error), 127: not found
                # with --init, catatonit reports an unstartable command as exit 1
                if (proc.returncode not in (125, 126, 127)
                        and "failed to exec pid1" not in c.output()):
                    c.start_latency = time.monotonic() - t0
                    break
                raise ContainerError(f"podman run failed ({proc.returncode}): {shlex.join(argv)}\n"
                                     f"{c.output()[-4000:]}")
            st = _container_status(name)
            if st == "running":
                c.start_latency = time.monotonic() - t0
                break
            if st in ("exited", "stopped"):   # already over: let podman run report how
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(20)
                continue
            if time.monotonic() > deadline:
                raise ContainerError(f"{name} not running after {start_timeout}s (status {st}); "
                                     f"{c.output()[-4000:]}")
            time.sleep(0.03)
    except BaseException:
        c.stop()
        raise
    return c


def install_sigterm_cleanup() -> None:
    """Turn SIGTERM into SystemExit so atexit cleanup runs (call once, e.g. in conftest.py).

    SIGKILL cannot be handled: then the next process' cleanup_stale() and, at the
    latest, podman's --timeout (max_lifetime) remove the containers.
    """
    def _h(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _h)


@atexit.register
def _cleanup_all() -> None:
    with _live_lock:
        live = list(_live.values())
    for c in live:
        with contextlib.suppress(Exception):
            c.stop()
