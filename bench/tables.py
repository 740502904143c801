#!/usr/bin/env python3
"""bench/tables.py RAW -- the Markdown tables of bench/run.sh from its raw
measurements (one line a run: `WL MODE ROUND key=value ...`). Every figure
is the median over the rounds; ratios are medians of a mode over the
median of the native runs of the same workload, all from this one RAW.
Exit status: 0, or 3 when a heaptrace mode failed or changed a program's
output (the tables are printed anyway)."""
import re
import statistics
import sys
from collections import defaultdict

MODES = [("ht", "heaptrace (sampled)"), ("all", "heaptrace --all"), ("heaptrack", "heaptrack 1.4")]


def parse(path):
    runs = defaultdict(list)  # (wl, mode) -> [dict]
    order = []
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        wl, mode = parts[0], parts[1]
        d = {}
        rest = parts[3:]
        if "rps:" in rest:
            i = rest.index("rps:")
            d["rps"] = dict(kv.split("=", 1) for kv in rest[i + 1:] if "=" in kv)
            rest = rest[:i]
        for kv in rest:
            if "=" in kv:
                k, v = kv.split("=", 1)
                d[k] = v
        runs[(wl, mode)].append(d)
        if wl not in order:
            order.append(wl)
    return runs, order


def med(rs, key):
    vals = [float(r[key]) for r in rs if key in r]
    return statistics.median(vals) if vals else None


def failed(rs):
    """None when every run exited 0, else a label."""
    bad = [r for r in rs if r.get("status") != "0"]
    if not bad:
        return None
    if any(r.get("note") == "oom" for r in bad):
        return "failed (OOM)"
    return "failed (%s)" % ("status " + bad[0].get("status", "?"))


def mb(kb):
    return "%.0f MB" % (kb / 1024) if kb is not None else "-"


def size(n):
    if n is None:
        return "-"
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return "%.1f %s" % (n / div, unit)
    return "%d B" % n


def row(cells):
    return "| " + " | ".join(cells) + " |"


def main():
    runs, order = parse(sys.argv[1])
    rc = 0
    wls = [w for w in order if w != "redis"]
    present = [(m, name) for m, name in MODES if any((w, m) in runs for w in wls)]
    out = []

    def cell(wl, mode, fn):
        rs = runs.get((wl, mode))
        if not rs:
            return "n/a"
        f = failed(rs)
        if f:
            return f
        return fn(rs)

    for wl in wls:
        for m in ("ht", "all"):
            rs = runs.get((wl, m), [])
            if failed(rs) or any(r.get("note") == "output-differs" for r in rs):
                rc = 3

    if wls:
        out.append("## Recording: wall time, ratio to native (median)\n")
        out.append(row(["workload", "native"] + [n for _, n in present]))
        out.append(row(["---"] * (2 + len(present))))
        for wl in wls:
            nat = med(runs[(wl, "native")], "wall")
            cells = [wl, "%.3f s" % nat]
            for m, _ in present:
                def fmt(rs, nat=nat):
                    w = med(rs, "wall")
                    s = "%.2fx (%.2f s)" % (w / nat, w)
                    if any(r.get("note") == "output-differs" for r in rs):
                        s += " output differs!"
                    return s
                cells.append(cell(wl, m, fmt))
            out.append(row(cells))
        out.append("")

        out.append("## Recording: CPU time (user+sys, whole process tree), ratio to native\n")
        out.append(row(["workload", "native"] + [n for _, n in present]))
        out.append(row(["---"] * (2 + len(present))))
        for wl in wls:
            nrs = runs[(wl, "native")]
            nat = statistics.median([float(r["user"]) + float(r["sys"]) for r in nrs])
            cells = [wl, "%.3f s" % nat]
            for m, _ in present:
                def fmt(rs, nat=nat):
                    c = statistics.median([float(r["user"]) + float(r["sys"]) for r in rs])
                    return "%.2fx" % (c / nat)
                cells.append(cell(wl, m, fmt))
            out.append(row(cells))
        out.append("")

        out.append("## Peak RSS (largest process of the tree, median)\n")
        out.append(row(["workload", "native"] + [n for _, n in present]))
        out.append(row(["---"] * (2 + len(present))))
        for wl in wls:
            cells = [wl, mb(med(runs[(wl, "native")], "maxrss_kb"))]
            for m, _ in present:
                cells.append(cell(wl, m, lambda rs: mb(med(rs, "maxrss_kb"))))
            out.append(row(cells))
        out.append("")

        out.append("## Trace size\n")
        cols = [n for m, n in present]
        out.append(row(["workload"] + cols + ["--all / heaptrack"]))
        out.append(row(["---"] * (2 + len(cols))))
        for wl in wls:
            cells = [wl]
            for m, _ in present:
                cells.append(cell(wl, m, lambda rs: size(med(rs, "size"))))
            a, h = runs.get((wl, "all")), runs.get((wl, "heaptrack"))
            if a and h and not failed(a) and not failed(h) and med(h, "size"):
                cells.append("%.2f" % (med(a, "size") / med(h, "size")))
            else:
                cells.append("-")
            out.append(row(cells))
        out.append("")

        if any((w, "report") in runs or (w, "heaptrack_print") in runs for w in wls):
            out.append("## Analysis: `heaptrace report` on the --all trace vs `heaptrack_print`\n")
            out.append("`report` is the second analysis of the program (the symbol cache of the "
                       "first one, `~/.cache/heaptrace`, in place); `cold` is with "
                       "`HEAPTRACE_CACHE_DIR=off`, every module's DWARF read afresh.\n")
            out.append(row(["workload", "heaptrace report", "heaptrack_print", "ratio",
                            "heaptrace report (cold)", "ratio (cold)",
                            "report peak RSS", "heaptrack_print peak RSS",
                            "allocation calls counted (heaptrace / heaptrack)"]))
            out.append(row(["---"] * 9))
            for wl in wls:
                r, p = runs.get((wl, "report")), runs.get((wl, "heaptrack_print"))
                cold = runs.get((wl, "report_cold"))
                rt = cell(wl, "report", lambda rs: "%.2f s" % med(rs, "wall"))
                pt = cell(wl, "heaptrack_print", lambda rs: "%.2f s" % med(rs, "wall"))
                ct = cell(wl, "report_cold", lambda rs: "%.2f s" % med(rs, "wall"))
                ratio = cratio = "-"
                if r and p and not failed(r) and not failed(p):
                    ratio = "%.2fx" % (med(r, "wall") / med(p, "wall"))
                if cold and p and not failed(cold) and not failed(p):
                    cratio = "%.2fx" % (med(cold, "wall") / med(p, "wall"))
                out.append(row([wl, rt, pt, ratio, ct, cratio,
                                cell(wl, "report", lambda rs: mb(med(rs, "maxrss_kb"))),
                                cell(wl, "heaptrack_print", lambda rs: mb(med(rs, "maxrss_kb"))),
                                "%s / %s" % ((r or [{}])[0].get("calls", "-"), (p or [{}])[0].get("calls", "-"))]))
            out.append("")

    nat, ht = runs.get(("redis", "native")), runs.get(("redis", "ht"))
    if nat:
        out.append("## Server: redis-server under `heaptrace record --max-size 64M "
                   "--snapshot-interval 10`, redis-benchmark -c 20 on loopback\n")
        tests = sorted({t for r in nat for t in r.get("rps", {})})
        out.append(row(["test", "native req/s", "heaptrace req/s", "ratio"]))
        out.append(row(["---"] * 4))
        for t in tests:
            n = statistics.median([float(r["rps"][t]) for r in nat if t in r.get("rps", {})])
            if ht and not failed(ht):
                vals = [float(r["rps"][t]) for r in ht if t in r.get("rps", {})]
                h = statistics.median(vals) if vals else None
            else:
                h = None
            out.append(row([t, "%.0f" % n, "%.0f" % h if h else "-", "%.2f" % (h / n) if h else "-"]))
        # all tests together: requests over the time they took (a harmonic
        # mean of the per-test rates), per run, then the median
        def overall(r):
            rates = [float(v) for v in r.get("rps", {}).values()]
            return len(rates) / sum(1 / x for x in rates) if rates else None
        n_all = statistics.median([overall(r) for r in nat if overall(r)])
        h_all = None
        if ht and not failed(ht):
            vals = [overall(r) for r in ht if overall(r)]
            h_all = statistics.median(vals) if vals else None
        out.append(row(["**all tests**", "%.0f" % n_all, "%.0f" % h_all if h_all else "-",
                        "**%.2f**" % (h_all / n_all) if h_all else "-"]))
        out.append("")
        ncpu = statistics.median([float(r["user"]) + float(r["sys"]) for r in nat])
        nb = med(nat, "bench_s")
        out.append(row(["", "native", "heaptrace"]))
        out.append(row(["---"] * 3))
        if ht and not failed(ht):
            hcpu = statistics.median([float(r["user"]) + float(r["sys"]) for r in ht])
            hb = med(ht, "bench_s")
            hsz = med(ht, "size")
            hw = med(ht, "wall")
            out.append(row(["benchmark time", "%.1f s" % nb, "%.1f s" % hb]))
            out.append(row(["server CPU time (user+sys, with collector)", "%.2f s" % ncpu,
                            "%.2f s (+%.0f%%)" % (hcpu, 100 * (hcpu / ncpu - 1))]))
            out.append(row(["server peak RSS", mb(med(nat, "maxrss_kb")), mb(med(ht, "maxrss_kb"))]))
            out.append(row(["trace size", "", size(hsz)]))
            out.append(row(["trace bytes per hour at this load (extrapolated; the file stays "
                            "under --max-size)", "", size(hsz / hw * 3600)]))
        else:
            out.append(row(["benchmark time", "%.1f s" % nb, failed(ht) if ht else "n/a"]))
            out.append(row(["server CPU time", "%.2f s" % ncpu, "-"]))
            if ht:
                rc = 3
        out.append("")
    print("\n".join(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
