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
# Format 3: the collector wrote each process's events as one stream in
# time order; a free names the site (size, stack, thread) of the block it
# frees, and dump shows each event's site figures. So counting by size is
# exact.
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
    if t == "ev_alloc":
        sz = int(r["size"])
        alloc_by_size[sz] = alloc_by_size.get(sz, 0) + 1
        live[sz] = live.get(sz, 0) + 1
        if sizes is None or sz in sizes:
            sel_allocs += 1
    elif t in ("ev_free", "ev_free_tmp") and "size" in r:
        sz = int(r["size"])
        live[sz] = live.get(sz, 0) - 1
        if sizes is None or sz in sizes:
            sel_frees += 1
out = {
    "types": types,
    "allocs": sel_allocs,
    "frees": sel_frees,
    "live": sum(n for s, n in live.items() if sizes is None or s in sizes),
    "by_size": {str(k): v for k, v in sorted(alloc_by_size.items())},
    "bad_lines": bad,
}
json.dump(out, sys.stdout)
print()
