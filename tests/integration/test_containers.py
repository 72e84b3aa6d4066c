"""credfs under a real container: podman (runc) runs an image built here
from a Debian root filesystem with the AWS CLI in it.  The container gets a
role directory as its ~/.aws, the whole mount as /credfs and one credentials
file on its own, as `docker -v` and a Kubernetes hostPath give them.  A loop
inside the container reads all three the whole time, with reads that reach
the daemon (status, roles never read before, listings), while the host kills
the serving process, reloads and hands the mount to another credfs binary.
The loop counts every failed read and the longest pause; afterwards the AWS
CLI inside the container still gets its identity from the mounted files."""
import json
import os
import re
import signal
import time

import containers as C
from harness import ARN, is_mounted, wait_for, write_config
from test_lifecycle import LifecycleCase, kill_worker, other_build, takeover

SERIAL = True   # the longest pause is only meaningful on a quiet machine

C.install_sigterm_cleanup()

# Inside the container: reads with bash builtins only (no fork per read),
# timed with $EPOCHREALTIME.  Every failure is a line "ERR <what> <path>";
# on /ctl/stop it prints "DONE <reads> <failures> <longest microseconds>".
READER = r'''
now() { local t=$EPOCHREALTIME; echo $(( ${t/./} )); }
reads=0 fails=0 longest=0
check() {   # check PATH WORD: the file opens, reads whole and holds WORD
	local path=$1 word=$2 t0 t1 lines
	t0=$(now)
	if ! mapfile lines < "$path"; then
		echo "ERR open $path"; fails=$((fails + 1))
	elif [[ "${lines[*]}" != *"$word"* ]]; then
		echo "ERR content $path"; fails=$((fails + 1))
	fi
	t1=$(now)
	reads=$((reads + 1))
	(( t1 - t0 > longest )) && longest=$((t1 - t0))
}
listing() {
	local t0 t1 names
	t0=$(now)
	names=(/credfs/*/)
	[ ${#names[@]} -ge 2 ] || { echo "ERR listing /credfs"; fails=$((fails + 1)); }
	t1=$(now)
	reads=$((reads + 1))
	(( t1 - t0 > longest )) && longest=$((t1 - t0))
}
echo READY
i=0
while [ ! -e /ctl/stop ]; do
	check /root/.aws/credentials aws_session_token
	check /root/.aws/config region
	check /root/.aws/status '"state"'
	check /credentials-file aws_session_token
	listing
	# one role never read before, every tenth turn
	if (( i % 10 == 0 )) && [ -e /credfs/r$((10 + i / 10))/credentials ]; then
		check /credfs/r$((10 + i / 10))/credentials aws_session_token
	fi
	i=$((i + 1))
	sleep 0.02
done
echo "DONE $reads $fails $longest"
exec sleep infinity   # the container stays for the AWS CLI
'''


class TestContainer(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        C.ensure_tools()
        cls.image = C.ensure_image()

    def roles(self, n):
        return {"r%02d" % i: "subject = s%d\n" % i for i in range(n)}

    def container(self, m, ctl):
        binds = [(m.path("r00"), "/root/.aws", True),
                 (m.mnt, "/credfs", True),
                 (m.path("r01", "credentials"), "/credentials-file", True),
                 (ctl, "/ctl", False)]
        c = C.run_container(self.image, ["bash", "-c", READER], binds=binds)
        self.before_unmount(c.stop)   # a container holds the mount
        return c

    def identity(self, c):
        r = c.exec(["timeout", "60", "aws", "sts", "get-caller-identity", "--output", "json",
                    "--endpoint-url", self.moto.url], check=False, timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_a_container_reads_through_kills_a_reload_and_a_takeover(self):
        other = other_build()
        roles = self.roles(40)
        m = self.start(roles)
        ctl = os.path.join(self.dir, "ctl")
        os.mkdir(ctl)
        c = self.container(m, ctl)
        c.wait_for_output(r"^READY$", 30)
        self.assertEqual(self.identity(c)["Arn"], ARN % ("r00", "credfs-r00"))
        time.sleep(1)
        for _ in range(5):
            kill_worker(self, m.proc)
            time.sleep(1.2)
        # A reload that adds a role: the container's listing shows it.
        grown = dict(roles, added="subject = added\n")
        write_config(m.config, self.config_text(roles=grown, defaults="wait_timeout = 5\n"))
        m.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "added" in c.exec(["ls", "/credfs"]).stdout, 10),
                        "the container never saw the reloaded tree")
        time.sleep(1)
        # The upgrade: another credfs binary takes the mount over.
        p = takeover(self, m, exe=other)
        self.assertEqual(m.proc.wait(15), 0, "the old credfs did not hand over and exit")
        time.sleep(1.5)
        kill_worker(self, p)
        time.sleep(1.5)
        open(os.path.join(ctl, "stop"), "w").close()
        done = c.wait_for_output(r"^DONE (\d+) (\d+) (\d+)$", 30)
        reads, fails, longest_us = map(int, done.groups())
        errors = re.findall(r"^ERR .*$", c.output(), re.M)
        print("container: %d reads across 6 kills, a reload and a takeover, "
              "%d failed, longest %.1f ms" % (reads, fails, longest_us / 1000), flush=True)
        self.assertEqual((fails, errors), (0, []), "reads failed inside the container")
        self.assertGreater(reads, 300)
        self.assertLess(longest_us, 1_000_000, "a read was blocked for over a second")
        self.assertNotIn("not connected", c.output())
        # The AWS CLI in the container still gets its identity, from the
        # files the new credfs serves.
        self.assertEqual(self.identity(c)["Arn"], ARN % ("r00", "credfs-r00"))
        self.assertTrue(is_mounted(m.mnt))
        self.assertRegex(m.output(), r"handed .* over to credfs \S+-other")
