#!/usr/bin/env python3
# tests/check/verdicts.py - asserts what nbdaio-check --json reported.
#
#   verdicts.py FILE RC [--fail IDS] [--warn IDS] [--any-fail]
#               [--expect ID=VERDICT ...] [--violation TAG] [--detail ID=TEXT]
#               [--detail-any-fail REGEX]
#
# FILE is the JSON output, RC the exit status nbdaio-check returned.  The
# report must be well formed (every result with id, verdict, rule, detail,
# violation; ids unique; the summary counting them) and RC must be 1 when
# some probe failed, else 0.  --fail / --warn (comma lists, may be empty)
# give the exact set of FAIL / WARN ids (--any-fail: do not check the FAIL
# set); --expect pins single verdicts; --violation TAG needs a FAIL naming
# TAG in its violation field; --detail ID=TEXT needs TEXT in ID's detail;
# --detail-any-fail needs a FAIL whose detail matches REGEX.
#
# Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("file")
ap.add_argument("rc", type=int)
ap.add_argument("--fail")
ap.add_argument("--warn")
ap.add_argument("--any-fail", action="store_true")
ap.add_argument("--expect", action="append", default=[])
ap.add_argument("--violation")
ap.add_argument("--detail", action="append", default=[])
ap.add_argument("--detail-any-fail")
a = ap.parse_args()

bad = []
try:
    d = json.load(open(a.file))
except ValueError as e:
    print(f"verdicts: {a.file}: invalid JSON: {e}", file=sys.stderr)
    sys.exit(1)

res = d.get("results", [])
by_id = {}
for r in res:
    for k in ("id", "verdict", "rule", "detail", "violation"):
        if k not in r:
            bad.append(f"result {r!r} lacks '{k}'")
    if r.get("verdict") not in ("PASS", "FAIL", "WARN", "SKIP"):
        bad.append(f"{r.get('id')}: bad verdict {r.get('verdict')!r}")
    if r.get("id") in by_id:
        bad.append(f"{r['id']}: reported twice")
    by_id[r.get("id")] = r
count = {v: sum(1 for r in res if r["verdict"] == v)
         for v in ("PASS", "FAIL", "WARN", "SKIP")}
s = d.get("summary", {})
want = {"passed": count["PASS"], "failed": count["FAIL"],
        "warnings": count["WARN"], "skipped": count["SKIP"]}
if s != want:
    bad.append(f"summary {s} does not count the results {want}")
if "server" not in d:
    bad.append("no 'server' object")
if a.rc != (1 if count["FAIL"] else 0):
    bad.append(f"exit status {a.rc} with {count['FAIL']} FAIL(s)")


def ids(verdict):
    return {r["id"] for r in res if r["verdict"] == verdict}


def listed(s):
    return {x for x in s.split(",") if x} if s is not None else None


for verdict, given in (("FAIL", None if a.any_fail else a.fail),
                       ("WARN", a.warn)):
    want = listed(given)
    if want is None:
        continue
    got = ids(verdict)
    if got != want:
        extra = ", ".join(sorted(got - want)) or "-"
        missing = ", ".join(sorted(want - got)) or "-"
        bad.append(f"{verdict}s: unexpected {extra}; missing {missing}")
for e in a.expect:
    pid, _, v = e.partition("=")
    if pid not in by_id:
        bad.append(f"{pid}: not reported")
    elif by_id[pid]["verdict"] != v:
        bad.append(f"{pid}: {by_id[pid]['verdict']} ({by_id[pid]['detail']}),"
                   f" expected {v}")
for e in a.detail:
    pid, _, text = e.partition("=")
    if pid not in by_id or text not in by_id[pid]["detail"]:
        bad.append(f"{pid}: detail lacks {text!r}: "
                   f"{by_id.get(pid, {}).get('detail')!r}")
if a.detail_any_fail:
    import re
    if not any(r["verdict"] == "FAIL" and re.search(a.detail_any_fail,
                                                     r["detail"])
               for r in res):
        bad.append(f"no FAIL detail matches /{a.detail_any_fail}/")
if a.violation:
    if not any(r["verdict"] == "FAIL" and r["violation"] and
               a.violation in r["violation"].split(", ") for r in res):
        bad.append(f"no FAIL names the violation [{a.violation}]")

if bad:
    for b in bad:
        print(f"verdicts: {b}", file=sys.stderr)
    for r in res:
        if r["verdict"] in ("FAIL", "WARN"):
            print(f"  | {r['verdict']} {r['id']}: {r['detail']}"
                  + (f" [{r['violation']}]" if r["violation"] else ""),
                  file=sys.stderr)
    sys.exit(1)
sys.exit(0)
