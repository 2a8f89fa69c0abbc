#!/usr/bin/env python3
# tests/count-results.py - count the results in a meson testlog.json:
# prints "PASSED FAILED SKIPPED" on stdout and names each skipped test on
# stderr.  A skipped test is counted as skipped, never as passed; an
# expected failure that failed is a pass, anything else not OK a failure.
# usage: count-results.py TESTLOG.JSON
import json
import sys

passed = failed = skipped = 0
with open(sys.argv[1]) as log:
    for line in log:
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
            print("run-all: skipped: " + json.loads(line)["name"],
                  file=sys.stderr)
        else:
            failed += 1
print(passed, failed, skipped)
