# Helpers for the t_record_*.sh tests (sourced after lib.sh).
#
# rstat TRACE: one JSON object summarizing `heaptrace dump --json TRACE`:
#   types        events by type (keyframe records excluded)
#   allocs       {size: allocations}     frees {size: frees of blocks of that size}
#   tids         {size: distinct threads allocating it}
#   live_end     {size: blocks live in the last keyframe}
#   live_first   {size: blocks live in the first keyframe}, inherited: LIVE flagged so
#   snapshots    [reason of each snapshot keyframe]    exit: [how, code] or null
#   modules      [{id, path, bias, segs}], unmodules [ids]
#   alloc_frames {size: [frames of each allocation's stack]} (only with
#                RSTAT_FRAMES=1: it is big)
#   segments, seqs, pid
#   free_null    frees the collector found no allocation for (UNKNOWN_FREES;
#                free(NULL) would be one: it must not be recorded at all)
rstat() {
    "$HT" dump --json "$1" | python3 -c '
import json, os, sys
frames = os.environ.get("RSTAT_FRAMES") == "1"
o = {"types": {}, "allocs": {}, "frees": {}, "tids": {}, "live_end": {}, "live_first": {},
     "inherited": 0, "snapshots": [], "exit": None, "modules": [], "unmodules": [],
     "alloc_frames": {}, "segments": 0, "seqs": [], "pid": 0, "free_null": 0}
tids, stacks, cur, first = {}, {}, None, True
for line in sys.stdin:
    r = json.loads(line)
    t = r["type"]
    if t == "file":
        o["pid"] = r["pid"]
        continue
    if t == "segment":
        o["segments"] += 1
        o["seqs"].append(r["seq"])
        stacks = {}
        continue
    if t == "stack":
        stacks[r["id"]] = r["frames"]
    elif t == "stack_ref":  # its own frames, then the root side of stack "base"
        b = stacks.get(r["base"], [])
        stacks[r["id"]] = r["frames"] + (b[len(b) - r["keep"]:] if r["keep"] else [])
    if r.get("keyframe"):
        if t == "keyframe":
            cur = {}
            if r["snapshot"]:
                o["snapshots"].append(r["reason"])
        elif t == "live":
            k = str(r["size"])
            cur[k] = cur.get(k, 0) + r["count"]
            if first and r["flags"] & 1:
                o["inherited"] += r["count"]
        elif t == "keyframe_end":
            if first:
                o["live_first"] = cur
                first = False
            o["live_end"] = cur
        continue
    o["types"][t] = o["types"].get(t, 0) + 1
    if t == "ev_alloc":
        k = str(r["size"])
        o["allocs"][k] = o["allocs"].get(k, 0) + 1
        tids.setdefault(k, set()).add(r["alloc_tid"])
        if frames:
            o["alloc_frames"].setdefault(k, []).append(stacks.get(r["stack"], []))
    elif t in ("ev_free", "ev_free_tmp") and "size" in r:
        k = str(r["size"])
        o["frees"][k] = o["frees"].get(k, 0) + 1
    elif t == "unknown_frees":
        o["free_null"] = max(o["free_null"], r["frees"])
    elif t == "exit":
        o["exit"] = [r["how"] & 3, r["code"]]  # the manner; 4 is "counts cut short"
    elif t == "module":
        o["modules"].append({"id": r["id"], "path": r["path"], "bias": int(r["bias"], 16),
                             "segs": [(int(s["vaddr"], 16), s["memsz"], s["flags"]) for s in r["segs"]]})
    elif t == "unmodule":
        o["unmodules"].append(r["id"])
o["tids"] = {k: len(v) for k, v in tids.items()}
json.dump(o, sys.stdout)
'
}

# check JSON EXPR [MESSAGE]: fail unless the python EXPR (over j = JSON) is
# true. The JSON goes through stdin: it can be larger than an argument.
check() {
    python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
def n(d, k): return d.get(str(k), 0)
ok = eval(sys.argv[1])
sys.exit(0 if ok else 1)' "$2" <<<"$1" || fail "${3:-$2} (summary: $(echo "$1" | cut -c1-600))"
}
