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
# Format 2: the collector wrote each process's events as one stream in
# time order; allocations are numbered (dump gives each ev_alloc its "id")
# and a free names the id it frees. So matching is exact and in file order.
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
    t = r.get("type")
    types[t] = types.get(t, 0) + 1
    if t in ("ev_alloc", "ev_alloc_w"):
        sz = int(r["size"])
        alloc_by_size[sz] = alloc_by_size.get(sz, 0) + 1
        live[r["id"]] = sz
        if sizes is None or sz in sizes:
            sel_allocs += 1
    elif t == "ev_free" and "id" in r:
        sz = live.pop(r["id"], None)
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
