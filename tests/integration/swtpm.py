"""A software TPM 2.0 for the tests: swtpm (Debian package swtpm) on two
loopback ports, its state in a directory of the caller's.

The server port speaks raw TPM commands; the control port is the next one,
as the swtpm TCTI of the TSS expects, so credfs reaches it with
TPM2OPENSSL_TCTI=swtpm:host=127.0.0.1,port=PORT (the `tcti` property).
swtpm serves one client at a time and has no resource manager: what a
client loads stays in the TPM's few transient slots until it is flushed,
which transient_handles() lets a test watch.

stop() always ends the process (SIGTERM, then SIGKILL); restart() starts
the same TPM again, state and ports kept, so keys it made load again."""
import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time

SWTPM = shutil.which("swtpm") or "/usr/bin/swtpm"

TPM_ST_NO_SESSIONS = 0x8001
TPM_CC_GET_CAPABILITY = 0x0000017A
TPM_CC_GET_RANDOM = 0x0000017B
TPM_CAP_HANDLES = 0x00000001
TRANSIENT_FIRST = 0x80000000
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so a
    test run that is itself killed leaves no swtpm behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port_pair():
    """A port p such that p and p + 1 are both free on 127.0.0.1, below the
    ephemeral range: restart() must find them free again after swtpm was
    stopped, so no port another test binds to 0 (or a client's own end of a
    connection) may take them meanwhile."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = map(int, f.read().split())
    span = (10000, low - 2) if low > 12000 else (high + 1, 65534)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(100):
        port = rng.randrange(*span)
        a, b = socket.socket(), socket.socket()
        try:
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            a.close()
            b.close()
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


class Swtpm:
    def __init__(self, state_dir):
        if not os.path.exists(SWTPM):
            raise RuntimeError("swtpm is not installed (Debian package swtpm; scripts/setup "
                               "installs it)")
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self.port = free_port_pair()
        self.proc = None
        self.log_path = os.path.join(state_dir, "swtpm.log")

    @property
    def tcti(self):
        return "swtpm:host=127.0.0.1,port=%d" % self.port

    def start(self, timeout=10):
        """Starts swtpm and waits until it answers a TPM command."""
        self.proc = subprocess.Popen(
            [SWTPM, "socket", "--tpm2",
             "--tpmstate", "dir=%s" % self.state_dir,
             "--server", "type=tcp,port=%d,bindaddr=127.0.0.1" % self.port,
             "--ctrl", "type=tcp,port=%d,bindaddr=127.0.0.1" % (self.port + 1),
             "--flags", "not-need-init,startup-clear",
             "--log", "file=%s" % self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError("swtpm exited at start; see %s" % self.log_path)
            try:
                self.get_random(8)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("swtpm did not answer within %d s" % timeout)

    def stop(self):
        """Ends swtpm, whatever state it is in.  Idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None

    def restart(self, timeout=10):
        self.stop()
        # The ports were just released: let the listening sockets go.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.start(timeout)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- raw TPM commands (no TSS needed) --------------------------------

    def command(self, cc, body, timeout=5):
        """Sends one TPM command; returns (response code, response body)."""
        cmd = struct.pack(">HII", TPM_ST_NO_SESSIONS, 10 + len(body), cc) + body
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(cmd)
            head = b""
            while len(head) < 10:
                chunk = s.recv(10 - len(head))
                if not chunk:
                    raise OSError("swtpm closed the connection")
                head += chunk
            _, size, rc = struct.unpack(">HII", head)
            rest = b""
            while len(rest) < size - 10:
                chunk = s.recv(size - 10 - len(rest))
                if not chunk:
                    raise OSError("swtpm closed the connection")
                rest += chunk
        return rc, rest

    def get_random(self, n):
        rc, body = self.command(TPM_CC_GET_RANDOM, struct.pack(">H", n))
        if rc:
            raise OSError("TPM2_GetRandom failed: 0x%x" % rc)
        return body[2:]

    def transient_handles(self):
        """The handles of the objects loaded in the TPM's transient slots."""
        rc, body = self.command(TPM_CC_GET_CAPABILITY,
                                struct.pack(">III", TPM_CAP_HANDLES, TRANSIENT_FIRST, 64))
        if rc:
            raise OSError("TPM2_GetCapability failed: 0x%x" % rc)
        # moreData (1), capability (4), count (4), handles (4 each)
        count = struct.unpack(">I", body[5:9])[0]
        return list(struct.unpack(">%dI" % count, body[9:9 + 4 * count]))
