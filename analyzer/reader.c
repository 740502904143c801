/*
 * analyzer/reader.c -- segments in sequence order -> records -> replay.
 * See reader.h for the merge and keyframe rules.
 */
#include "analyzer/reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ht_rd_s {
    ht_tfr_t *tfr;
    char *path;
    bool quiet;
    ht_rd_stats_t st;
};

/* One timestamped record of the segment: where it is and whose it is.
 * 16 bytes, so even a segment of ten million events sorts in 160 MB; the
 * record itself is decoded again when it is replayed. */
typedef struct rd_ev_s {
    uint64_t ts;
    uint32_t off;   // of the record in the raw segment
    uint32_t batch; // index into the batch table
} rd_ev_t;

typedef struct rd_batch_s {
    uint64_t tid;
    uint32_t proc;
} rd_batch_t;

typedef struct rd_scratch_s {
    rd_ev_t *ev, *tmp;
    size_t nev, cap_ev, cap_tmp;
    rd_batch_t *b;
    uint32_t nb, cap_b;
} rd_scratch_t;

static void __attribute__((format(printf, 2, 3)))
rd_warn(const ht_rd_t *rd, const char *fmt, ...)
{
    if (rd->quiet)
        return;
    va_list ap;
    fprintf(stderr, "heaptrace: warning: %s: ", rd->path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
ht_rd_open(ht_rd_t **out, const char *path, bool quiet, char *err, size_t errlen)
{
    ht_rd_t *rd = calloc(1, sizeof *rd);
    if (!rd || !(rd->path = strdup(path))) {
        free(rd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rd->quiet = quiet;
    int rc = ht_tfr_open(&rd->tfr, path, err, errlen);
    if (rc < 0) {
        free(rd->path);
        free(rd);
        return rc;
    }
    // A header with no segment is a recording that ended (or was killed)
    // before its first segment reached the disk: analyzable, but empty,
    // which the user must not mistake for "no allocations".
    if (!quiet && ht_tfr_nsegs(rd->tfr) == 0 && ht_tfr_skipped_segs(rd->tfr) == 0)
        fprintf(stderr, "heaptrace: warning: %s holds no data yet (no complete segment)\n", path);
    *out = rd;
    return 0;
}

const ht_file_info_t *
ht_rd_info(const ht_rd_t *rd)
{
    return ht_tfr_info(rd->tfr);
}

size_t
ht_rd_nsegs(const ht_rd_t *rd)
{
    return ht_tfr_nsegs(rd->tfr);
}

const ht_rd_stats_t *
ht_rd_stats(const ht_rd_t *rd)
{
    return &rd->st;
}

void
ht_rd_close(ht_rd_t *rd)
{
    if (!rd)
        return;
    ht_tfr_close(rd->tfr);
    free(rd->path);
    free(rd);
}

/* ---- one segment ---- */

static int
rd_push_ev(rd_scratch_t *s, uint64_t ts, size_t off, uint32_t batch)
{
    if (s->nev == s->cap_ev) {
        size_t ncap = s->cap_ev ? s->cap_ev * 2 : 4096;
        rd_ev_t *n = realloc(s->ev, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->ev = n;
        s->cap_ev = ncap;
    }
    s->ev[s->nev++] = (rd_ev_t){ts, (uint32_t)off, batch};
    return 0;
}

static int
rd_push_batch(rd_scratch_t *s, uint32_t proc, uint64_t tid)
{
    if (s->nb == s->cap_b) {
        if (s->cap_b >= UINT32_MAX / 2)
            return -ENOMEM;
        uint32_t ncap = s->cap_b ? s->cap_b * 2 : 64;
        rd_batch_t *n = realloc(s->b, (size_t)ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->b = n;
        s->cap_b = ncap;
    }
    s->b[s->nb++] = (rd_batch_t){tid, proc};
    return 0;
}

// Stable sort by ts. Batches arrive as sorted runs, so this is a natural
// merge sort: find the runs, merge neighbours until one is left --
// O(n log runs), and O(n) for the common already-ordered segment.
static int
rd_sort(rd_scratch_t *s)
{
    size_t n = s->nev;
    size_t i = 1;
    while (i < n && s->ev[i - 1].ts <= s->ev[i].ts)
        i++;
    if (i >= n)
        return 0;
    if (s->cap_tmp < n) {
        rd_ev_t *t = realloc(s->tmp, n * sizeof *t);
        if (!t)
            return -ENOMEM;
        s->tmp = t;
        s->cap_tmp = n;
    }
    rd_ev_t *a = s->ev, *b = s->tmp;
    for (;;) {
        size_t out = 0, lo = 0, runs = 0;
        while (lo < n) {
            size_t mid = lo + 1;
            while (mid < n && a[mid - 1].ts <= a[mid].ts)
                mid++;
            size_t hi = mid;
            if (mid < n) {
                hi = mid + 1;
                while (hi < n && a[hi - 1].ts <= a[hi].ts)
                    hi++;
            }
            // merge [lo, mid) and [mid, hi); ties take the left run first,
            // which keeps the file order of equal timestamps.
            size_t x = lo, y = mid;
            while (x < mid && y < hi)
                b[out++] = a[y].ts < a[x].ts ? a[y++] : a[x++];
            while (x < mid)
                b[out++] = a[x++];
            while (y < hi)
                b[out++] = a[y++];
            lo = hi;
            runs++;
        }
        rd_ev_t *t = a;
        a = b;
        b = t;
        if (runs <= 1)
            break;
    }
    if (a != s->ev) {
        // The sorted data ended in the scratch buffer: swap the buffers.
        rd_ev_t *t = s->ev;
        size_t c = s->cap_ev;
        s->ev = s->tmp;
        s->cap_ev = s->cap_tmp;
        s->tmp = t;
        s->cap_tmp = c;
    }
    return 0;
}

static int
rd_segment_impl(rd_scratch_t *s, ht_rp_t *rp, const uint8_t *raw, size_t len, uint64_t seq,
                uint64_t seg_pid, bool reseed, int64_t stop_snapshot, bool *stopped,
                size_t *bad_off, uint64_t *nrecords)
{
    static __thread ht_tf_dec_t d; // 8 KiB of frame space: not on the stack
    ht_tf_rec_t r;
    *stopped = false;
    s->nev = 0;
    s->nb = 0;
    if (len > UINT32_MAX)
        return -EBADMSG; // offsets are 32-bit; the file reader caps segments far lower
    uint32_t seg_proc = ht_rp_proc(rp, seg_pid);
    if (seg_proc == HT_RP_NONE)
        return -ENOMEM;
    ht_tf_dec_init(&d, raw, len);
    int rc = 0, dec;
    bool in_kf = false, stop_here = false;
    uint32_t cur = HT_RP_NONE; // current batch
    const uint8_t *recp = d.p;
    // Pass 1, file order: the keyframe, names, and the event index.
    while ((dec = ht_tf_dec_next(&d, &r)) == 1) {
        (*nrecords)++;
        size_t off = (size_t)(recp - raw);
        recp = d.p;
        if (off == 0 && r.kind == HT_TF_KEYFRAME) {
            in_kf = true;
            stop_here = stop_snapshot >= 0 && r.snapshot == (uint64_t)stop_snapshot + 1;
            ht_rp_keyframe(rp, &r, seq, reseed);
            continue;
        }
        if (in_kf) {
            if (r.kind == HT_TF_KEYFRAME_END) {
                in_kf = false;
                if ((rc = ht_rp_keyframe_end(rp, &r)) < 0)
                    return rc;
                if (stop_here) {
                    *stopped = true;
                    return 0;
                }
                continue;
            }
            if (r.kind == HT_TF_STACK || r.kind == HT_TF_PROCESS || r.kind == HT_TF_FORK) {
                uint32_t p = ht_rp_ident(rp, seg_proc, &r);
                if (p == HT_RP_NONE)
                    return -ENOMEM;
                seg_proc = p;
            }
            if ((rc = ht_rp_keyframe_rec(rp, seg_proc, &r)) < 0)
                return rc;
            continue;
        }
        switch (r.kind) {
        case HT_TF_BATCH: {
            uint32_t p = ht_rp_proc(rp, r.pid);
            if (p == HT_RP_NONE || rd_push_batch(s, p, r.tid) < 0)
                return -ENOMEM;
            cur = s->nb - 1;
            continue;
        }
        case HT_TF_KEYFRAME:
        case HT_TF_KEYFRAME_END:
        case HT_TF_LIVE:
            rp->n.stray_records++; // keyframe records only belong at the start
            continue;
        default:
            break;
        }
        if (cur == HT_RP_NONE) {
            // Events before any BATCH: the segment's process, thread unknown.
            if (rd_push_batch(s, seg_proc, 0) < 0)
                return -ENOMEM;
            cur = s->nb - 1;
        }
        if (r.kind == HT_TF_STACK || r.kind == HT_TF_PROCESS || r.kind == HT_TF_FORK) {
            uint32_t p = ht_rp_ident(rp, s->b[cur].proc, &r);
            if (p == HT_RP_NONE)
                return -ENOMEM;
            if (p != s->b[cur].proc) {
                // An exec inside this batch: what follows is the new image.
                if (rd_push_batch(s, p, s->b[cur].tid) < 0)
                    return -ENOMEM;
                cur = s->nb - 1;
            }
            if (r.kind == HT_TF_STACK)
                continue;
        }
        if (rd_push_ev(s, r.ts, off, cur) < 0)
            return -ENOMEM;
    }
    if (dec < 0) {
        *bad_off = (size_t)(d.p - raw);
        rc = -EBADMSG;
    }
    if (in_kf) {
        // A keyframe cut short: close it so its snapshot still counts.
        ht_tf_rec_t end = {.kind = HT_TF_KEYFRAME_END};
        int r2 = ht_rp_keyframe_end(rp, &end);
        if (r2 < 0)
            return r2;
        if (stop_here) {
            *stopped = true;
            return rc;
        }
    }
    int r2 = rd_sort(s);
    if (r2 < 0)
        return r2;
    // Pass 2, time order. Every timestamped record starts with its ts
    // delta, so decoding from a zero base and putting the absolute ts
    // back is exact.
    for (size_t i = 0; i < s->nev; i++) {
        const rd_ev_t *e = &s->ev[i];
        const uint8_t *p = raw + e->off, *end = raw + len;
        uint8_t kind = *p++;
        if (kind == HT_TF_ALLOC || kind == HT_TF_ALLOC_W || kind == HT_TF_FREE) {
            // The hot kinds, decoded in place: the generic decoder clears
            // a whole record each time, which was a third of the replay.
            // Only the fields these kinds carry are read by the replay.
            uint64_t dts;
            r.kind = kind;
            r.ts = e->ts;
            r.weight = HT_TF_WEIGHT_ONE;
            if (ht_tf_varint_read(&p, end, &dts) < 0 || ht_tf_varint_read(&p, end, &r.ptr) < 0)
                continue; // decoded fine in pass 1: cannot happen
            if (kind != HT_TF_FREE &&
                (ht_tf_varint_read(&p, end, &r.size) < 0 ||
                 ht_tf_varint_read(&p, end, &r.stack) < 0 ||
                 (kind == HT_TF_ALLOC_W && ht_tf_varint_read(&p, end, &r.weight) < 0)))
                continue;
            const rd_batch_t *b = &s->b[e->batch];
            if ((r2 = ht_rp_event(rp, b->proc, b->tid, &r)) < 0)
                return r2;
            continue;
        }
        ht_tf_dec_init(&d, raw + e->off, len - e->off);
        if (ht_tf_dec_next(&d, &r) != 1)
            continue; // decoded fine in pass 1: cannot happen
        r.ts = e->ts;
        const rd_batch_t *b = &s->b[e->batch];
        if ((r2 = ht_rp_event(rp, b->proc, b->tid, &r)) < 0)
            return r2;
    }
    return rc;
}

int
ht_rd_segment(ht_rp_t *rp, const uint8_t *raw, size_t len, uint64_t seq, uint64_t seg_pid,
              bool reseed, int64_t stop_snapshot, bool *stopped, size_t *bad_off,
              uint64_t *nrecords)
{
    rd_scratch_t s = {0};
    uint64_t nrec = 0;
    int rc = rd_segment_impl(&s, rp, raw, len, seq, seg_pid, reseed, stop_snapshot, stopped,
                             bad_off, nrecords ? nrecords : &nrec);
    free(s.ev);
    free(s.tmp);
    free(s.b);
    return rc;
}

static void
rd_human(char *buf, size_t n, uint64_t bytes)
{
    if (bytes >= (10u << 20))
        snprintf(buf, n, "%.1f MiB", bytes / 1048576.0);
    else if (bytes >= 10240)
        snprintf(buf, n, "%.1f KiB", bytes / 1024.0);
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
}

int
ht_rd_replay(ht_rd_t *rd, ht_rp_t *rp, int64_t stop_snapshot, bool progress, char *err,
             size_t errlen)
{
    rd_scratch_t s = {0};
    size_t n = ht_tfr_nsegs(rd->tfr);
    const ht_file_info_t *info = ht_tfr_info(rd->tfr);
    memset(&rd->st, 0, sizeof rd->st);
    rd->st.skipped_segs = ht_tfr_skipped_segs(rd->tfr);
    if (rd->st.skipped_segs)
        rd_warn(rd, "%llu damaged segment%s skipped; the events they held are lost",
                (unsigned long long)rd->st.skipped_segs, rd->st.skipped_segs == 1 ? " was" : "s were");
    bool have_prev = false, lost_before = false, stopped = false;
    uint64_t prev_seq = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !stopped; i++) {
        const ht_tfr_seg_t *sg = ht_tfr_seg(rd->tfr, i);
        if (progress)
            fprintf(stderr, "\rheaptrace: reading segment %zu/%zu", i + 1, n);
        const uint8_t *raw;
        size_t len;
        char lerr[256] = "";
        int lr = ht_tfr_load(rd->tfr, i, &raw, &len, lerr, sizeof lerr);
        if (lr < 0) {
            if (lr == -ENOMEM) {
                rc = lr;
                snprintf(err, errlen, "out of memory reading segment %llu",
                         (unsigned long long)sg->seq);
                break;
            }
            rd_warn(rd, "segment %llu is unreadable (%s); its events are lost",
                    (unsigned long long)sg->seq, lerr);
            rd->st.bad_segs++;
            lost_before = true;
            continue;
        }
        bool reseed = !have_prev || lost_before || sg->seq != prev_seq + 1;
        if (!have_prev) {
            rd->st.first_seq = sg->seq;
            // Sequence numbers start at 0: a first segment with a higher
            // one means the oldest part of the trace is gone.
            rd->st.head_lost = sg->seq != 0;
        } else if (sg->seq != prev_seq + 1 && sg->seq > prev_seq) {
            uint64_t miss = sg->seq - prev_seq - 1;
            rd->st.missing_segs += miss;
            if (miss == 1)
                rd_warn(rd, "segment %llu is missing; the live set is restored from segment "
                            "%llu's keyframe, the events in between are lost",
                        (unsigned long long)prev_seq + 1, (unsigned long long)sg->seq);
            else
                rd_warn(rd, "segments %llu..%llu are missing; the live set is restored from "
                            "segment %llu's keyframe, the events in between are lost",
                        (unsigned long long)prev_seq + 1, (unsigned long long)sg->seq - 1,
                        (unsigned long long)sg->seq);
        }
        if (sg->status == HT_TFR_SEG_TORN) {
            rd->st.torn_segs++;
            char h[32];
            rd_human(h, sizeof h, len);
            rd_warn(rd, "segment %llu was cut short (the recording ended abruptly?): only its "
                        "first %s of records are replayed",
                    (unsigned long long)sg->seq, h);
        }
        size_t bad_off = 0;
        bool st = false;
        int sr = rd_segment_impl(&s, rp, raw, len, sg->seq, sg->pid, reseed, stop_snapshot, &st,
                                 &bad_off, &rd->st.records);
        rd->st.segs++;
        stopped = st;
        lost_before = sg->status == HT_TFR_SEG_TORN;
        if (sr == -EBADMSG) {
            char h[32];
            rd_human(h, sizeof h, len - bad_off);
            rd_warn(rd, "segment %llu has a corrupt record at byte %zu; its last %s are lost",
                    (unsigned long long)sg->seq, bad_off, h);
            rd->st.bad_segs++;
            lost_before = true;
        } else if (sr < 0) {
            rc = sr;
            snprintf(err, errlen, "out of memory replaying segment %llu",
                     (unsigned long long)sg->seq);
            break;
        }
        have_prev = true;
        prev_seq = sg->seq;
        rd->st.last_seq = sg->seq;
    }
    if (progress)
        fputs("\r\033[K", stderr);
    free(s.ev);
    free(s.tmp);
    free(s.b);
    if (rc < 0)
        return rc;
    if (!have_prev && n > 0) {
        snprintf(err, errlen, "no segment of the trace could be read");
        return -EBADMSG;
    }
    if (stop_snapshot >= 0 && !stopped) {
        if (rp->nsnaps == 0)
            snprintf(err, errlen, "has no snapshot %lld (it has no snapshots)",
                     (long long)stop_snapshot);
        else
            snprintf(err, errlen, "has no snapshot %lld (its snapshots are %llu..%llu)",
                     (long long)stop_snapshot, (unsigned long long)rp->snaps[0].number,
                     (unsigned long long)rp->snaps[rp->nsnaps - 1].number);
        return -ENOENT;
    }
    (void)info;
    ht_rp_finish(rp);
    return 0;
}
