"""The npm packages the integration tests drive (tests/integration/js),
installed from package-lock.json with `npm ci` when any dependency of
package.json is missing.  Test modules run in parallel and several drive
npm packages, so the check and the install hold a lock and look at every
dependency: the first module installs them all, the others wait and then find
everything in place (and never see node_modules replaced under them)."""
import fcntl
import json
import os
import subprocess

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def ensure():
    """Installs the locked packages unless every dependency is there.  A
    missing registry fails the caller's tests, it does not skip them."""
    with open(os.path.join(JS_DIR, "package.json")) as f:
        wanted = list(json.load(f)["dependencies"])
    with open(os.path.join(JS_DIR, "package-lock.json")) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.isfile(os.path.join(JS_DIR, "node_modules", p, "package.json"))
               for p in wanted):
            return
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=JS_DIR, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("npm ci in %s failed:\n%s" % (JS_DIR, r.stderr[-2000:]))
