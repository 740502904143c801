#!/usr/bin/env python3
"""bench/py_work.py -- workload (e): a python3 program building dicts and
lists (a word index, per-key lists of tuples, JSON round trip). Its size
is the first argument (default 200000)."""
import json
import sys


def main(n):
    words = ["w%05d" % (i * 7919 % 50021) for i in range(n)]
    index = {}
    for i, w in enumerate(words):
        index.setdefault(w, []).append((i, len(w), w[::-1]))
    groups = {}
    for w, occ in index.items():
        groups.setdefault(len(occ), []).append(w)
    rows = [{"id": i, "name": w, "tags": [w[:3], w[-3:]], "score": i % 97 / 7.0}
            for i, w in enumerate(words[: n // 2])]
    text = json.dumps(rows)
    back = json.loads(text)
    total = sum(r["score"] for r in back)
    joined = ",".join(sorted(index))
    print("py_work: %d words, %d keys, %d groups, %d json bytes, %d joined, %.1f"
          % (n, len(index), len(groups), len(text), len(joined), total))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200000)
