"""The wall clock stepped forward past the credentials' expiry (a host that
booted with a wrong clock, then NTP): the kernel's own cache timeouts count
jiffies and know nothing of the wall clock, so credfs must notice the step
and drop every cached copy, and serve only credentials valid by the new
time.  The machine's clock is really set (and put back): this module runs
alone, after every other one (SERIAL)."""
import ctypes
import time

from harness import CredfsTestCase, parse_credentials, rfc3339

SERIAL = True
STEP = 2 * 3600


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc = ctypes.CDLL(None, use_errno=True)
CLOCK_REALTIME = 0


def step_clock(seconds):
    """Moves CLOCK_REALTIME by seconds; OSError if the system refuses."""
    ts = timespec()
    libc.clock_gettime(CLOCK_REALTIME, ctypes.byref(ts))
    ts.tv_sec += seconds
    if libc.clock_settime(CLOCK_REALTIME, ctypes.byref(ts)):
        e = ctypes.get_errno()
        raise OSError(e, "clock_settime")


class TestWallClockStep(CredfsTestCase):
    def test_a_forward_step_past_expiry_serves_only_valid_credentials(self):
        m = self.mount()
        first = parse_credentials(m.read("app", "credentials"))["aws_access_key_id"]
        expires = rfc3339(m.read("app", "expiry"))
        self.assertGreater(expires, time.time() + 600)
        t_mono = time.monotonic()
        step_clock(STEP)
        try:
            # Within a moment of the step nothing of the old credentials is
            # served: every read is of credentials valid by the new clock.
            deadline = time.monotonic() + 5
            seen = set()
            while time.monotonic() < deadline:
                text = m.read("app", "credentials")
                exp = rfc3339(m.read("app", "expiry"))
                key = parse_credentials(text)["aws_access_key_id"]
                seen.add(key)
                if time.monotonic() - t_mono > 2:
                    self.assertNotEqual(key, first, "expired credentials served after the step")
                    self.assertGreater(exp, time.time(), "expiry in the past")
                time.sleep(0.1)
            self.assertGreater(len(seen - {first}), 0, "never renewed after the step")
            self.assertIn("the wall clock was set", m.output())
        finally:
            step_clock(-STEP)
