/* tests/unit/test_collector.c -- the collector's segments: keyframes equal
 * the replayed state at every boundary, stacks defined before use in each
 * segment, snapshots, fork inheritance, exec, exit status. Records are fed
 * through the test seam (no ring, no shim). */
#include "libheaptrace/collector.h"

#include "formats/trace.h"
#include "formats/tracefile.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PBASE 0x100000ull
#define NPTR 20000

static char dir[64], out[128];

static void
co_setup(void)
{
    strcpy(dir, "/tmp/ht-colltest.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/t.htr", dir);
}

static void
co_teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* Test stacks: id -> 1..5 frames derived from the id. */
static uint64_t fake_frames[8];
static const uint64_t *
fake_stack(void *ctx, uint64_t id, uint32_t *n)
{
    (void)ctx;
    if (id == 0 || id > 1000)
        return NULL;
    *n = 1 + (uint32_t)(id % 5);
    for (uint32_t i = 0; i < *n; i++)
        fake_frames[i] = 0x400000 + id * 64 + i * 8;
    return fake_frames;
}

static ht_tf_rec_t
rec(uint8_t kind, uint64_t tid, uint64_t ts)
{
    ht_tf_rec_t r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.tid = tid;
    r.ts = ts;
    r.weight = HT_TF_WEIGHT_ONE;
    return r;
}

/* ---- trace checker: replays a file and checks every keyframe ---- */

typedef struct site_s {
    uint64_t size, stack, flags;
    int defined; /* in this segment */
    int known;   /* in any segment: a site id means one thing in a file */
} site_t;

/* Modules a test fed (id, address range): check_trace checks each stack's
 * frames in one had it stated earlier in the same segment. */
#define NTMOD 4
static struct {
    uint64_t id, lo, hi;
} tmod[NTMOD];
static int ntmod;

typedef struct summary_s {
    size_t mod_recs[NTMOD], unmod_recs;
    size_t nsegs, allocs, frees, temp_frees, forks, snapshots, memstats, processes;
    uint64_t snap_reason[32];
    int exit_seen;
    uint64_t exit_how, exit_code;
    uint64_t first_kf_nlive, first_kf_inherited;
    uint64_t last_kf_nlive;
    uint64_t proc_flags_last;
    int exec_seen;
    uint64_t seg_pid;
} summary_t;

/* Format 3 counts live blocks per site: the state is a count per site id. */
#define NSITE 65536
static site_t sites[NSITE];
static uint64_t state[NSITE], kf[NSITE];

static size_t
sidx(uint64_t id)
{
    ck_assert_uint_gt(id, 0);
    ck_assert_uint_lt(id, NSITE);
    return (size_t)id;
}

static void
check_trace(const char *path, summary_t *sm)
{
    memset(sm, 0, sizeof *sm);
    memset(state, 0, sizeof state);
    memset(sites, 0, sizeof sites);
    char err[256];
    ht_tfr_t *r;
    ck_assert_msg(ht_tfr_open(&r, path, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(ht_tfr_skipped_segs(r), 0);
    sm->nsegs = ht_tfr_nsegs(r);
    ht_tf_dec_t *d = malloc(sizeof *d);
    static char defined[1100];
    for (size_t i = 0; i < sm->nsegs; i++) {
        const ht_tfr_seg_t *sg = ht_tfr_seg(r, i);
        // No gaps in an unbounded file (a snapshot file's one segment keeps
        // the number it has in the trace).
        ck_assert_uint_eq(sg->seq, ht_tfr_seg(r, 0)->seq + i);
        sm->seg_pid = sg->pid;
        const uint8_t *raw;
        size_t len;
        ck_assert_int_eq(ht_tfr_load(r, i, &raw, &len, err, sizeof err), 0);
        ht_tf_dec_init_seg(d, raw, len);
        ht_tf_rec_t x;
        memset(defined, 0, sizeof defined);
        memset(kf, 0, sizeof kf);
        for (size_t k = 0; k < NSITE; k++)
            sites[k].defined = 0;
        int in_kf = 0, nrec = 0, exec_here = 0, mstated[NTMOD] = {0};
        uint64_t nlive = 0, snapshot = 0, last_ts = 0;
        int rc;
        while ((rc = ht_tf_dec_next(d, &x)) == 1) {
            if (nrec++ == 0) {
                ck_assert_int_eq(x.kind, HT_TF_KEYFRAME);
                ck_assert_uint_eq(x.seq, sg->seq);
                in_kf = 1;
                snapshot = x.snapshot;
                last_ts = x.ts;
                if (x.snapshot) {
                    if (i == 0) // a snapshot file starts at its own number
                        sm->snapshots = x.snapshot - 1;
                    ck_assert_uint_eq(x.snapshot, sm->snapshots + 1);
                    sm->snap_reason[sm->snapshots++ & 31] = x.reason;
                }
                continue;
            }
            ck_assert_int_ne(x.kind, HT_TF_KEYFRAME);
            // One merged stream in time order: times never go back.
            ck_assert_uint_ge(x.ts, last_ts);
            last_ts = x.ts;
            if (x.kind == HT_TF_STACK || x.kind == HT_TF_STACK_REF)
                for (uint32_t f = 0; f < x.nframes; f++)
                    for (int k = 0; k < ntmod; k++)
                        ck_assert_msg(x.frames[f] < tmod[k].lo || x.frames[f] >= tmod[k].hi ||
                                          mstated[k],
                                      "stack %llu before its module %llu in segment %zu",
                                      (unsigned long long)x.id,
                                      (unsigned long long)tmod[k].id, i);
            switch (x.kind) {
            case HT_TF_MODULE:
                for (int k = 0; k < ntmod; k++)
                    if (tmod[k].id == x.id) {
                        ck_assert(!mstated[k]); // once per segment
                        mstated[k] = 1;
                        sm->mod_recs[k]++;
                    }
                break;
            case HT_TF_UNMODULE:
                sm->unmod_recs++;
                break;
            case HT_TF_STACK:
                ck_assert_uint_lt(x.id, sizeof defined);
                ck_assert_uint_ge(x.nframes, 1);
                defined[x.id] = 1;
                break;
            case HT_TF_STACK_REF:
                // Shares callers with a stack this segment defined before.
                ck_assert_uint_lt(x.id, sizeof defined);
                ck_assert_uint_lt(x.base, sizeof defined);
                ck_assert(defined[x.base]);
                ck_assert_uint_ge(x.nframes + x.keep, 1);
                defined[x.id] = 1;
                break;
            case HT_TF_SITE: {
                site_t *st = &sites[sidx(x.id)];
                ck_assert(x.stack == 0 || defined[x.stack]);
                ck_assert(!st->defined); // once per segment
                if (st->known) {
                    ck_assert_uint_eq(st->size, x.size);
                    ck_assert_uint_eq(st->stack, x.stack);
                    ck_assert_uint_eq(st->flags, x.flags);
                }
                *st = (site_t){x.size, x.stack, x.flags, 1, 1};
                break;
            }
            case HT_TF_LIVE: {
                ck_assert(in_kf);
                size_t k = sidx(x.site);
                ck_assert(sites[k].defined);
                ck_assert_uint_eq(kf[k], 0);
                ck_assert_uint_gt(x.count, 0);
                kf[k] = x.count;
                nlive += x.count;
                if (i == 0 && (sites[k].flags & HT_TF_SITE_INHERITED))
                    sm->first_kf_inherited += x.count;
                break;
            }
            case HT_TF_KEYFRAME_END:
                ck_assert(in_kf);
                ck_assert_uint_eq(x.nlive, nlive);
                in_kf = 0;
                if (i == 0 || exec_here) {
                    // exec replaced the image: its keyframe starts afresh
                    if (i == 0)
                        sm->first_kf_nlive = nlive;
                    memcpy(state, kf, sizeof state);
                } else {
                    // The heart of self-containment: the keyframe is
                    // exactly what replaying everything before it gives.
                    for (size_t k = 0; k < NSITE; k++)
                        ck_assert_uint_eq(kf[k], state[k]);
                }
                sm->last_kf_nlive = nlive;
                break;
            case HT_TF_PROCESS:
                sm->processes++;
                if (in_kf && i > 0 && (x.flags & HT_TF_PROC_EXEC) &&
                    !(sm->proc_flags_last & HT_TF_PROC_EXEC))
                    exec_here = 1;
                sm->proc_flags_last = x.flags;
                if (x.flags & HT_TF_PROC_EXEC)
                    sm->exec_seen = 1;
                break;
            case HT_TF_EV_THREAD:
                ck_abort_msg("EV_THREAD in a trace file: the collector writes none");
                break;
            case HT_TF_EV_ALLOC: {
                ck_assert(!in_kf);
                size_t k = sidx(x.site);
                ck_assert_msg(sites[k].defined, "site %llu used before defined",
                              (unsigned long long)x.site);
                state[k]++;
                sm->allocs++;
                break;
            }
            case HT_TF_EV_FREE:
            case HT_TF_EV_FREE_TMP: {
                ck_assert(!in_kf);
                size_t k = sidx(x.site);
                ck_assert(sites[k].defined);
                // Exact: a free always names a site with a live block.
                ck_assert_uint_gt(state[k], 0);
                state[k]--;
                sm->frees++;
                sm->temp_frees += x.kind == HT_TF_EV_FREE_TMP;
                break;
            }
            case HT_TF_BATCH:
            case HT_TF_ALLOC:
            case HT_TF_ALLOC_W:
            case HT_TF_FREE:
                ck_abort_msg("ring record kind %u in a trace file", x.kind);
                break;
            case HT_TF_FORK:
                sm->forks++;
                break;
            case HT_TF_MEMSTAT:
                ck_assert(!in_kf);
                ck_assert_uint_gt(x.rss, 0);
                sm->memstats++;
                break;
            case HT_TF_EXIT:
                ck_assert_uint_eq(snapshot, sm->snapshots);
                ck_assert_uint_eq(i, sm->nsegs - 1); // the last segment
                sm->exit_seen = 1;
                sm->exit_how = x.how;
                sm->exit_code = x.code;
                break;
            default:
                break;
            }
        }
        ck_assert_int_eq(rc, 0);
        ck_assert(!in_kf);
    }
    free(d);
    ht_tfr_close(r);
}

static ht_coll_t *
mk(uint64_t seg_raw_max)
{
    ht_coll_opts_t o;
    ht_coll_opts_default(&o);
    o.output = out;
    o.seg_raw_max = seg_raw_max;
    o.quiet = true;
    ht_coll_t *c;
    ck_assert_int_eq(ht_coll_create(&c, &o), 0);
    return c;
}

static ht_coll_src_t *
src(ht_coll_t *c, pid_t pid, pid_t ppid, uint32_t flags)
{
    ht_coll_src_info_t in = {.pid = pid, .ppid = ppid, .flags = flags, .max_depth = 64,
                             .sample_rate = 0};
    ht_coll_src_t *s;
    ck_assert_int_eq(ht_coll_src_open(c, &in, fake_stack, NULL, &s), 0);
    return s;
}

/* Pseudo-random churn: allocs and frees over NPTR slots. */
static void
churn(ht_coll_t *c, ht_coll_src_t *s, unsigned n, unsigned seed, uint64_t *ts, size_t *allocs,
      size_t *frees)
{
    static int live[NPTR];
    uint64_t x = seed * 2654435761u + 1;
    for (unsigned i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t k = (size_t)(x % 2000); // stay in a small window: many frees hit
        uint64_t tid = 100 + (x >> 40) % 4;
        ht_tf_rec_t r = rec(live[k] ? HT_TF_FREE : HT_TF_ALLOC, tid, (*ts)++);
        r.ptr = PBASE + k * 16;
        if (!live[k]) {
            r.size = 1 + (x >> 20) % 5000;
            r.stack = 1 + (x >> 33) % 200;
            (*allocs)++;
        } else {
            (*frees)++;
        }
        live[k] = !live[k];
        ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    }
}

START_TEST(test_segments_self_contained)
{
    // Tiny segments: dozens of boundaries, each keyframe checked against
    // the replay of everything before it.
    ht_coll_t *c = mk(8 << 10);
    ht_coll_src_t *s = src(c, getpid(), getppid(), HT_TF_PROC_ALL);
    uint64_t ts = 1000;
    ht_tf_rec_t r = rec(HT_TF_THREAD, 100, ts++);
    r.str = (const uint8_t *)"main";
    r.str_len = 4;
    ht_coll_src_feed(c, s, &r);
    // Module 1 holds every fake_stack frame; module 2 none of them.
    r = rec(HT_TF_MODULE, 100, ts++);
    r.id = 1;
    r.bias = 0x400000;
    r.str = (const uint8_t *)"/bin/x";
    r.str_len = 6;
    r.nsegs = 1;
    r.segs[0] = (ht_tf_seg_t){.vaddr = 0, .memsz = 0x10000, .flags = 5};
    ht_coll_src_feed(c, s, &r);
    r.id = 2;
    r.bias = 0x7f0000000000;
    r.str = (const uint8_t *)"/lib/y.so";
    r.str_len = 9;
    ht_coll_src_feed(c, s, &r);
    tmod[0].id = 1, tmod[0].lo = 0x400000, tmod[0].hi = 0x410000;
    tmod[1].id = 2, tmod[1].lo = 0x7f0000000000, tmod[1].hi = 0x7f0000010000;
    ntmod = 2;
    size_t allocs = 0, frees = 0;
    churn(c, s, 80000, 1, &ts, &allocs, &frees);
    r = rec(HT_TF_SNAPSHOT_REQ, 100, ts++);
    ht_coll_src_feed(c, s, &r);
    churn(c, s, 3000, 2, &ts, &allocs, &frees);
    r = rec(HT_TF_UNMODULE, 100, ts++);
    r.id = 2;
    ht_coll_src_feed(c, s, &r);
    ht_coll_note_exit(c, getpid(), 3 << 8); // exit(3)
    ht_coll_src_close(c, s);
    ht_coll_stats_t st;
    ht_coll_get_stats(c, &st);
    ck_assert_int_eq(st.write_error, 0);
    ck_assert_uint_eq(st.files, 1);
    ht_coll_destroy(c);

    summary_t sm;
    check_trace(out, &sm);
    ntmod = 0;
    // A segment states the modules its stacks are in, and only those: every
    // segment has stacks in module 1 (its keyframe's live blocks or its
    // events), none in module 2, whose unloading is then no news either.
    ck_assert_uint_eq(sm.mod_recs[0], sm.nsegs);
    ck_assert_uint_eq(sm.mod_recs[1], 0);
    ck_assert_uint_eq(sm.unmod_recs, 0);
    ck_assert_uint_gt(sm.nsegs, 10);
    ck_assert_uint_eq(sm.allocs, allocs);
    ck_assert_uint_eq(sm.frees, frees);
    ck_assert_uint_eq(sm.snapshots, 2);
    ck_assert_uint_eq(sm.snap_reason[0], HT_TF_SNAP_API);
    ck_assert_uint_eq(sm.snap_reason[1], HT_TF_SNAP_EXIT);
    ck_assert(sm.exit_seen);
    // waitpid's status; the stream has no EXIT of the shim's, which writes
    // the final counts first: they are said to be cut short.
    ck_assert_uint_eq(sm.exit_how, HT_TF_EXIT_STATUS | HT_TF_EXIT_COUNTS_CUT);
    ck_assert_uint_eq(sm.exit_code, 3);
    ck_assert_uint_eq(sm.seg_pid, (uint64_t)getpid());
    // Every boundary closes with MEMSTAT (this process's smaps is readable).
    ck_assert_uint_ge(sm.memstats, sm.nsegs - 2);
    ck_assert_uint_gt(sm.last_kf_nlive, 100);
}
END_TEST

/* n allocations of thread 7 of the parent, at PBASE + 16 i, of 100 + i
 * bytes, stack 1 + i, from time *ts on. */
static void
feed_parent_allocs(ht_coll_t *c, ht_coll_src_t *ps, int n, uint64_t *ts)
{
    for (int i = 0; i < n; i++) {
        ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, (*ts)++);
        r.ptr = PBASE + (uint64_t)i * 16;
        r.size = 100 + (uint64_t)i;
        r.stack = 1 + (uint64_t)i;
        ht_coll_src_feed(c, ps, &r);
    }
}

START_TEST(test_fork_inherits_live_set)
{
    ht_coll_t *c = mk(0);
    pid_t ppid = getpid(), cpid = 0x3ffff0;
    ht_coll_set_main_pid(c, ppid);
    ht_coll_src_t *ps = src(c, ppid, getppid(), HT_TF_PROC_ALL);
    uint64_t ts = 1;
    feed_parent_allocs(c, ps, 10, &ts);
    ht_tf_rec_t r = rec(HT_TF_FREE, 7, ts++);
    r.ptr = PBASE;
    ht_coll_src_feed(c, ps, &r);
    // The child's ring shows up before the parent's FORK was read: its
    // start must wait for the inherited live set.
    ht_coll_src_t *cs = src(c, cpid, ppid, HT_TF_PROC_ALL | HT_TF_PROC_FORKED);
    ck_assert_uint_eq(ht_coll_nactive(c), 2);
    r = rec(HT_TF_FORK, 7, ts++);
    r.child = (uint64_t)cpid;
    ht_coll_src_feed(c, ps, &r);
    // Child frees one inherited block and allocates its own.
    r = rec(HT_TF_FREE, 8, ts++);
    r.ptr = PBASE + 16;
    ht_coll_src_feed(c, cs, &r);
    r = rec(HT_TF_ALLOC, 8, ts++);
    r.ptr = PBASE + 16 * 100;
    r.size = 5;
    r.stack = 3;
    ht_coll_src_feed(c, cs, &r);
    // Parent goes on allocating after the fork: not the child's.
    r = rec(HT_TF_ALLOC, 7, ts++);
    r.ptr = PBASE + 16 * 200;
    r.size = 6;
    r.stack = 4;
    ht_coll_src_feed(c, ps, &r);
    ht_coll_note_exit(c, cpid, SIGKILL); // killed by SIGKILL
    ht_coll_src_close(c, cs);
    ht_coll_src_close(c, ps);
    ck_assert_uint_eq(ht_coll_nactive(c), 0);
    ht_coll_destroy(c);

    summary_t sm;
    check_trace(out, &sm);
    ck_assert_uint_eq(sm.allocs, 11);
    ck_assert_uint_eq(sm.frees, 1);
    ck_assert_uint_eq(sm.forks, 1);
    ck_assert_uint_eq(sm.last_kf_nlive, 10);
    ck_assert_uint_eq(sm.exit_how, HT_TF_EXIT_UNKNOWN | HT_TF_EXIT_COUNTS_CUT);

    char cpath[160];
    snprintf(cpath, sizeof cpath, "%s.%d", out, (int)cpid);
    check_trace(cpath, &sm);
    ck_assert_uint_eq(sm.seg_pid, (uint64_t)cpid);
    ck_assert_uint_eq(sm.first_kf_nlive, 9);
    ck_assert_uint_eq(sm.first_kf_inherited, 9);
    ck_assert_uint_eq(sm.allocs, 1);
    ck_assert_uint_eq(sm.frees, 1);
    ck_assert_uint_eq(sm.last_kf_nlive, 9); // 9 inherited - 1 freed + 1 own
    ck_assert(sm.exit_seen);
    ck_assert_uint_eq(sm.exit_how, HT_TF_EXIT_SIGNAL | HT_TF_EXIT_COUNTS_CUT);
    ck_assert_uint_eq(sm.exit_code, SIGKILL);
    ck_assert_uint_eq(sm.proc_flags_last & HT_TF_PROC_FORKED, HT_TF_PROC_FORKED);
}
END_TEST

/* The collector's ordering rule: thread A frees X, thread B then gets X
 * from malloc. The scan met B's buffer first, so B's ALLOC was consumed
 * before A's FREE; both are older than the poll's horizon. The file must
 * have A's free first, naming A's block, and B's block live. */
/* A decoder over the first segment of `out` (free it, and close *t). */
static ht_tf_dec_t *
seg0_decoder(ht_tfr_t **t)
{
    char err[256];
    ck_assert_int_eq(ht_tfr_open(t, out, err, sizeof err), 0);
    const uint8_t *raw;
    size_t len;
    ck_assert_int_eq(ht_tfr_load(*t, 0, &raw, &len, err, sizeof err), 0);
    ht_tf_dec_t *d = malloc(sizeof *d);
    ck_assert_ptr_nonnull(d);
    ht_tf_dec_init_seg(d, raw, len);
    return d;
}

START_TEST(test_reused_address_across_threads_in_order)
{
    ht_coll_t *c = mk(0);
    ht_coll_src_t *s = src(c, getpid(), getppid(), HT_TF_PROC_ALL);
    uint64_t X = PBASE + 16 * 7;
    ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, 1000000); // A's block at X, an earlier poll
    r.ptr = X;
    r.size = 100;
    r.stack = 1;
    ht_coll_src_feed(c, s, &r);
    // This poll, in the unlucky scan order: B's buffer, then A's.
    r = rec(HT_TF_ALLOC, 8, 3000000); // B: malloc returned X again
    r.ptr = X;
    r.size = 200;
    r.stack = 2;
    ht_coll_src_pend(c, s, &r);
    r = rec(HT_TF_ALLOC, 8, 9000000); // B, after the horizon: waits
    r.ptr = X + 16;
    r.size = 300;
    r.stack = 3;
    ht_coll_src_pend(c, s, &r);
    r = rec(HT_TF_FREE, 7, 2000000); // A: free(X), recorded before the real free
    r.ptr = X;
    ht_coll_src_pend(c, s, &r);
    ht_coll_src_process(c, s, 5000000); // the horizon T of this poll
    ht_coll_src_close(c, s);
    ht_coll_destroy(c);

    summary_t sm;
    check_trace(out, &sm); // every free names a live block, times in order
    ck_assert_uint_eq(sm.allocs, 3);
    ck_assert_uint_eq(sm.frees, 1);
    ck_assert_uint_eq(sm.last_kf_nlive, 2);
    // And the exact sequence: A allocs 100 and frees it right away (a
    // temporary); B allocs 200, then 300 (after the horizon).
    ht_tfr_t *t;
    ht_tf_dec_t *d = seg0_decoder(&t);
    ht_tf_rec_t x;
    char seq[64] = "";
    uint64_t size_of[16] = {0}, tid_of[16] = {0}; // sites name their thread
    while (ht_tf_dec_next(d, &x) == 1) {
        char one[16] = "";
        if (x.kind == HT_TF_SITE && x.id < 16) {
            size_of[x.id] = x.size;
            tid_of[x.id] = x.tid;
        } else if (x.kind == HT_TF_EV_ALLOC && x.site < 16) {
            snprintf(one, sizeof one, "%c+%llu ", tid_of[x.site] == 7 ? 'A' : 'B',
                     (unsigned long long)size_of[x.site]);
        } else if ((x.kind == HT_TF_EV_FREE || x.kind == HT_TF_EV_FREE_TMP) && x.site < 16) {
            snprintf(one, sizeof one, "%c-%llu%s ", tid_of[x.site] == 7 ? 'A' : 'B',
                     (unsigned long long)size_of[x.site], x.kind == HT_TF_EV_FREE_TMP ? "t" : "");
        }
        strncat(seq, one, sizeof seq - strlen(seq) - 1);
    }
    free(d);
    ht_tfr_close(t);
    ck_assert_str_eq(seq, "A+100 A-100t B+200 B+300 ");
}
END_TEST

/* --all: the shim keeps no live table, so it sends frees of pointers it
 * never recorded; the collector drops them without calling them unknown
 * (that warning is for lost allocations), and fills TOTALS' free_bytes
 * with the sizes of the blocks each thread freed. */
START_TEST(test_all_mode_frees_and_totals)
{
    ht_coll_t *c = mk(0);
    ht_coll_src_t *s = src(c, getpid(), getppid(), HT_TF_PROC_ALL);
    uint64_t ts = 1000;
    ht_tf_rec_t r;
    for (int i = 0; i < 3; i++) { // thread 7: three blocks of 100, 200, 300
        r = rec(HT_TF_ALLOC, 7, ts++);
        r.ptr = PBASE + 64 * (uint64_t)i;
        r.size = 100 * (uint64_t)(i + 1);
        r.stack = 1;
        ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    }
    r = rec(HT_TF_FREE, 7, ts++); // allocated before recording: dropped
    r.ptr = PBASE + 4096;
    ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    r = rec(HT_TF_FREE, 7, ts++); // thread 7 frees its 100
    r.ptr = PBASE;
    ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    r = rec(HT_TF_FREE, 8, ts++); // thread 8 frees 7's 300
    r.ptr = PBASE + 128;
    ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    r = rec(HT_TF_FREE, 8, ts++); // and again: a double free, dropped
    r.ptr = PBASE + 128;
    ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    for (uint64_t tid = 7; tid <= 8; tid++) {
        r = rec(HT_TF_TOTALS, tid, ts++);
        r.allocs = tid == 7 ? 3 : 0;
        r.frees = tid == 7 ? 2 : 2;
        r.free_bytes = 0; // what the shim writes in --all mode
        ck_assert_int_eq(ht_coll_src_feed(c, s, &r), 0);
    }
    ht_coll_src_close(c, s);
    ht_coll_destroy(c);

    summary_t sm;
    check_trace(out, &sm);
    ck_assert_uint_eq(sm.allocs, 3);
    ck_assert_uint_eq(sm.frees, 2);
    ht_tfr_t *t;
    ht_tf_dec_t *d = seg0_decoder(&t);
    ht_tf_rec_t x;
    uint64_t fb[2] = {UINT64_MAX, UINT64_MAX};
    int unknown = 0;
    while (ht_tf_dec_next(d, &x) == 1) {
        if (x.kind == HT_TF_TOTALS && (x.tid == 7 || x.tid == 8))
            fb[x.tid - 7] = x.free_bytes;
        unknown += x.kind == HT_TF_UNKNOWN_FREES;
    }
    free(d);
    ht_tfr_close(t);
    ck_assert_uint_eq(fb[0], 100);
    ck_assert_uint_eq(fb[1], 300);
    ck_assert_int_eq(unknown, 0);
}
END_TEST

START_TEST(test_exec_continues_file)
{
    ht_coll_t *c = mk(0);
    pid_t pid = getpid();
    ht_coll_src_t *s1 = src(c, pid, getppid(), HT_TF_PROC_ALL);
    uint64_t ts = 1;
    for (int i = 0; i < 5; i++) {
        ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, ts++);
        r.ptr = PBASE + (uint64_t)i * 16;
        r.size = 10;
        r.stack = 2;
        ht_coll_src_feed(c, s1, &r);
    }
    // exec: same pid, new image
    ht_coll_src_t *s2 = src(c, pid, getppid(), HT_TF_PROC_ALL);
    ck_assert_uint_eq(ht_coll_nactive(c), 1);
    ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, ts++);
    r.ptr = PBASE + 16 * 50;
    r.size = 10;
    r.stack = 2;
    ht_coll_src_feed(c, s2, &r);
    ht_coll_src_close(c, s2);
    ht_coll_destroy(c);
    summary_t sm;
    check_trace(out, &sm);
    ck_assert(sm.exec_seen);
    ck_assert_uint_eq(sm.allocs, 6);
    // The old image's heap went away with it: not a leak of the new one.
    ck_assert_uint_eq(sm.last_kf_nlive, 1);
    struct stat st;
    char p2[160];
    snprintf(p2, sizeof p2, "%s.%d", out, (int)pid);
    ck_assert_int_ne(stat(p2, &st), 0);
}
END_TEST

START_TEST(test_snapshot_files_and_bytes_trigger)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s/snap", dir);
    ht_coll_opts_t o;
    ht_coll_opts_default(&o);
    o.output = out;
    o.quiet = true;
    o.snapshot_prefix = prefix;
    o.snapshot_every = 100000; // bytes of allocation
    ht_coll_t *c;
    ck_assert_int_eq(ht_coll_create(&c, &o), 0);
    ht_coll_src_t *s = src(c, getpid(), getppid(), HT_TF_PROC_ALL);
    uint64_t ts = 1;
    // 50 x 10000 bytes, never freed: a snapshot every 10 allocations.
    for (int i = 0; i < 50; i++) {
        ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, ts++);
        r.ptr = PBASE + (uint64_t)i * 16;
        r.size = 10000;
        r.stack = 9;
        ht_coll_src_feed(c, s, &r);
    }
    ht_coll_src_close(c, s);
    ht_coll_destroy(c);
    summary_t sm;
    check_trace(out, &sm);
    ck_assert_uint_eq(sm.snapshots, 6); // 5 by bytes + exit
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(sm.snap_reason[i], HT_TF_SNAP_BYTES);
    ck_assert_uint_eq(sm.snap_reason[5], HT_TF_SNAP_EXIT);
    // P.N: one-segment traces; snapshot N holds the heap at that moment.
    for (int n = 0; n < 6; n++) {
        char p[200];
        snprintf(p, sizeof p, "%s.%d", prefix, n);
        check_trace(p, &sm);
        ck_assert_uint_eq(sm.nsegs, 1);
        ck_assert_uint_eq(sm.snapshots, (unsigned)n + 1);
        ck_assert_uint_eq(sm.last_kf_nlive, n < 5 ? 10u * (unsigned)(n + 1) : 50u);
        if (n < 5)
            ck_assert_uint_eq(sm.memstats, 1);
        else
            ck_assert(sm.exit_seen);
    }
    char p[200];
    snprintf(p, sizeof p, "%s.6", prefix);
    ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

START_TEST(test_output_exists_is_reported)
{
    FILE *f = fopen(out, "w");
    fputs("precious", f);
    fclose(f);
    ht_coll_t *c = mk(0);
    ht_coll_src_t *s = src(c, getpid(), getppid(), 0);
    ht_tf_rec_t r = rec(HT_TF_ALLOC, 7, 1);
    r.ptr = PBASE;
    r.size = 1;
    ht_coll_src_feed(c, s, &r);
    ht_coll_src_close(c, s);
    ht_coll_stats_t st;
    ht_coll_get_stats(c, &st);
    ck_assert_int_eq(st.write_error, -EEXIST);
    ht_coll_destroy(c);
    char buf[16] = "";
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "precious");
}
END_TEST

START_TEST(test_parse_size)
{
    uint64_t v;
    ck_assert_int_eq(ht_coll_parse_size("123", &v), 0);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(ht_coll_parse_size("64K", &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(ht_coll_parse_size("8M", &v), 0);
    ck_assert_uint_eq(v, 8u << 20);
    ck_assert_int_eq(ht_coll_parse_size("2GiB", &v), 0);
    ck_assert_uint_eq(v, 2ull << 30);
    ck_assert_int_eq(ht_coll_parse_size("", &v), -EINVAL);
    ck_assert_int_eq(ht_coll_parse_size("-1", &v), -EINVAL);
    ck_assert_int_eq(ht_coll_parse_size("12Q", &v), -EINVAL);
    ck_assert_int_eq(ht_coll_parse_size("K", &v), -EINVAL);
    ck_assert_int_eq(ht_coll_parse_size("99999999999999999999", &v), -EINVAL);
    ck_assert_int_eq(ht_coll_parse_size("17179869184G", &v), -EINVAL);
}
END_TEST

Suite *
suite_collector(void)
{
    Suite *s = suite_create("collector");
    TCase *tc = tcase_create("segments");
    tcase_add_checked_fixture(tc, co_setup, co_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_segments_self_contained);
    tcase_add_test(tc, test_fork_inherits_live_set);
    tcase_add_test(tc, test_reused_address_across_threads_in_order);
    tcase_add_test(tc, test_all_mode_frees_and_totals);
    tcase_add_test(tc, test_exec_continues_file);
    tcase_add_test(tc, test_snapshot_files_and_bytes_trigger);
    tcase_add_test(tc, test_output_exists_is_reported);
    tcase_add_test(tc, test_parse_size);
    suite_add_tcase(s, tc);
    return s;
}
