/* tests/unit/v2enc.h -- hand-written segment streams (format 2) from
 * pointer-based calls: a miniature collector for tests, so a test can say
 * "thread 7 allocated 0x1000, then freed it" and get EV_THREAD, numbered
 * EV_ALLOCs and back-referencing EV_FREEs. Header-only, for the unit tests.
 */
#ifndef HT_TESTS_UNIT_V2ENC_H
#define HT_TESTS_UNIT_V2ENC_H

#include "formats/trace.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define V2_MAX 256
/* Ids a keyframe reserves for LIVE records of pointers the stream never
 * allocated (a keyframe after a gap). */
#define V2_KF_RESERVE 16

typedef struct v2_s {
    ht_tf_enc_t *e;
    uint64_t next_id, kf_spare, kf_spare_end;
    uint64_t tid;
    bool tid_set;
    struct {
        uint64_t ptr, id;
        bool on;
    } map[V2_MAX];
} v2_t;

static inline void
v2_reset(v2_t *v, ht_tf_enc_t *e)
{
    memset(v, 0, sizeof *v);
    v->e = e;
}

static inline int
v2_find(v2_t *v, uint64_t ptr)
{
    for (int i = 0; i < V2_MAX; i++)
        if (v->map[i].on && v->map[i].ptr == ptr)
            return i;
    return -1;
}

static inline void
v2_set(v2_t *v, uint64_t ptr, uint64_t id)
{
    int i = v2_find(v, ptr);
    for (int k = 0; i < 0 && k < V2_MAX; k++)
        if (!v->map[k].on)
            i = k;
    v->map[i].ptr = ptr;
    v->map[i].id = id;
    v->map[i].on = true;
}

/* Start a segment in buf: encoder init and KEYFRAME. */
static inline int
v2_keyframe(v2_t *v, uint8_t *buf, size_t cap, uint64_t ts, uint64_t seq, uint64_t snapshot,
            uint64_t reason)
{
    ht_tf_enc_init_seg(v->e, buf, cap);
    v->tid_set = false;
    v->kf_spare = v->next_id;
    v->next_id += V2_KF_RESERVE;
    v->kf_spare_end = v->next_id;
    return ht_tf_put_keyframe(v->e, ts, seq, snapshot, reason, v->next_id);
}

static inline int
v2_live(v2_t *v, uint64_t ptr, uint64_t size, uint64_t stack, uint64_t weight, uint64_t ts,
        uint64_t tid, uint64_t flags)
{
    int i = v2_find(v, ptr);
    uint64_t id;
    if (i >= 0) {
        id = v->map[i].id;
    } else {
        id = v->kf_spare < v->kf_spare_end ? v->kf_spare++ : 0;
        v2_set(v, ptr, id);
    }
    return ht_tf_put_live(v->e, id, ptr, size, stack, weight, ts, tid, flags);
}

/* The events after this belong to thread tid. */
static inline void
v2_thread(v2_t *v, uint64_t tid)
{
    if (v->tid_set && v->tid == tid)
        return;
    ht_tf_put_ev_thread(v->e, tid);
    v->tid = tid;
    v->tid_set = true;
}

static inline int
v2_alloc(v2_t *v, uint64_t ts, uint64_t ptr, uint64_t size, uint64_t stack, uint64_t weight)
{
    v2_set(v, ptr, v->next_id++);
    return ht_tf_put_ev_alloc(v->e, ts, size, stack, weight);
}

/* A free of a pointer never allocated gets a back-reference to an id that
 * is not live (the id space's start, or before it). */
static inline int
v2_free(v2_t *v, uint64_t ts, uint64_t ptr)
{
    int i = v2_find(v, ptr);
    uint64_t back = v->next_id; // reaches before id 0: never live
    if (i >= 0) {
        back = v->next_id - 1 - v->map[i].id;
        v->map[i].on = false;
    }
    return ht_tf_put_ev_free(v->e, ts, back);
}

#endif /* HT_TESTS_UNIT_V2ENC_H */
