#!/usr/bin/env python3
"""Summarize `heaptrace dump --json` output read from stdin, for e2e tests.

Counts events (keyframe records excluded), allocations by size, and how
many allocations of the selected sizes were freed. Prints one JSON object.
Usage: heaptrace dump --json T | tracestat.py [--sizes 777,1777]
"""
import json
import sys

sizes = None
if len(sys.argv) > 2 and sys.argv[1] == "--sizes":
    sizes = {int(x) for x in sys.argv[2].split(",") if x}

types = {}
alloc_by_size = {}
live = {}
sel_allocs = sel_frees = 0
bad = 0
events = []
# The file holds each thread's batches in turn, so an address freed by one
# thread and reused by another can appear out of order: match allocations
# and frees in timestamp order, as the analyzer does.
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        r = json.loads(line)
    except ValueError:
        bad += 1
        continue
    if r.get("keyframe"):
        continue
    events.append(r)
events.sort(key=lambda r: int(r.get("ts", 0)))
for r in events:
    t = r.get("type")
    types[t] = types.get(t, 0) + 1
    if t in ("alloc", "alloc_w"):
        sz = int(r["size"])
        alloc_by_size[sz] = alloc_by_size.get(sz, 0) + 1
        live[r["ptr"]] = sz
        if sizes is None or sz in sizes:
            sel_allocs += 1
    elif t == "free":
        sz = live.pop(r["ptr"], None)
        if sz is not None and (sizes is None or sz in sizes):
            sel_frees += 1
out = {
    "types": types,
    "allocs": sel_allocs,
    "frees": sel_frees,
    "live": sum(1 for s in live.values() if sizes is None or s in sizes),
    "by_size": {str(k): v for k, v in sorted(alloc_by_size.items())},
    "bad_lines": bad,
}
json.dump(out, sys.stdout)
print()
