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
rd_segment_impl(ht_rp_t *rp, const uint8_t *raw, size_t len, uint64_t seq, uint64_t seg_pid,
                bool reseed, int64_t stop_snapshot, bool *stopped, size_t *bad_off,
                uint64_t *nrecords)
{
    static __thread ht_tf_dec_t d; // 8 KiB of frame space: not on the stack
    ht_tf_rec_t r;
    *stopped = false;
    uint32_t seg_proc = ht_rp_proc(rp, seg_pid);
    if (seg_proc == HT_RP_NONE)
        return -ENOMEM;
    ht_tf_dec_init_seg(&d, raw, len);
    int rc = 0, dec;
    bool in_kf = false, stop_here = false;
    // The stream is in time order already (the collector merged the
    // threads): every record is applied as it is decoded. EV_THREAD sets
    // the thread of the events after it; a PROCESS of an exec switches the
    // image.
    uint32_t cur_proc = seg_proc;
    uint64_t cur_tid = 0;
    for (;;) {
        if (d.p < d.end && !in_kf) {
            // The hot records, decoded and applied in place (the generic
            // decoder clears a whole record each time).
            long n = ht_rp_event_run(rp, cur_proc, &d.p, d.end, d.tick, &d.last_ts, &cur_tid);
            if (n < 0) {
                dec = -EBADMSG;
                break;
            }
            *nrecords += (uint64_t)n;
            if (d.p >= d.end) {
                dec = 0;
                break;
            }
        }
        const uint8_t *recp = d.p;
        if ((dec = ht_tf_dec_next(&d, &r)) != 1)
            break;
        (*nrecords)++;
        if (recp == raw && r.kind == HT_TF_KEYFRAME) {
            in_kf = true;
            stop_here = stop_snapshot >= 0 && r.snapshot == (uint64_t)stop_snapshot + 1;
            ht_rp_keyframe(rp, &r, seq, reseed);
            continue;
        }
        if (in_kf) {
            if (r.kind == HT_TF_KEYFRAME_END) {
                in_kf = false;
                cur_proc = seg_proc;
                if ((rc = ht_rp_keyframe_end(rp, &r)) < 0)
                    return rc;
                if (stop_here) {
                    *stopped = true;
                    return 0;
                }
                continue;
            }
            if (r.kind == HT_TF_STACK || r.kind == HT_TF_STACK_REF || r.kind == HT_TF_PROCESS ||
                r.kind == HT_TF_FORK) {
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
        case HT_TF_EV_THREAD:
            cur_tid = r.tid;
            continue;
        case HT_TF_TICK:
            ht_rp_tick(rp, r.ts);
            continue;
        case HT_TF_KEYFRAME:
        case HT_TF_KEYFRAME_END:
        case HT_TF_LIVE:
        case HT_TF_BATCH:
            // Keyframe records only belong at the start; batches and the
            // ring's pointer events only in rings.
            rp->n.stray_records++;
            continue;
        case HT_TF_STACK:
        case HT_TF_STACK_REF:
        case HT_TF_PROCESS:
        case HT_TF_FORK: {
            uint32_t p = ht_rp_ident(rp, cur_proc, &r);
            if (p == HT_RP_NONE)
                return -ENOMEM;
            cur_proc = p; // an exec: what follows is the new image
            if (r.kind == HT_TF_STACK || r.kind == HT_TF_STACK_REF)
                continue;
            break;
        }
        default:
            break;
        }
        if ((rc = ht_rp_event(rp, cur_proc, cur_tid, &r)) < 0)
            return rc;
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
        if (stop_here)
            *stopped = true;
    }
    return rc;
}

int
ht_rd_segment(ht_rp_t *rp, const uint8_t *raw, size_t len, uint64_t seq, uint64_t seg_pid,
              bool reseed, int64_t stop_snapshot, bool *stopped, size_t *bad_off,
              uint64_t *nrecords)
{
    uint64_t nrec = 0;
    return rd_segment_impl(rp, raw, len, seq, seg_pid, reseed, stop_snapshot, stopped, bad_off,
                           nrecords ? nrecords : &nrec);
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
        int sr = rd_segment_impl(rp, raw, len, sg->seq, sg->pid, reseed, stop_snapshot, &st,
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
