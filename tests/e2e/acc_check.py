#!/usr/bin/env python3
"""Compare `heaptrace leaks --json` (stdin) with expected leaks by site.

Usage: acc_check.py FUNC=BYTES:OBJECTS ... [--min FUNC=BYTES:OBJECTS]
BYTES may be '+N' for "at least N" (sizes the C library chooses, asprintf).
Every expected function must appear with exactly those figures (summed over
its stacks); other sites are ignored. Exits 1 with one line per mismatch.
"""
import json
import sys

data = json.load(sys.stdin)
by = {}
for leak in data["leaks"]:
    f = leak["function"]
    b, o = by.get(f, (0, 0))
    by[f] = (b + leak["bytes"], o + leak["objects"])
bad = 0
for arg in sys.argv[1:]:
    func, want = arg.split("=")
    wb, wo = want.split(":")
    got = by.get(func)
    if got is None:
        print("missing site %s (sites: %s)" % (func, ", ".join(sorted(by))))
        bad = 1
        continue
    ok_b = got[0] >= int(wb[1:]) if wb.startswith("+") else got[0] == int(wb)
    if not ok_b or got[1] != int(wo):
        print("%s: got %d bytes in %d objects, want %s bytes in %s" % (func, got[0], got[1], wb, wo))
        bad = 1
sys.exit(bad)
