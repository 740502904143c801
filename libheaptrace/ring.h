/*
 * libheaptrace/ring.h -- the shared-memory ring between the shim (many
 * producer threads inside the traced process) and the collector (one
 * consumer, in `heaptrace record` or in a thread of the process). Prefix
 * ht_ring_.
 *
 * Layout of one ring (a file in the record session's private directory, or
 * an anonymous shared mapping when the shim is preloaded by hand):
 *
 *   ht_ring_hdr_t                      process identity, counters, flags
 *   ht_ring_buf_t  bufs[nbufs]         per-buffer state
 *   uint8_t        data[nbufs][buf_size]
 *   ht_ring_stack_t stacks[stack_cap]  the process-wide stack table
 *   uint64_t       frames[frames_cap]  frame pool the stack table points into
 *
 * Buffers. A producer thread owns one buffer at a time (FREE -> OWNED by a
 * CAS). It appends whole encoded records (formats/trace.h; the first record
 * of every buffer is a BATCH) and after each record publishes the new
 * length with a release store to `committed`. When the buffer cannot take
 * the next record, or its first record is older than HT_RING_MAX_AGE_NS,
 * the thread marks it FULL and claims another. The consumer reads
 * [consumed, committed) of every OWNED or FULL buffer on each poll (it
 * keeps `consumed` and the decoder's timestamp base per buffer in its own
 * memory) and returns a FULL buffer it has read to the end to FREE. Because
 * committed bytes are in shared memory, a process that is SIGKILLed loses
 * nothing it committed: the consumer reads the prefixes after the death.
 *
 * Stacks. Stack ids are indices + 1 into the shared stack table (0 means
 * "no stack"). A producer interns a stack by hashing its frames, probing
 * the table, claiming an EMPTY slot by CAS (-> WRITING), copying the frames
 * into the pool (fetch_add on frames_used) and release-storing READY. An
 * id is only ever written into an event after its slot is READY, so the
 * consumer, which acquires `committed` before reading the event, always
 * finds the frames. A full table or pool yields id 0 (counted).
 *
 * Backing. The ring is a sparse file (or anonymous shared memory): a page
 * is allocated when first touched, and where that fails -- a tmpfs that
 * is full, a container's 64 MiB /dev/shm -- the touch, read or write, is
 * a SIGBUS that kills the program. So the side that formats the ring (the
 * shim) backs every page before it touches it, with MADV_POPULATE_WRITE,
 * which returns an error instead: the header and buffer states at once,
 * a data buffer when first claimed (a buffer that cannot be backed is
 * never used: its events are dropped and counted), a page of the stack
 * table when first probed, the frame pool in 64 KiB steps ahead of use
 * (what cannot be backed makes stack id 0, counted). The consumer only
 * reads what a producer wrote, so never an unbacked page.
 *
 * Waiting. In lossless mode a producer that finds no FREE buffer waits
 * (spin, then sched_yield, then short sleeps), counts the wait, and gives
 * up -- switching the ring to dropping -- when the consumer's heartbeat has
 * not moved for HT_RING_CONSUMER_TIMEOUT_NS: a dead collector must never
 * hang the program. In lossy mode it drops the event at once and counts it.
 * A producer also stops waiting when for HT_RING_STARVE_NS no buffer was
 * FULL: then every buffer is owned by a thread that has not filled it (more
 * threads than buffers, the owners idle), and only the owners' next
 * records can free one. The ring is then starved: an event that finds no
 * FREE buffer and none FULL is dropped (counted) without waiting, until a
 * claim succeeds again.
 */
#ifndef HT_LIBHEAPTRACE_RING_H
#define HT_LIBHEAPTRACE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/trace.h"

#define HT_RING_MAGIC 0x474e495254485448ull /* "HTHTRING" little-endian */
#define HT_RING_VERSION 3 /* 2: ALLOC, ALLOC_W and FREE carry `p` pointers; 3: exe, argv */
/* A thread owns a buffer from its first record on, also while it sleeps:
 * as many buffers as threads, or the rest wait (see Waiting). 4096 of 16
 * KiB: 1024 of 32 KiB let a program with 5,000 threads that each
 * allocated once and waited at a barrier stall for 40 s and lose 31,048
 * events. A buffer's pages are taken only when it is first used. */
#define HT_RING_DEFAULT_NBUFS 4096
#define HT_RING_DEFAULT_BUF_SIZE (16u * 1024u)
/* Waiting this long with no FULL buffer anywhere (nothing the consumer
 * can free: every buffer is owned by a thread that has not filled it) is
 * starvation, not a slow consumer: see Waiting. */
#define HT_RING_STARVE_NS (100u * 1000u * 1000u)
#define HT_RING_DEFAULT_STACK_CAP (1u << 20)
#define HT_RING_DEFAULT_FRAMES_CAP (16u << 20)
#define HT_RING_MAX_AGE_NS (20u * 1000u * 1000u)
#define HT_RING_CONSUMER_TIMEOUT_NS (2ull * 1000 * 1000 * 1000)

/* UNBACKED: its pages could not be allocated (see Backing); never used. */
enum { HT_RING_BUF_FREE = 0, HT_RING_BUF_OWNED = 1, HT_RING_BUF_FULL = 2,
       HT_RING_BUF_UNBACKED = 3 };
enum { HT_RING_STACK_EMPTY = 0, HT_RING_STACK_WRITING = 1, HT_RING_STACK_READY = 2 };
/* ht_ring_hdr_t.state */
enum { HT_RING_STATE_INIT = 0, HT_RING_STATE_LIVE = 1, HT_RING_STATE_EXITED = 2,
       HT_RING_STATE_EXECED = 3 };

typedef struct ht_ring_hdr_s {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t total_size;
    uint32_t nbufs, buf_size;
    uint64_t bufs_off, data_off;
    uint32_t stack_cap, pad0;
    uint64_t stacks_off, frames_off, frames_cap;

    /* identity of the process that writes this ring */
    int32_t pid, ppid;
    uint32_t flags;       /* HT_TF_PROC_* */
    uint32_t max_depth;
    uint64_t sample_rate; /* bytes; 0 with HT_TF_PROC_ALL */
    uint64_t start_ns;    /* CLOCK_MONOTONIC at attach */

    _Atomic uint32_t state;        /* HT_RING_STATE_* */
    _Atomic uint32_t consumer_gone; /* set by a producer that gave up waiting */
    _Atomic uint64_t heartbeat;    /* bumped by the consumer on every poll */
    _Atomic uint64_t stacks_used, frames_used, stacks_dropped;
    _Atomic uint64_t lost_events, waits, wait_ns;
    /* Snapshot requests from outside (heaptrace snapshot PID): the consumer
     * compares with snapshot_done and takes one snapshot per increment. */
    _Atomic uint64_t snapshot_req, snapshot_done;
    /* The image that made the ring, as its shim read it at start: the
     * executable's path and the NUL-separated argv. The collector may
     * find the process only after it exec'd, or gone (/bin/true), where
     * /proc/PID names another image or nothing. */
    uint32_t exe_len, argv_len;
    char exe[HT_TF_MAX_STR], argv[HT_TF_MAX_STR];
} ht_ring_hdr_t;

typedef struct ht_ring_buf_s {
    _Atomic uint32_t state;     /* HT_RING_BUF_* */
    _Atomic uint32_t committed; /* bytes of whole records, release-stored */
    uint32_t tid;
    _Atomic uint32_t backed;    /* its pages are allocated (see Backing) */
} ht_ring_buf_t;

typedef struct ht_ring_stack_s {
    _Atomic uint32_t state; /* HT_RING_STACK_* */
    uint32_t nframes;
    uint64_t hash;
    uint64_t frames_off; /* index into frames[] */
} ht_ring_stack_t;

/* A mapped ring, as either side sees it. The geometry is copied out of
 * the header when the ring is formatted or bound, and only these copies
 * are used afterwards: the header lives in memory the traced program can
 * scribble on, and the collector must not follow it out of bounds. */
/* Pages of the stack table whose backing a formatter tracks one bit each
 * (the default table is 6,144 pages); a bigger table is backed whole. */
#define HT_RING_BACKED_PAGES 8192
typedef struct ht_ring_s {
    ht_ring_hdr_t *hdr;
    ht_ring_buf_t *bufs;
    uint8_t *data;
    ht_ring_stack_t *stacks;
    uint64_t *frames;
    size_t map_size;
    uint32_t nbufs, buf_size, stack_cap;
    uint64_t frames_cap;
    /* Backing, on the side that formatted the ring (0 where it was bound):
     * which pages of the stack table, how many words of the frame pool. */
    int backing;
    int32_t owner;       /* pid that formatted it; 0 where it was bound */
    _Atomic int starved; /* see Waiting; the producers' process only */
    _Atomic uint64_t frames_backed;
    _Atomic uint64_t stack_pages[HT_RING_BACKED_PAGES / 64];
} ht_ring_t;

typedef struct ht_ring_params_s {
    uint32_t nbufs, buf_size, stack_cap;
    uint64_t frames_cap;
} ht_ring_params_t;

/* ---- both sides ---- */

/* The HT_RING_DEFAULT_* geometry. */
void ht_ring_params_default(ht_ring_params_t *p);
/* Bytes a ring with these parameters needs. */
size_t ht_ring_size(const ht_ring_params_t *p);
/* Lay out a new ring in `mem` (zeroed, ht_ring_size bytes) and fill *r;
 * the header and buffer states are backed first (see Backing). 0, or
 * -ENOSPC when they cannot be: the ring must not be used. [init] */
int ht_ring_format(ht_ring_t *r, void *mem, const ht_ring_params_t *p);
/* Map an existing ring from fd (read-write, shared) after checking its
 * magic, version and that every offset lies inside the file. 0 or -errno.
 * [init] */
int ht_ring_map(ht_ring_t *r, int fd);
/* Point *r at a ring already mapped at mem of map_size bytes (checked as
 * above). 0 or -EBADMSG. */
int ht_ring_bind(ht_ring_t *r, void *mem, size_t map_size);
void ht_ring_unmap(ht_ring_t *r);

/* ---- producer side (the shim) ---- */

/* A thread's view of its current buffer; lives in the thread's TLS. */
typedef struct ht_ring_writer_s {
    int32_t buf;       /* owned buffer index, or -1 */
    uint32_t tid;
    uint64_t first_ts; /* timestamp of the buffer's first record */
    ht_tf_enc_t enc;
} ht_ring_writer_t;

/* Make sure the writer owns a buffer with at least `need` free bytes (a
 * BATCH record is written first into a fresh buffer, with pid, tid and
 * ts). Returns 0 or -EAGAIN when the event must be dropped (lossy mode,
 * consumer gone); counts waits and drops in the header. [as-safe]
 * [no-alloc] */
int ht_ring_writer_reserve_slow(ht_ring_t *r, ht_ring_writer_t *w, size_t need, uint64_t ts);
/* Both inline: the shim calls them once or twice an event, and the common
 * case is a compare and a store (out of line they were 3.5% of
 * realloc_parse's time under --all). */
static inline int
ht_ring_writer_reserve(ht_ring_t *r, ht_ring_writer_t *w, size_t need, uint64_t ts)
{
    if (__builtin_expect(w->buf >= 0, 1) && (size_t)(w->enc.end - w->enc.p) >= need &&
        !(ts > w->first_ts && ts - w->first_ts > HT_RING_MAX_AGE_NS))
        return 0;
    return ht_ring_writer_reserve_slow(r, w, need, ts);
}
/* Publish what the writer encoded since the last commit. [as-safe] */
static inline void
ht_ring_writer_commit(ht_ring_t *r, ht_ring_writer_t *w)
{
    if (w->buf < 0)
        return;
    uint32_t len = (uint32_t)(w->enc.p - (r->data + (size_t)(uint32_t)w->buf * r->buf_size));
    atomic_store_explicit(&r->bufs[w->buf].committed, len, memory_order_release);
}
/* Hand the current buffer to the consumer (FULL) and own none. [as-safe] */
void ht_ring_writer_release(ht_ring_t *r, ht_ring_writer_t *w);
/* Intern frames[0..n) (leaf first); returns the stack id, 0 if the table
 * is full. [as-safe] [no-alloc] */
uint64_t ht_ring_stack_intern(ht_ring_t *r, const uint64_t *frames, uint32_t n);
/* Copy every stack of `src` into the fresh ring `dst` (same stack_cap,
 * frames_cap at least as big) at the same ids, touching only the used part
 * of the pool. Used by a forked child so that ids inherited from the parent
 * stay valid in its own ring. 0 or -EINVAL. [init] [no-alloc] */
int ht_ring_stacks_copy(ht_ring_t *dst, const ht_ring_t *src);

/* ---- consumer side (the collector) ---- */

/* Per-buffer read position, in the consumer's own memory. */
typedef struct ht_ring_cursor_s {
    uint32_t consumed;
    uint32_t tid, pid;
    uint64_t last_ts;
} ht_ring_cursor_t;

typedef struct ht_ring_consumer_s {
    ht_ring_t *ring;
    ht_ring_cursor_t *cur; /* nbufs entries, calloc'd by ht_ring_consumer_init */
    uint64_t bad_records;  /* malformed data found in a buffer (then skipped) */
    /* Set by the caller: at most about this many bytes of records per
     * poll (0: no limit), read oldest buffer first. A poll that reads a
     * long backlog whole makes its reader hold all of it at once; with a
     * budget the rest waits in the ring. */
    uint32_t budget;
    /* Set by each poll: no committed record that this poll left unread
     * (cut by the budget, or the rest after the callback asked to stop)
     * has a timestamp below it; UINT64_MAX when the poll read
     * everything committed. A reader that orders records by time may
     * apply those below min(floor, its horizon). */
    uint64_t floor;
    /* Set by each poll: buffers it found in use (owned or full) before
     * reading. Near nbufs, producers are about to wait for us. */
    uint32_t busy;
} ht_ring_consumer_t;

int ht_ring_consumer_init(ht_ring_consumer_t *c, ht_ring_t *r);
void ht_ring_consumer_fini(ht_ring_consumer_t *c);
/* Called once per record, in buffer order; rec->ts is absolute, and
 * rec->pid / rec->tid are filled from the buffer's BATCH for every event
 * (THREAD, THREAD_END and TOTALS keep the tid they carry: the exiting
 * thread writes TOTALS for others). BATCH records are the ring's framing
 * and are not delivered. One thread's records come out in the order it
 * wrote them, across buffers too; different threads interleave by buffer,
 * in the order of the buffers' first records.
 * Return non-zero to stop the poll early. */
typedef int (*ht_ring_rec_cb)(void *ctx, const ht_tf_rec_t *rec);
/* Read the records committed since the last poll (up to the budget),
 * oldest buffer first, bump the heartbeat, free FULL buffers that were read to
 * the end and set floor. Returns the number of records delivered. */
long ht_ring_consume(ht_ring_consumer_t *c, ht_ring_rec_cb cb, void *ctx);
/* Frames of stack `id` (leaf first) or NULL if id is 0, out of range or
 * not READY. Valid as long as the ring stays mapped. */
const uint64_t *ht_ring_stack_get(const ht_ring_t *r, uint64_t id, uint32_t *n);

#endif /* HT_LIBHEAPTRACE_RING_H */
