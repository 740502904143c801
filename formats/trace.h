/*
 * formats/trace.h -- THE heaptrace record format, shared by the shim, the
 * collector and the analyzer (prefix ht_tf_).
 *
 * A record is one kind byte followed by its fields. Integer fields are
 * unsigned LEB128 varints; "str" and "bytes" fields are a varint length and
 * that many bytes. Timestamps are CLOCK_MONOTONIC nanoseconds. Inside a
 * batch (a run of records that starts with a BATCH record) every event
 * timestamp is stored as a delta from the previous timestamp in that batch,
 * so the encoder and the decoder each carry the last timestamp.
 *
 * Trace FILES (format version 3) do not use batches: the collector merges
 * every thread into one time-ordered stream per process and writes events
 * without pointers or times. A SITE record defines an allocation site: a
 * (size, stack, weight, allocating thread, flags) tuple, numbered by the
 * collector. EV_ALLOC names the site of a new block, EV_FREE the site of
 * the block it frees (the collector matched the pointer), EV_FREE_TMP the
 * same for a block freed by its own thread with no allocation of that
 * thread in between (heaptrack's "temporary"). Every figure the analyzer
 * reports is a sum over blocks of one site, so blocks of one site are
 * interchangeable, and a keyframe restates the live set as a count per
 * site. Time is carried by TICK records (1 ms): an event happens at the
 * time of the last TICK (or keyframe) before it. Stacks are written once a
 * segment, as STACK_REF when they share callers with a stack the segment
 * already holds (a call tree, as heaptrack stores it). ALLOC, ALLOC_W, FREE,
 * REALLOC and BATCH are the ring's (shim to collector) records only.
 *
 * Everything here is no-alloc and no-stdio: the shim compiles trace_enc.c.
 * The decoder never trusts a length or a count from its input.
 * docs/FORMAT.md specifies every record byte by byte; keep it in step with
 * HT_TF_RECORDS (a test checks that FORMAT.md names every kind).
 */
#ifndef HT_FORMATS_TRACE_H
#define HT_FORMATS_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Bumped on any incompatible change of records, file or segment header. */
#define HT_TF_VERSION 6
/* The oldest version the reader still takes: 5 differs only in its file
 * header (fixed-size strings, data at 4096). */
#define HT_TF_VERSION_MIN 5

/* Segment streams count "d" fields in milliseconds (rings in ns). The
 * collector orders events exactly with the ns times of the ring before it
 * writes them, so the file's times only date events for reports (peak at,
 * snapshot times, growth per hour), where a millisecond is plenty. Finer
 * ticks are noise zstd cannot compress: at 1 us, a 1M malloc+free loop
 * traced to ~280 KB and a sqlite3 session to 2.9 MB; at 1 ms, 9.6 KB and
 * 254 KB (heaptrack: 2.2 KB and 174 KB). The encoder keeps an exact ns base
 * and moves it by whole ticks, so the error never accumulates
 * (docs/FORMAT.md, "d"). */
#define HT_TF_SEG_TICK_NS 1000000u
/* EV_ALLOC, EV_FREE and EV_FREE_TMP are written packed: one byte holding
 * the kind and the site's low 6 bits, then a varint of site >> 6, so the
 * ~8000 sites of a program that allocates random sizes take 2 bytes an
 * event instead of 3 (random-looking bytes are what zstd cannot shrink).
 * Byte values HT_TF_PACKED_BASE and up are these; the decoder returns them
 * as the plain kinds. */
#define HT_TF_PACKED_BASE 0x40u
#define HT_TF_PACKED_KIND(b) ((b) < 0x80u ? HT_TF_EV_ALLOC : (b) < 0xc0u ? HT_TF_EV_FREE : HT_TF_EV_FREE_TMP)

/* Largest site id a file may use: the collector numbers sites densely
 * from 1, and a larger id is corrupt (the analyzer indexes by it). */
#define HT_TF_MAX_SITE (1ull << 31)

/* Most frames a stack may have, in the shim and in the file. */
#define HT_TF_MAX_FRAMES 1024
/* Most segments a module record may describe. */
#define HT_TF_MAX_SEGS 16
/* Longest string (path, name, command line) a record may carry. */
#define HT_TF_MAX_STR 4096
/* Most build-id bytes. */
#define HT_TF_MAX_BUILD_ID 64
/* Largest encoded record of a fixed-size kind (everything but STACK,
 * MODULE, THREAD, PROCESS): 1 kind byte + at most 10 varints of 10 bytes. */
#define HT_TF_MAX_FIXED_REC 112

/* Weights are fixed point: HT_TF_WEIGHT_ONE means "this event stands for
 * exactly one allocation" (--all mode, and ALLOC records). */
#define HT_TF_WEIGHT_SHIFT 16
#define HT_TF_WEIGHT_ONE (1ull << HT_TF_WEIGHT_SHIFT)

/*
 * The record table: X(NAME, code, fields). Field notation, in order:
 *   u  varint, d  timestamp delta (varint, ns since the previous event of
 *   the batch), s  str, b  bytes, F  frame array (varint n, then n varints:
 *   the first ip as is, the others zigzag deltas from the previous ip),
 *   G  segment array (varint n <= HT_TF_MAX_SEGS, then n * {vaddr, memsz,
 *   flags}).
 */
#define HT_TF_RECORDS(X)                                                                \
    X(BATCH, 0x01, "pid:u tid:u ts:u")                                                  \
    X(ALLOC, 0x02, "ts:d ptr:u size:u stack:u")                                         \
    X(ALLOC_W, 0x03, "ts:d ptr:u size:u stack:u weight:u")                              \
    X(FREE, 0x04, "ts:d ptr:u")                                                         \
    X(STACK, 0x05, "id:u frames:F")                                                     \
    X(MODULE, 0x06, "ts:d id:u bias:u path:s build_id:b segs:G")                        \
    X(UNMODULE, 0x07, "ts:d id:u")                                                      \
    X(THREAD, 0x08, "ts:d tid:u name:s")                                                \
    X(THREAD_END, 0x09, "ts:d tid:u")                                                   \
    X(TOTALS, 0x0a, "ts:d tid:u allocs:u alloc_bytes:u frees:u free_bytes:u")           \
    X(EXIT, 0x0b, "ts:d how:u code:u")                                                  \
    X(PROCESS, 0x0c, "ts:d pid:u ppid:u flags:u sample_rate:u max_depth:u exe:s argv:s") \
    X(FORK, 0x0d, "ts:d child:u")                                                       \
    X(LIVE, 0x0e, "site:u count:u")                                                     \
    X(KEYFRAME, 0x0f, "ts:u seq:u snapshot:u reason:u") /* sets the ts base */          \
    X(KEYFRAME_END, 0x10, "nlive:u")                                                    \
    X(LOST, 0x11, "ts:d events:u waits:u wait_ns:u")                                    \
    X(MEMSTAT, 0x12, "ts:d rss:u anon:u file:u shmem:u swap:u heap_free:u heap_total:u") \
    X(SNAPSHOT_REQ, 0x13, "ts:d reason:u")                                              \
    X(EV_ALLOC, 0x14, "site:u")                                                         \
    X(SITE, 0x15, "id:u size:u stack:u weight:u tid:u flags:u")                         \
    X(EV_FREE, 0x16, "site:u")                                                          \
    X(EV_THREAD, 0x17, "tid:u")                                                         \
    X(UNKNOWN_FREES, 0x18, "ts:d frees:u")                                              \
    X(EV_FREE_TMP, 0x19, "site:u")                                                      \
    X(TICK, 0x1a, "ts:d")                                                               \
    X(STACK_REF, 0x1b, "id:u base:u keep:u frames:F")                                   \
    X(REALLOC, 0x1c, "ts:d from:p ptr:p size:u stack:u later:u")

typedef enum ht_tf_kind_e {
#define HT_TF_ENUM(name, code, fields) HT_TF_##name = code,
    HT_TF_RECORDS(HT_TF_ENUM)
#undef HT_TF_ENUM
    HT_TF_KIND_MAX
} ht_tf_kind_t;

/* EXIT.how: the manner in the low two bits; COUNTS_CUT set when the
 * program ended without writing its final TOTALS (killed): the exact
 * counts are then the last ones it wrote, or with --all what the collector
 * counted of its events, whichever is more: lower bounds. */
enum { HT_TF_EXIT_STATUS = 0, HT_TF_EXIT_SIGNAL = 1, HT_TF_EXIT_UNKNOWN = 2,
       HT_TF_EXIT_HOW_MASK = 3, HT_TF_EXIT_COUNTS_CUT = 1u << 2 };
/* PROCESS.flags */
enum { HT_TF_PROC_ALL = 1u << 0, HT_TF_PROC_LOSSY = 1u << 1, HT_TF_PROC_EXEC = 1u << 2,
       HT_TF_PROC_FORKED = 1u << 3 };
/* SITE.flags: blocks a forked child inherited from its parent. */
enum { HT_TF_SITE_INHERITED = 1u << 0 };
/* KEYFRAME.reason and SNAPSHOT_REQ.reason. A keyframe with snapshot == 0
 * only starts a segment; snapshot N >= 1 marks snapshot number N-1. */
enum { HT_TF_SNAP_SEGMENT = 0, HT_TF_SNAP_INTERVAL = 1, HT_TF_SNAP_BYTES = 2,
       HT_TF_SNAP_EXIT = 3, HT_TF_SNAP_SIGNAL = 4, HT_TF_SNAP_API = 5 };
/* MODULE segment flags: PF_X, PF_W, PF_R as in ELF. */

/* Name of a kind ("alloc", "free", ...), or NULL for an unknown code. */
const char *ht_tf_kind_name(unsigned kind);

typedef struct ht_tf_seg_s {
    uint64_t vaddr, memsz, flags;
} ht_tf_seg_t;

/* The addresses a module's segments span at load bias `bias`: [*lo, *hi),
 * both 0 when none does (a segment that wraps, in a damaged or hostile
 * trace, counts for nothing). */
static inline void
ht_tf_segs_range(uint64_t bias, const ht_tf_seg_t *segs, uint32_t n, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l = bias + segs[i].vaddr, h = l + segs[i].memsz;
        if (h < l)
            continue;
        if (l < *lo)
            *lo = l;
        if (h > *hi)
            *hi = h;
    }
    if (*lo >= *hi)
        *lo = *hi = 0;
}

/*
 * One decoded record. Only the fields of its kind are meaningful (for the
 * ring's ALLOC, ALLOC_W and FREE the decoder sets only kind, pid, tid, ts,
 * ptr, size, stack and weight; other fields keep what they held); "ts" is
 * always absolute (the decoder adds deltas), and a record without a time
 * of its own gets the stream's time. Strings and bytes point into
 * the decoder's input and are NOT NUL-terminated.
 */
typedef struct ht_tf_rec_s {
    uint8_t kind;
    uint64_t ts;
    uint64_t pid, tid, ptr, size, stack, weight; /* weight: HT_TF_WEIGHT_ONE = 1 */
    uint64_t id, bias, ppid, flags, sample_rate, max_depth, child;
    uint64_t site, count; /* EV_ALLOC, EV_FREE, EV_FREE_TMP, LIVE; LIVE */
    uint64_t base, keep;  /* STACK_REF */
    uint64_t from, later; /* REALLOC: the block freed at ts, ptr allocated at ts + later */
    uint64_t how, code, seq, snapshot, reason, nlive;
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    uint64_t events, waits, wait_ns;
    uint64_t rss, anon, file, shmem, swap, heap_free, heap_total;
    const uint8_t *str; /* path / name / exe */
    uint32_t str_len;
    const uint8_t *str2; /* argv (NUL-separated) */
    uint32_t str2_len;
    const uint8_t *bytes; /* build_id */
    uint32_t bytes_len;
    uint32_t nframes; /* STACK: frames[] in the decoder, leaf first */
    const uint64_t *frames;
    uint32_t nsegs;
    ht_tf_seg_t segs[HT_TF_MAX_SEGS];
} ht_tf_rec_t;

/* ---- encoder: writes into a caller's buffer, never allocates ---- */

typedef struct ht_tf_enc_s {
    uint8_t *p;       /* next byte to write */
    uint8_t *end;     /* one past the buffer */
    uint64_t last_ts; /* timestamp base for "d" fields */
    uint32_t tick;    /* ns per "d" unit: 1 (rings), HT_TF_SEG_TICK_NS (segments) */
} ht_tf_enc_t;

/* Every put returns 0, or -ENOSPC when the record does not fit; then
 * nothing was written (p is unchanged). [as-safe] [no-alloc] */
void ht_tf_enc_init(ht_tf_enc_t *e, uint8_t *buf, size_t cap);
/* The same for a segment stream: "d" fields in HT_TF_SEG_TICK_NS units. */
void ht_tf_enc_init_seg(ht_tf_enc_t *e, uint8_t *buf, size_t cap);
int ht_tf_put_batch(ht_tf_enc_t *e, uint64_t pid, uint64_t tid, uint64_t ts);
int ht_tf_put_alloc(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr, uint64_t size, uint64_t stack,
                    uint64_t weight);  /* weight == HT_TF_WEIGHT_ONE writes ALLOC, else ALLOC_W */
int ht_tf_put_free(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr);
int ht_tf_put_realloc(ht_tf_enc_t *e, uint64_t ts, uint64_t from, uint64_t ptr, uint64_t size,
                      uint64_t stack, uint64_t later);

/* ALLOC/ALLOC_W and FREE for the shim's hot path: the same bytes as
 * ht_tf_put_alloc and ht_tf_put_free, into a ring buffer (tick 1) that
 * has HT_TF_MAX_FIXED_REC bytes free -- ht_ring_writer_reserve said so --
 * so no field is checked for room and nothing is rolled back. [as-safe] */
static inline uint8_t *
ht_tf_vput(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
/* A `p` field (docs/FORMAT.md): a pointer as 6 bytes, little-endian --
 * one store where its 7-byte varint was a loop of seven, the hottest of
 * the ring's encoders and decoders. The 6-byte value HT_TF_P_ESC means a
 * `u` of the whole pointer follows: no malloc of x86-64 Linux returns one
 * that high (user space ends at 2^47 unless a program asks mmap for more
 * with a hint). Writes up to 8 bytes where it advances 6: the caller has
 * reserved a whole HT_TF_MAX_FIXED_REC. */
#define HT_TF_P_ESC 0xffffffffffffull
static inline uint8_t *
ht_tf_pput(uint8_t *p, uint64_t v)
{
    uint64_t w = v < HT_TF_P_ESC ? v : HT_TF_P_ESC;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    __builtin_memcpy(p, &w, 8);
#else
    for (int i = 0; i < 6; i++)
        p[i] = (uint8_t)(w >> (8 * i));
#endif
    if (__builtin_expect(v < HT_TF_P_ESC, 1))
        return p + 6;
    return ht_tf_vput(p + 6, v);
}
static inline uint8_t *
ht_tf_dput(ht_tf_enc_t *e, uint8_t *p, uint64_t ts)
{
    uint64_t d = ts > e->last_ts ? ts - e->last_ts : 0; // as enc_d: clamped
    e->last_ts += d;
    return ht_tf_vput(p, d);
}
static inline void
ht_tf_put_alloc_reserved(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr, uint64_t size,
                         uint64_t stack, uint64_t weight)
{
    uint8_t *p = e->p;
    int exact = weight == HT_TF_WEIGHT_ONE;
    *p++ = exact ? HT_TF_ALLOC : HT_TF_ALLOC_W;
    p = ht_tf_dput(e, p, ts);
    p = ht_tf_pput(p, ptr);
    p = ht_tf_vput(p, size);
    p = ht_tf_vput(p, stack);
    if (!exact)
        p = ht_tf_vput(p, weight);
    e->p = p;
}
/* A moving or in-place realloc of --all: `from` freed at ts, `ptr`
 * allocated `later` ns after it -- one record where FREE and ALLOC were
 * two (and two passes through the ring writer and the collector). */
static inline void
ht_tf_put_realloc_reserved(ht_tf_enc_t *e, uint64_t ts, uint64_t from, uint64_t ptr,
                           uint64_t size, uint64_t stack, uint64_t later)
{
    uint8_t *p = e->p;
    *p++ = HT_TF_REALLOC;
    p = ht_tf_dput(e, p, ts);
    p = ht_tf_pput(p, from);
    p = ht_tf_pput(p, ptr);
    p = ht_tf_vput(p, size);
    p = ht_tf_vput(p, stack);
    e->p = ht_tf_vput(p, later);
}
static inline void
ht_tf_put_free_reserved(ht_tf_enc_t *e, uint64_t ts, uint64_t ptr)
{
    uint8_t *p = e->p;
    *p++ = HT_TF_FREE;
    p = ht_tf_dput(e, p, ts);
    e->p = ht_tf_pput(p, ptr);
}

int ht_tf_put_stack(ht_tf_enc_t *e, uint64_t id, const uint64_t *frames, uint32_t n);
/* Stack id = frames (leaf first) followed by the last `keep` frames of
 * stack `base` (its root side): a stack that shares its callers with one
 * written before costs only its own frames. */
int ht_tf_put_stack_ref(ht_tf_enc_t *e, uint64_t id, uint64_t base, uint64_t keep,
                        const uint64_t *frames, uint32_t n);
int ht_tf_put_module(ht_tf_enc_t *e, uint64_t ts, uint64_t id, uint64_t bias, const char *path,
                     uint32_t path_len, const uint8_t *build_id, uint32_t build_id_len,
                     const ht_tf_seg_t *segs, uint32_t nsegs);
int ht_tf_put_unmodule(ht_tf_enc_t *e, uint64_t ts, uint64_t id);
int ht_tf_put_thread(ht_tf_enc_t *e, uint64_t ts, uint64_t tid, const char *name,
                     uint32_t name_len);
int ht_tf_put_thread_end(ht_tf_enc_t *e, uint64_t ts, uint64_t tid);
int ht_tf_put_totals(ht_tf_enc_t *e, uint64_t ts, uint64_t tid, uint64_t allocs,
                     uint64_t alloc_bytes, uint64_t frees, uint64_t free_bytes);
int ht_tf_put_exit(ht_tf_enc_t *e, uint64_t ts, uint64_t how, uint64_t code);
int ht_tf_put_process(ht_tf_enc_t *e, uint64_t ts, uint64_t pid, uint64_t ppid, uint64_t flags,
                      uint64_t sample_rate, uint64_t max_depth, const char *exe,
                      uint32_t exe_len, const char *argv, uint32_t argv_len);
int ht_tf_put_fork(ht_tf_enc_t *e, uint64_t ts, uint64_t child);
int ht_tf_put_live(ht_tf_enc_t *e, uint64_t site, uint64_t count);
int ht_tf_put_keyframe(ht_tf_enc_t *e, uint64_t ts, uint64_t seq, uint64_t snapshot,
                       uint64_t reason);
/* Segment events (format 3). */
int ht_tf_put_site(ht_tf_enc_t *e, uint64_t id, uint64_t size, uint64_t stack, uint64_t weight,
                   uint64_t tid, uint64_t flags);
int ht_tf_put_ev_alloc(ht_tf_enc_t *e, uint64_t site);
/* temporary: EV_FREE_TMP instead of EV_FREE. */
int ht_tf_put_ev_free(ht_tf_enc_t *e, uint64_t site, int temporary);
/* Move the stream's time to ts: a TICK when ts is at least one tick past
 * the base, nothing otherwise (0 either way unless it does not fit). */
int ht_tf_put_tick(ht_tf_enc_t *e, uint64_t ts);
int ht_tf_put_ev_thread(ht_tf_enc_t *e, uint64_t tid);
int ht_tf_put_unknown_frees(ht_tf_enc_t *e, uint64_t ts, uint64_t frees);
int ht_tf_put_keyframe_end(ht_tf_enc_t *e, uint64_t nlive);
int ht_tf_put_lost(ht_tf_enc_t *e, uint64_t ts, uint64_t events, uint64_t waits,
                   uint64_t wait_ns);
int ht_tf_put_memstat(ht_tf_enc_t *e, uint64_t ts, uint64_t rss, uint64_t anon, uint64_t file,
                      uint64_t shmem, uint64_t swap, uint64_t heap_free, uint64_t heap_total);
int ht_tf_put_snapshot_req(ht_tf_enc_t *e, uint64_t ts, uint64_t reason);
/* Copy one decoded record back out (the collector re-encodes what it
 * reads). Timestamps are re-based on e->last_ts. */
int ht_tf_put_rec(ht_tf_enc_t *e, const ht_tf_rec_t *r);

/* ---- decoder: bounds-checked, never trusts its input ---- */

typedef struct ht_tf_dec_s {
    const uint8_t *p, *end;
    uint64_t last_ts;
    uint32_t tick; /* ns per "d" unit, as in ht_tf_enc_t */
    uint64_t frames[HT_TF_MAX_FRAMES]; /* STACK records decode here */
} ht_tf_dec_t;

void ht_tf_dec_init(ht_tf_dec_t *d, const uint8_t *buf, size_t len);
/* A segment stream: "d" fields in HT_TF_SEG_TICK_NS units. */
void ht_tf_dec_init_seg(ht_tf_dec_t *d, const uint8_t *buf, size_t len);
/* Decode the next record into *r. Returns 1 for a record, 0 at the clean
 * end of the input, -EBADMSG for a malformed or truncated record (d->p is
 * then left at the start of the bad record). */
int ht_tf_dec_next(ht_tf_dec_t *d, ht_tf_rec_t *r);

/* ---- varint primitives (also used by the file and segment headers) ---- */

/* Bytes needed for v as a varint (1..10). */
unsigned ht_tf_varint_len(uint64_t v);
/* Write v at p (caller checked room); returns bytes written. */
unsigned ht_tf_varint_write(uint8_t *p, uint64_t v);
/* Read a varint from [*pp, end); returns 0 and advances *pp, or -EBADMSG. */
int ht_tf_varint_read(const uint8_t **pp, const uint8_t *end, uint64_t *v);

static inline uint64_t
ht_tf_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
ht_tf_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif /* HT_FORMATS_TRACE_H */
