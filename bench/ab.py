#!/usr/bin/env python3
"""bench/ab.py -- A/B wall time of shell commands, for one change at a time.

Usage: bench/ab.py ROUNDS CMD_A CMD_B [CMD_C ...]

Runs every command once per round, in turn (so a slow phase of the machine
hits all of them alike), and prints for each the median and the minimum
wall time, their ratios to the first command's, and the median CPU time
(user + sys of the whole process tree). Files matching /tmp/ab*.htr* are
removed before each run, so commands can write their trace there:

  bench/ab.py 9 "build/bench/realloc_parse" \\
      "old/heaptrace record --all -o /tmp/abA.htr build/bench/realloc_parse" \\
      "build/heaptrace record --all -o /tmp/abB.htr build/bench/realloc_parse"

`make bench` is the full comparison with heaptrack; this is for deciding
whether a change helps before it goes in.
"""
import glob
import os
import resource
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit("usage: bench/ab.py ROUNDS CMD_A [CMD_B ...]")
    rounds, cmds = int(sys.argv[1]), sys.argv[2:]
    wall = [[] for _ in cmds]
    cpu = [[] for _ in cmds]
    for _ in range(rounds):
        for k, cmd in enumerate(cmds):
            for f in glob.glob("/tmp/ab*.htr*"):
                os.remove(f)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall[k].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    med0, min0 = statistics.median(wall[0]), min(wall[0])
    for k, cmd in enumerate(cmds):
        med, mn = statistics.median(wall[k]), min(wall[k])
        print(f"med {med:.3f}s x{med / med0:.3f}  min {mn:.3f}s x{mn / min0:.3f}  "
              f"cpu {statistics.median(cpu[k]):.2f}s  {cmd}")


if __name__ == "__main__":
    main()
