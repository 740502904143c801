#!/bin/bash
# Sampled traces: over many runs (each with its own sampling seed), the
# estimates of a known leak fall inside the interval the sampling math
# predicts. The report's error bar is one standard error; we check that
# no run is off by more than 4 of them, that at least 80% of runs are
# within 2, and that the runs are not biased (mean z-score near 0).
. "$TOP/tests/e2e/lib.sh"
runs=${SAMPLING_RUNS:-24}
: >z.txt
for i in $(seq 1 "$runs"); do
    out=$("$HT" record --quiet -o "s$i.htr" "$E2E/prog_sampled" "$i") || fail "record failed"
    read -r bytes objects <<<"$out"
    "$HT" leaks --json "s$i.htr" | python3 -c '
import json, sys
true_b = int(sys.argv[1])
d = json.load(sys.stdin)
est = sum(l["bytes"] for l in d["leaks"] if l["function"] == "leak_mixed")
# stderr of the site as the report prints it
se = max(l["bytes_stderr"] for l in d["leaks"] if l["function"] == "leak_mixed") if est else 0
if se <= 0:
    sys.exit("no error bar for a sampled estimate")
print("%.4f %d %d %d" % ((est - true_b) / se, est, true_b, se))
' "$bytes" >>z.txt || fail "run $i: $(tail -1 z.txt)"
done
python3 - "$runs" <<'PY' || fail "estimates outside the predicted interval: $(cat z.txt)"
import sys
zs = [float(l.split()[0]) for l in open("z.txt")]
n = len(zs)
within2 = sum(abs(z) <= 2 for z in zs) / n
mean = sum(zs) / n
print("runs %d, mean z %.2f, within 2 se %.0f%%, worst |z| %.2f" % (n, mean, 100 * within2, max(map(abs, zs))))
assert n == int(sys.argv[1])
assert max(abs(z) for z in zs) <= 4, "a run is more than 4 standard errors off"
assert within2 >= 0.8, "too few runs within 2 standard errors"
assert abs(mean) <= 3 / n ** 0.5 + 0.1, "estimates are biased"
PY
# A leak no sample falls on (one sample per TiB, the largest rate: at 1G
# the program's few MB got a sample in about one run of a hundred, and the
# graph below was not empty): the exact counts still say how many blocks
# were never freed: 20,000 sessions, the array that holds them and
# stdout's buffer.
"$HT" record --quiet --sample-rate 1T -o big.htr "$E2E/prog_slowleak" 20000 1000000 >/dev/null ||
    fail "record with --sample-rate 1T failed"
"$HT" report big.htr >big.txt || fail "report exited $?"
grep -q "^ *exactly 20,002 block(s) (allocations - frees)" big.txt ||
    fail "no exact count of unfreed blocks: $(sed -n 8,14p big.txt)"
# Its flame graph is empty, whatever the metric (no sample at all): the
# command says why; a trace with samples gets no such word.
"$HT" flamegraph -o big.svg big.htr 2>fg.err || fail "flamegraph exited $?"
grep -q "big.htr holds no sample; record with --all or a smaller --sample-rate" fg.err ||
    fail "no word on the empty graph: $(cat fg.err)"
"$HT" flamegraph --metric alloc_space -o s1.svg s1.htr 2>fg1.err || fail "flamegraph exited $?"
! grep -q "holds no\| is 0 in " fg1.err || fail "a graph with data called empty: $(cat fg1.err)"
echo ok
