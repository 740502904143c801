/*
 * analyzer/replay.h -- replays a trace's records into per-site and
 * per-thread heap figures. Prefix ht_rp_.
 *
 * The reader (reader.h) drives it in two kinds of calls:
 *   - identity, in FILE order while a segment is decoded: which process
 *     image a pid currently is (ht_rp_proc), and the records that define
 *     names rather than events (ht_rp_ident: STACK, PROCESS, FORK). Stack
 *     definitions are immutable per process image, so applying them before
 *     the time-ordered events of the segment is always right, and an
 *     allocation in thread B may use a stack id that thread A's batch
 *     defined in a batch flushed later.
 *   - state, in TIME order: keyframes (ht_rp_keyframe*) and events
 *     (ht_rp_event).
 *
 * Memory is bounded by the sites (the trace's: one per distinct (size,
 * stack, thread); the replay's: one per distinct (process image, stack id,
 * module-map epoch [, thread])) and the stack definitions -- never by the
 * trace's length, nor by the number of live blocks: the trace counts live
 * blocks per site.
 *
 * A "site" keys on the module-map epoch: the epoch advances whenever a
 * module is loaded over an address range another module occupied before
 * (dlclose + dlopen at the same place, exec), so each site's addresses are
 * later resolved with the map that was in force when it allocated.
 *
 * Peak: the figures of every site at the moment the total estimated live
 * heap was largest. Capturing them eagerly would cost O(sites) at each new
 * peak (a growing heap makes a new peak at nearly every allocation). We
 * keep them lazily instead: a global peak version advances at each new
 * peak, and a cell (site or thread) whose version is older than the
 * current one has not changed since that peak, so its live value IS its
 * value at the peak. Before a cell changes it saves its live value as its
 * peak value if its version is older, then takes the current version.
 * O(1) an event, exact, no second pass.
 *
 * Values: objects are in HT_TF_WEIGHT_ONE fixed point, bytes are integers
 * (size * weight, rounded once per allocation). A free subtracts exactly
 * the integers its allocation added, so an exact trace that frees
 * everything ends at exactly 0 and modular arithmetic keeps even hostile
 * values consistent (never a crash, at worst a meaningless figure).
 */
#ifndef HT_ANALYZER_REPLAY_H
#define HT_ANALYZER_REPLAY_H

#include "formats/trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_RP_NONE UINT32_MAX

typedef struct ht_rp_cell_s {
    uint64_t alloc_o, alloc_b; /* allocations in the window */
    uint64_t live_o, live_b;   /* live now */
    uint64_t peak_o, peak_b;   /* live at the peak; see the version rule above */
    uint64_t temp_o, temp_b;   /* freed right after they were made */
    uint64_t leak_o, leak_b;   /* live at exit (set at the EXIT or at the end) */
    uint64_t peak_ver;
} ht_rp_cell_t;

typedef struct ht_rp_site_s {
    ht_rp_cell_t c;
    uint64_t stack; /* stack id as recorded */
    uint64_t tid;   /* 0 unless opts.per_thread */
    uint32_t proc;
    uint32_t epoch;
} ht_rp_site_t;

typedef struct ht_rp_thread_s {
    ht_rp_cell_t c;
    uint64_t tid;
    char *name;          /* from THREAD records, NULL if none */
    uint32_t proc;
    uint64_t totals_ts;  /* TOTALS: the latest cumulative figures */
    uint64_t allocs, alloc_bytes, frees, free_bytes;
} ht_rp_thread_t;

typedef struct ht_rp_module_s {
    uint32_t proc;
    uint32_t epoch_from; /* valid for sites of this epoch and later... */
    uint32_t unloaded;   /* 1 after its UNMODULE (it still names older sites) */
    uint64_t id, bias;
    uint64_t lo, hi;     /* runtime range [lo, hi) of its segments */
    uint64_t load_ts;
    char *path;
    uint8_t build_id[HT_TF_MAX_BUILD_ID];
    uint32_t build_id_len;
    uint32_t nsegs;
    ht_tf_seg_t segs[HT_TF_MAX_SEGS];
} ht_rp_module_t;

typedef struct ht_rp_proc_s {
    uint64_t pid;
    uint32_t parent;     /* proc it was forked from, HT_RP_NONE */
    uint32_t fork_epoch; /* the parent's modules up to this epoch are ours too */
    uint64_t ppid, flags, sample_rate;
    char *exe, *argv;    /* from its PROCESS record, NULL if none */
    bool exited;
    bool counts_cut;     /* EXIT says its TOTALS stop short of its end */
    uint32_t exit_how, exit_code;
    uint64_t exit_ts;
} ht_rp_proc_t;

typedef struct ht_rp_snap_s {
    uint64_t number, ts, reason, seq;
    uint64_t live_o, live_b; /* estimated live heap at the snapshot */
    uint64_t rss, heap_free, memstat_ts; /* last MEMSTAT before it; 0 if none */
} ht_rp_snap_t;

/* Anomalies, counted and reported, never fatal. */
typedef struct ht_rp_counts_s {
    uint64_t events;          /* timestamped events replayed */
    uint64_t allocs, frees;   /* recorded (sampled) allocation events */
    uint64_t bad_sites;       /* SITE ids out of range or redefined, events of undefined sites */
    uint64_t unknown_frees;   /* free of a site with no block live */
    uint64_t untracked_frees; /* UNKNOWN_FREES: frees the collector found no allocation for */
    uint64_t bad_weights;     /* weight 0 or absurd, clamped */
    uint64_t lost_events, lost_waits, lost_wait_ns; /* from LOST records */
    uint64_t reseeds;         /* keyframes that replaced the live set */
    uint64_t stray_records;   /* records out of place (LIVE outside a keyframe...) */
} ht_rp_counts_t;

typedef struct ht_rp_s {
    int per_thread;
    /* Called with each module image the replay meets, as it meets it (a
     * symbolizer can start reading it while the replay goes on). */
    void (*on_module)(void *ctx, const struct ht_rp_module_s *m);
    void *on_module_ctx;

    ht_rp_site_t *sites;
    uint32_t nsites, cap_sites;
    ht_rp_thread_t *threads;
    uint32_t nthreads, cap_threads;
    ht_rp_module_t *mods;
    uint32_t nmods, cap_mods;
    ht_rp_proc_t *procs;
    uint32_t nprocs, cap_procs;
    ht_rp_snap_t *snaps;
    uint32_t nsnaps, cap_snaps;

    uint32_t epoch;
    uint64_t peak_ver;
    uint64_t total_o, total_b; /* live now, all sites */
    uint64_t peak_b, peak_o, peak_ts;
    uint64_t first_ts, last_ts; /* of the state: keyframes and events */
    uint64_t rss, anon, heap_free, heap_total, memstat_ts;
    bool exited;               /* the main process's EXIT was seen */
    bool counts_cut;           /* ... and its TOTALS stop short of it */
    uint32_t exit_how, exit_code;
    uint64_t exit_ts;
    uint64_t main_pid;         /* the file's pid; its first image is "main" */
    ht_rp_counts_t n;

    void *impl; /* hash tables, stack store */
} ht_rp_t;

/* A replay for a trace of process main_pid; NULL on out of memory. */
ht_rp_t *ht_rp_create(uint64_t main_pid, int per_thread);
void ht_rp_destroy(ht_rp_t *rp);

/* The current process image of pid, created on first sight. Returns its
 * index, or HT_RP_NONE when out of memory. [file order] */
uint32_t ht_rp_proc(ht_rp_t *rp, uint64_t pid);
/* A STACK, PROCESS or FORK record of process image `proc`, in file order.
 * Returns the image later records of the same batch belong to (a PROCESS
 * record of an exec starts a new image), or HT_RP_NONE on out of memory. */
uint32_t ht_rp_ident(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r);

/* A segment's KEYFRAME. With reseed (first segment, or something was lost
 * before it) the keyframe's contents replace the live set and the module
 * map; otherwise they restate what the replay already knows and only
 * their names and totals are taken. */
void ht_rp_keyframe(ht_rp_t *rp, const ht_tf_rec_t *kf, uint64_t seq, bool reseed);
/* A record inside the keyframe (MODULE, THREAD, LIVE, TOTALS, ...);
 * `proc` is the image the segment belongs to. Returns 0 or -ENOMEM. */
int ht_rp_keyframe_rec(ht_rp_t *rp, uint32_t proc, const ht_tf_rec_t *r);
/* KEYFRAME_END: records the snapshot, if the keyframe was one. */
int ht_rp_keyframe_end(ht_rp_t *rp, const ht_tf_rec_t *r);
/* One timestamped event of thread tid of image proc, in time order.
 * Returns 0 or -ENOMEM. */
int ht_rp_event(ht_rp_t *rp, uint32_t proc, uint64_t tid, const ht_tf_rec_t *r);
/* A run of a segment's hot records, decoded and applied in place: from
 * *pp, every EV_ALLOC, EV_FREE, EV_FREE_TMP, TICK (ticks of `tick` ns,
 * moving *ts) and EV_THREAD (setting *tid) up to the first other record
 * or end. Advances *pp past them; returns how many, or -EBADMSG with *pp
 * at the malformed one. */
long ht_rp_event_run(ht_rp_t *rp, uint32_t proc, const uint8_t **pp, const uint8_t *end,
                     uint64_t tick, uint64_t *ts, uint64_t *tid);
/* A TICK: the stream's time moved to ts (the window grows with it). */
void ht_rp_tick(ht_rp_t *rp, uint64_t ts);
/* Make the figures of every site and thread cell current (they are sums
 * over the trace's sites, made on demand). ht_rp_finish calls it. */
void ht_rp_sync(ht_rp_t *rp);
/* End of input: sets leaked figures when no exit was seen. */
void ht_rp_finish(ht_rp_t *rp);

/* The frames of stack `id` as seen from image `proc` (a forked child sees
 * its parent's stacks), leaf first. Returns false when never defined. */
bool ht_rp_stack_frames(const ht_rp_t *rp, uint32_t proc, uint64_t id, const uint64_t **frames,
                        uint32_t *n);
/* The module that held address `addr` for sites of image `proc` in epoch
 * `epoch`, or HT_RP_NONE. */
uint32_t ht_rp_module_at(const ht_rp_t *rp, uint32_t proc, uint32_t epoch, uint64_t addr);
/* The value of a cell's peak figures (applying the version rule). */
void ht_rp_cell_peak(const ht_rp_t *rp, const ht_rp_cell_t *c, uint64_t *objs, uint64_t *bytes);

#endif /* HT_ANALYZER_REPLAY_H */
