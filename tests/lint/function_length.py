"""Every function in backend/, fs/, daemon/ and endpoint/ fits in about 80
lines, or says why it does not: a comment containing "long:" in the 5 lines
above it.  One check per source file; prints the long ones, then the line
"N passed, N failed" like every runner here."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIRS = ("backend", "fs", "daemon", "endpoint")
LIMIT = 80


def long_functions(path):
    """A body is a "{" alone at column 0 after a line ending in ")" (the
    signature), up to the next "}" alone at column 0."""
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
    found = []
    i = 1
    while i < len(lines):
        if lines[i] == "{" and lines[i - 1].rstrip().endswith(")"):
            head = i - 1
            while head > 0 and not re.match(r"[A-Za-z_]", lines[head]):
                head -= 1     # the signature's first line
            if head > 0 and re.match(r"[A-Za-z_]", lines[head - 1]) and "(" not in lines[head - 1]:
                head -= 1     # the return type on its own line
            j = i + 1
            while j < len(lines) and lines[j] != "}":
                j += 1
            body = j - i + 1
            above = "\n".join(lines[max(0, head - 6):head])
            if body > LIMIT and "long:" not in above:
                name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[head] + lines[head + 1])
                found.append("%s:%d: %s is %d lines" % (os.path.relpath(path, ROOT), head + 1,
                                                        name.group(1) if name else "?", body))
            i = j
        i += 1
    return found


def main():
    passed = failed = 0
    for d in DIRS:
        base = os.path.join(ROOT, d)
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            if not name.endswith(".c"):
                continue
            found = long_functions(os.path.join(base, name))
            if found:
                failed += 1
                print("FAIL " + "\nFAIL ".join(found))
            else:
                passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
