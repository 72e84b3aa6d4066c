# Shared by the scripts: finding the Python that carries boto3 and moto.

# Prints the path of a python3 that can import boto3 and moto (the machine's
# pyenv Python), or fails.
find_test_python() {
	local c
	for c in python3 "$HOME/.pyenv/shims/python3" /root/.pyenv/shims/python3; do
		if command -v "$c" >/dev/null 2>&1 &&
			"$c" -c 'import boto3, moto' >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	echo "no python3 with boto3 and moto found (the machine's pyenv Python has them)" >&2
	return 1
}

# Puts the directory of that Python's scripts (moto_server) on PATH.
use_test_python() {
	TEST_PYTHON=$(find_test_python)
	local bindir
	bindir=$("$TEST_PYTHON" -c 'import sys, os; print(os.path.dirname(sys.executable))')
	export PATH="$bindir:$HOME/.pyenv/shims:$PATH"
}
