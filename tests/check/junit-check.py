#!/usr/bin/env python3
# tests/check/junit-check.py - asserts that nbdaio-check --junit FILE wrote
# valid JUnit XML that says what the human report of the same run says.
#
#   junit-check.py XML REPORT [--text ID=TEXT ...]
#
# XML is the --junit file, REPORT the human report printed by that run.
# The XML must parse; the testsuites/testsuite counts must equal the
# testcases present and the report's summary line (tests = all verdicts,
# failures = failed, skipped = skipped, errors 0); there is one testcase
# per report line, in order, classname the id's group (before the first
# '.'), name the id; a FAIL has <failure message=...>, a SKIP <skipped
# message=...>, a PASS or WARN neither but <system-out> "VERDICT: ...";
# the message or output text (once XML-unescaped) is the report line's
# text.  --text ID=TEXT needs TEXT in ID's message.
#
# Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
import argparse
import re
import sys
import xml.etree.ElementTree as ET

ap = argparse.ArgumentParser()
ap.add_argument("xml")
ap.add_argument("report")
ap.add_argument("--text", action="append", default=[])
a = ap.parse_args()

bad = []
try:
    root = ET.parse(a.xml).getroot()
except ET.ParseError as e:
    print(f"junit-check: {a.xml}: not well-formed XML: {e}", file=sys.stderr)
    sys.exit(1)

lines, summary = [], None
for line in open(a.report, encoding="utf-8"):
    m = re.match(r"^(PASS|FAIL|WARN|SKIP)  (\S+) +(.*)$", line.rstrip("\n"))
    if m:
        lines.append(m.groups())
    m = re.match(r"^summary: (\d+) passed, (\d+) failed, (\d+) warnings, "
                 r"(\d+) skipped$", line.rstrip("\n"))
    if m:
        summary = [int(x) for x in m.groups()]
if summary is None:
    bad.append("no summary line in the report")
    summary = [0, 0, 0, 0]
total = sum(summary)

suites = root.findall("testsuite")
if root.tag != "testsuites" or len(suites) != 1:
    bad.append(f"root <{root.tag}> with {len(suites)} <testsuite>")
cases = root.findall("./testsuite/testcase")
for el in [root] + suites:
    want = {"tests": total, "failures": summary[1], "errors": 0,
            "skipped": summary[3]}
    got = {k: int(el.get(k, "-1")) for k in want}
    if got != want:
        bad.append(f"<{el.tag}> counts {got}, the report says {want}")
if len(cases) != total or len(lines) != total:
    bad.append(f"{len(cases)} testcases, {len(lines)} report lines, "
               f"summary total {total}")

texts = {}
for case, (verdict, pid, text) in zip(cases, lines):
    if case.get("name") != pid or case.get("classname") != pid.split(".")[0]:
        bad.append(f"testcase {case.attrib} for report line {pid}")
        continue
    fail, skip = case.find("failure"), case.find("skipped")
    out = case.find("system-out")
    if verdict == "FAIL" and (fail is None or skip is not None):
        bad.append(f"{pid}: FAIL without <failure>")
    elif verdict == "SKIP" and (skip is None or fail is not None):
        bad.append(f"{pid}: SKIP without <skipped>")
    elif verdict in ("PASS", "WARN") and (fail is not None or
                                          skip is not None or out is None):
        bad.append(f"{pid}: {verdict} with failure/skipped or no output")
    if fail is not None or skip is not None:
        msg = (fail if fail is not None else skip).get("message")
    else:
        msg = out.text if out is not None else ""
        prefix = verdict + ": "
        if not msg.startswith(prefix):
            bad.append(f"{pid}: output does not start with {prefix!r}")
        msg = msg[len(prefix):]
    texts[pid] = msg
    if msg != text:
        bad.append(f"{pid}: JUnit text {msg!r} differs from the report's "
                   f"{text!r}")

for t in a.text:
    pid, _, want = t.partition("=")
    if want not in texts.get(pid, ""):
        bad.append(f"{pid}: {want!r} not in {texts.get(pid)!r}")

if bad:
    for b in bad:
        print(f"junit-check: {a.xml}: {b}", file=sys.stderr)
    sys.exit(1)
print(f"junit-check: {len(cases)} testcases ({summary[0]} passed, "
      f"{summary[1]} failed, {summary[2]} warnings, {summary[3]} skipped) "
      f"match the report")
