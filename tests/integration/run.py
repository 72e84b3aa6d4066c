"""Runs the integration tests: one line per test and a closing
"N passed, N failed" line.

usage: run.py [-j N] [PATTERN...]
  PATTERN   substring of a test id: run only those
  -j N      run N test modules at once (default: CREDFS_TEST_JOBS or 3);
            a module that sets SERIAL = True runs alone, after the others.

Each module runs in a process of its own (python run.py --module NAME),
so its servers, mounts and threads end with it; its lines are printed
whole when it is done."""
import importlib
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# Modules that take longest start first, so the others fill in around them.
SLOW_FIRST = ["test_promises", "test_faults", "test_caching", "test_clients",
              "test_soak", "test_tpm", "test_daemon", "test_exchange"]


class LineResult(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.time()
        super().startTest(test)

    def _line(self, word, test):
        self.stream.write("%-4s %s (%.1fs)\n" % (word, test.id(), time.time() - self._t0))
        self.stream.flush()

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line("ok", test)

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line("FAIL", test)
        self.stream.write(self._exc_info_to_string(err, test))

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line("FAIL", test)
        self.stream.write(self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line("skip", test)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def selected(module, patterns):
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    return [t for t in flatten(suite) if not patterns or any(p in t.id() for p in patterns)]


def run_module(module, patterns):
    """In the child: runs the selected tests of module."""
    suite = unittest.TestSuite(selected(module, patterns))
    runner = unittest.TextTestRunner(stream=sys.stdout, resultclass=LineResult, verbosity=0)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed - len(result.skipped), failed))
    return 1 if failed else 0


def modules():
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith("test_") and f.endswith(".py"))
    return sorted(names, key=lambda n: SLOW_FIRST.index(n) if n in SLOW_FIRST else 99)


def start(module, patterns):
    out = open(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            "credfs-run-%s-%d.log" % (module, os.getpid())), "w+")
    p = subprocess.Popen([sys.executable, __file__, "--module", module] + patterns,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    CHILDREN.append(p)
    return p, out


def finish(p, out, totals):
    out.seek(0)
    text = out.read()
    out.close()
    os.unlink(out.name)
    lines = text.splitlines()
    tail = [l for l in lines if l.endswith(" failed") and " passed, " in l]
    body = [l for l in lines if l not in tail[-1:]]
    sys.stdout.write("\n".join(body) + ("\n" if body else ""))
    sys.stdout.flush()
    if tail:
        n_pass, n_fail = tail[-1].split(" passed, ")
        totals[0] += int(n_pass)
        totals[1] += int(n_fail.split()[0])
    if p.returncode != 0 and not (tail and int(tail[-1].split(" passed, ")[1].split()[0])):
        # A module that died without saying so counts as a failure.
        print("FAIL %s exited %d" % (out.name, p.returncode))
        totals[1] += 1


CHILDREN = []


def stop_children(signum=None, frame=None):
    """Nothing a run starts may outlive it: each module's process group is
    killed (its mounts are then unmounted by the kernel or by the sweep of
    scripts/test)."""
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
    if signum is not None:
        sys.exit(128 + signum)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--module"]:
        return run_module(args[1], args[2:])
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    jobs = int(os.environ.get("CREDFS_TEST_JOBS", "3"))
    if args[:1] == ["-j"]:
        jobs, args = int(args[1]), args[2:]
    patterns = args
    todo, serial = [], []
    for name in modules():
        if not selected(name, patterns):
            continue
        (serial if getattr(importlib.import_module(name), "SERIAL", False) else todo).append(name)
    totals = [0, 0]
    running = []
    while todo or running:
        while todo and len(running) < jobs:
            running.append(start(todo.pop(0), patterns))
        time.sleep(0.2)
        for item in list(running):
            if item[0].poll() is not None:
                running.remove(item)
                finish(item[0], item[1], totals)
    for name in serial:
        p, out = start(name, patterns)
        p.wait()
        finish(p, out, totals)
    print("%d passed, %d failed" % tuple(totals))
    return 1 if totals[1] or not sum(totals) else 0


if __name__ == "__main__":
    sys.exit(main())
