/*
 * analyzer/profile_build.h -- building an ht_profile_t (profile.h) piece by
 * piece. Used by the analyzer (analyze.c: from a replay) and by diff.c
 * (from two profiles); tests use it to make small profiles by hand.
 * Implemented in profile.c. Prefix ht_pb_.
 *
 * Everything the builder hands out (strings, lines) is owned by the
 * profile it finally produces; ht_prof_destroy() frees it all at once.
 * Indices stay valid across calls; pointers into the growing tables
 * (ht_pb_stack_v, ht_pb_thread) stay valid only until the next add.
 */
#ifndef HT_ANALYZER_PROFILE_BUILD_H
#define HT_ANALYZER_PROFILE_BUILD_H

#include "analyzer/profile.h"

typedef struct ht_pb_s ht_pb_t;

/* A new, empty builder; NULL on out of memory. */
ht_pb_t *ht_pb_create(void);
/* Drop a builder that will not be finished (error paths). NULL is fine. */
void ht_pb_destroy(ht_pb_t *b);
/* The profile under construction: set its scalar fields (pid, sampled,
 * times, ...) directly. Its tables are filled by ht_pb_finish(). */
ht_profile_t *ht_pb_profile(ht_pb_t *b);

/* A copy of s[0..len) with a NUL, owned by the profile; identical strings
 * are stored once. NULL only on out of memory (s NULL gives NULL too). */
const char *ht_pb_strn(ht_pb_t *b, const char *s, size_t len);
const char *ht_pb_str(ht_pb_t *b, const char *s);

/* Add a mapping; returns its index + 1 (what ht_location_t.mapping holds),
 * 0 on out of memory. Strings are copied. */
uint32_t ht_pb_map(ht_pb_t *b, uint64_t start, uint64_t limit, uint64_t offset,
                   const char *path, const char *build_id, int symbolized);
/* Find or add the location {address, mapping, lines[0..n)} (lines
 * innermost first; their strings are copied). Identical locations are
 * stored once. Returns 0 and the index in *idx, or -ENOMEM. */
int ht_pb_loc(ht_pb_t *b, uint64_t address, uint32_t mapping, const ht_line_t *lines, uint32_t n,
              uint32_t *idx);
/* Find or add the stack locs[0..n) (leaf first) of thread tid (0: merged).
 * Returns 0 and its index in *idx, or -ENOMEM. */
int ht_pb_stack(ht_pb_t *b, const uint32_t *locs, uint32_t n, uint64_t tid, uint32_t *idx);
/* The metric values of stack idx, to add to. */
double *ht_pb_stack_v(ht_pb_t *b, uint32_t idx);
/* Find or add the thread tid; NULL on out of memory. */
ht_pthread_t *ht_pb_thread(ht_pb_t *b, uint64_t tid);

/* Finish: lay the tables out, drop stacks whose values are all zero when
 * drop_empty, and set p->v[] to the sums over stacks. The builder is
 * consumed (also on failure). Returns 0 and *out, or -ENOMEM. */
int ht_pb_finish(ht_pb_t *b, int drop_empty, ht_profile_t **out);

/*
 * Index into s->locs of the frame that names an allocation site for a
 * human: the first frame that is not part of an allocator or of the
 * language runtime (operator new, strdup, std::allocator, g_malloc, frames
 * in libc/libstdc++ ...), so `std::vector::push_back -> operator new ->
 * malloc` is reported at the user's push_back call. 0 when every frame is
 * an allocator frame, or the stack is empty.
 */
uint32_t ht_prof_site_frame(const ht_profile_t *p, const ht_pstack_t *s);

#endif /* HT_ANALYZER_PROFILE_BUILD_H */
