#!/usr/bin/env python3
"""Mutation battery for hostile traces (issue: robustness).

Builds mutants of real trace files -- bit flips, truncation at every
segment boundary and inside segments, swapped segments, random bytes,
absurd lengths and counts -- and runs every analysis subcommand on each.
Each run must exit 0 or 1 (never a signal, never 2), finish within a time
limit, stay under a memory limit, and print at most a few lines on stderr
when it fails. Prints "N passed, N failed" and exits non-zero on failure.

Usage: mutate.py HEAPTRACE TRACE... [--count N] [--seed S]
"""
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile

SEG_MAGIC_CANDIDATES = (b"HTSEGMT\0",)  # formats/tracefile.c, docs/FORMAT.md 1.2
TIME_LIMIT = 20
MEM_LIMIT = 2 << 30  # address space per analysis run


def segment_offsets(data):
    """Offsets where a segment header seems to start (8-byte aligned magic)."""
    offs = []
    for magic in SEG_MAGIC_CANDIDATES:
        i = data.find(magic)
        while i >= 0:
            if i % 8 == 0:
                offs.append(i)
            i = data.find(magic, i + 1)
    return sorted(set(offs))


def mutants(data, rng, count):
    segs = segment_offsets(data)
    n = len(data)
    # A generator: a mutant is a whole copy of the trace, so they are made
    # one at a time, never held together.
    # truncation at the first segment boundaries and a few bytes inside each
    for s in segs[:4]:
        for cut in (s, s + 1, s + 17, s + 64, s + 200):
            if cut < n:
                yield ("trunc@%d" % cut, data[:cut])
    for cut in (0, 1, 7, 8, 63, 64, 100, 4095, 4096, n // 2, n - 1):
        if 0 <= cut < n:
            yield ("trunc@%d" % cut, data[:cut])
    # swapped segments
    if len(segs) >= 3:
        a, b, c = segs[0], segs[1], segs[2]
        yield ("swap01", data[:a] + data[b:c] + data[a:b] + data[c:])
    # absurd lengths/counts written over header fields of each segment
    for s in segs[:2]:
        for off in range(8, 64, 4):
            for val in (0xFFFFFFFF, 1 << 30):
                if s + off + 4 <= n:
                    m = bytearray(data)
                    m[s + off:s + off + 4] = struct.pack("<I", val)
                    yield ("seg%d+%d=%#x" % (s, off, val), bytes(m))
    # file header fields
    for off in range(8, 128, 8):
        if off + 8 <= n:
            m = bytearray(data)
            m[off:off + 8] = struct.pack("<Q", (1 << 60))
            yield ("hdr+%d=2^60" % off, bytes(m))
    # random bit flips and random byte runs
    for i in range(count):
        m = bytearray(data)
        if n == 0:
            break
        for _ in range(rng.randint(1, 8)):
            p = rng.randrange(n)
            m[p] ^= 1 << rng.randrange(8)
        yield ("flip%d" % i, bytes(m))
    for i in range(count // 4):
        m = bytearray(data)
        if n > 64:
            p = rng.randrange(n - 32)
            m[p:p + 32] = bytes(rng.randrange(256) for _ in range(32))
        yield ("junk%d" % i, bytes(m))
    yield ("random", bytes(rng.randrange(256) for _ in range(8192)))
    yield ("empty", b"")


def limit():
    # AddressSanitizer (make asan) reserves terabytes of address space for
    # its shadow memory: there, the bound is left to the time limit.
    if not os.environ.get("ASAN_OPTIONS"):
        resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main():
    args = sys.argv[1:]
    count, seed = 60, 1
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    ht, traces = args[0], args[1:]
    rng = random.Random(seed)
    cmds = [["report"], ["leaks"], ["collapse"], ["snapshots"], ["dump", "--json"]]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for t in traces:
            data = open(t, "rb").read()
            for name, blob in mutants(data, rng, count):
                path = os.path.join(tmp, "m.htr")
                with open(path, "wb") as f:
                    f.write(blob)
                # Rotate through the commands so the battery stays quick.
                for cmd in (cmds[passed % len(cmds)], ["pprof", "-o", os.path.join(tmp, "p.pb.gz")]):
                    try:
                        p = subprocess.run([ht] + cmd + [path], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, timeout=TIME_LIMIT,
                                           preexec_fn=limit)
                        rc, err = p.returncode, p.stderr.decode(errors="replace")
                    except subprocess.TimeoutExpired:
                        rc, err = "timeout", ""
                    ok = rc in (0, 1) and (rc == 0 or 0 < len(err.strip().splitlines()) <= 5)
                    if ok:
                        passed += 1
                    else:
                        failed += 1
                        keep = os.path.join(os.environ.get("MUTATE_KEEP", tmp), "fail-%s-%d.htr" % (os.path.basename(t), failed))
                        try:
                            with open(keep, "wb") as f:
                                f.write(blob)
                        except OSError:
                            pass
                        print("FAIL %s %s %s: rc=%s stderr=%r (kept %s)" % (t, name, " ".join(cmd), rc, err[-300:], keep))
    print("mutate: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
