#!/bin/bash
# The shim, call by call: prog_family (its header has the table) recorded
# with --all must show exactly one ALLOC per allocating call, each with its
# own size, exactly the frees the program made, the known leaks, frame[0]
# in the program's own code for every direct call, and a 200-deep
# recursion walked back to main. A default (sampled) run must work too.
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/t_record_lib.bash"

# --max-depth 256: the deep() stack is about 205 frames (record's own
# default is 128).
"$HT" record --quiet --all --max-depth 256 -o t.htr "$E2E/prog_family" >out || fail "record exited $? ($(cat out))"
grep -qx "family ok" out || fail "program said: $(cat out)"
j=$(RSTAT_FRAMES=1 rstat t.htr) # with each allocation's frames

# Sizes made by one direct call each (malloc 1001+i, calloc 3*(337+i),
# realloc and reallocarray steps, the deep() block).
one="[1001,1002,1003,1004,1005,1006,1007,1008, 1011,1014,1017,1020,1023,1026,1029,1032,
      1021,1031,4000,700,1043,2001]"
check "$j" "all(n(j['allocs'], s) == 1 for s in $one)" \
    "one ALLOC per call (a family member that calls another must not be recorded twice)"
# realloc(p, 100) is ours; asprintf's own 100-byte buffers are glibc's business.
check "$j" "n(j['allocs'], 100) >= 1"
check "$j" "all(n(j['allocs'], s) == 8 for s in [1051,1088,1061,1069,1087,1093])" \
    "posix_memalign, aligned_alloc, memalign, valloc, pvalloc, strdup: 8 each"

# Frees: everything but the first of each 8, the realloc steps, deep().
check "$j" "all(n(j['frees'], s) == 7 for s in [1051,1088,1061,1069,1087,1093])" "7 frees of each"
check "$j" "all(n(j['frees'], s) == 1 for s in [1002,1008,1014,1032,1021,4000,700,2001])" \
    "freed blocks (realloc's old blocks included)"
check "$j" "all(n(j['frees'], s) == 0 for s in [1001,1011,1031,1043])" "the leaks are never freed"
check "$j" "n(j['frees'], 100) >= 1" "realloc(p, 0) is a free"
check "$j" "j['free_null'] == 0" "free(NULL) is not an event"
check "$j" "j['exit'] == [0, 0]" "EXIT with status 0"

# frame[0] is the return address in the function that called the
# allocator: for the direct calls, inside prog_family's executable code.
check "$j" "(
any(m['path'].endswith('/prog_family') for m in j['modules']) and
all(any(m['bias'] + v <= int(st[0], 16) < m['bias'] + v + sz
        for m in j['modules'] if m['path'].endswith('/prog_family')
        for (v, sz, fl) in m['segs'] if fl & 1)
    for s in $one + [1051, 1088, 1061, 1069, 1087]
    for st in j['alloc_frames'][str(s)]))" "frame[0] in the program for every direct call"

# The 200-deep recursion: at least 202 frames in the program (deep x 201
# and main), so the unwinder got all the way back.
check "$j" "(
len(j['alloc_frames']['2001']) == 1 and
sum(1 for f in j['alloc_frames']['2001'][0]
    for m in j['modules'] if m['path'].endswith('/prog_family')
    for (v, sz, fl) in m['segs'] if fl & 1 and m['bias'] + v <= int(f, 16) < m['bias'] + v + sz) >= 202)" \
    "a 200-deep stack reaches main"

# Sampled (the default): same program, same exit, a valid trace.
"$HT" record --quiet -o s.htr "$E2E/prog_family" >out || fail "sampled record exited $?"
grep -qx "family ok" out || fail "sampled run said: $(cat out)"
s=$(rstat s.htr)
check "$s" "j['exit'] == [0, 0] and j['types'].get('process', 0) == 1" "sampled trace has PROCESS and EXIT"
echo ok
