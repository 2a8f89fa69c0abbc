#!/usr/bin/env python3
"""tests/check-per-case.py - a failing behaviour is one meson test name.

usage: check-per-case.py BUILD-DIR

Reads the build's registered tests (BUILD-DIR/meson-info/intro-tests.json)
and, for every one that runs a bash script of the source tree, fails when

  - the script has several cases of the harness (tests/lib/servers.sh:
    more than one run_case, or run_case_as, which runs the rows of a
    table) and the test runs them all: no TEST_CASE in its environment;
  - the script keeps its own tally of several results (FAILED=() or
    FAILED+=...) instead of the harness's cases.

WHOLE_RUNS names the tests that run a whole script on purpose.
"""
import json
import os
import re
import sys

# the whole script once more under valgrind memcheck (the same cases are
# also registered one per test without it)
WHOLE_RUNS = re.compile(r"^valgrind-")

CASE_CALL = re.compile(r"^\s*run_case(_as)?\s", re.M)
OWN_TALLY = re.compile(r"^\s*FAILED(=\(\)|\+=)", re.M)


def script_of(cmd):
    """The bash script a test command runs, or None."""
    for arg in cmd[1:]:
        if arg.endswith(".sh") and os.path.isfile(arg):
            return arg
    return None


def problems(test):
    script = script_of(test["cmd"])
    if script is None or WHOLE_RUNS.search(test["name"]):
        return []
    text = open(script, encoding="utf-8").read()
    calls = CASE_CALL.findall(text)
    found = []
    if "TEST_CASE" not in (test.get("env") or {}) and (
            len(calls) > 1 or "_as" in calls):
        found.append(f"runs every case of {script} as one test "
                     "(register one per `--list` name with TEST_CASE)")
    if OWN_TALLY.search(text):
        found.append(f"{script} keeps its own tally of results instead of "
                     "the harness's cases (run_case)")
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check-per-case.py BUILD-DIR")
    path = os.path.join(sys.argv[1], "meson-info", "intro-tests.json")
    tests = json.load(open(path, encoding="utf-8"))
    bad = 0
    for test in tests:
        for why in problems(test):
            print(f"{test['name']}: {why}", file=sys.stderr)
            bad += 1
    print(f"check-per-case.py: {len(tests)} tests, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
