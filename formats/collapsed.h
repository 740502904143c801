/*
 * formats/collapsed.h -- Brendan Gregg's "collapsed stacks" (folded) text
 * format, the input of flamegraph.pl, speedscope and difffolded.pl, and
 * the stack-to-frames expansion the SVG writer shares. Prefix
 * ht_collapsed_.
 *
 * One line per distinct stack:  root;caller;...;leaf VALUE\n
 * Root first; the leaf is the function that called the allocator. Every
 * inlined call site is a frame of its own, outermost first. Frame text is
 * the function name (flamegraph.pl and speedscope merge frames by text);
 * with `lines` set, " (file:line)" is appended when known. Values are
 * rounded to integers after identical collapsed stacks are summed; lines
 * whose value rounds to 0 are omitted. Lines are sorted by stack text, so
 * the output is deterministic.
 */
#ifndef HT_FORMATS_COLLAPSED_H
#define HT_FORMATS_COLLAPSED_H

#include "analyzer/profile.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct ht_collapsed_opts_s {
    int lines; /* append " (file:line)" to frames whose file is known */
} ht_collapsed_opts_t;

/* One frame of an expanded stack: a single (possibly inlined) function. */
typedef struct ht_cframe_s {
    const ht_line_t *line;      /* never NULL: the profile's, or a synthetic one */
    const ht_location_t *loc;   /* the return address this frame belongs to */
    const ht_mapping_t *map;    /* NULL when the address is in no known module */
} ht_cframe_t;

/* Whether `function` is an allocator entry point or one of its internals
 * (malloc, calloc, realloc, free, posix_memalign, operator new/delete,
 * __libc_malloc, ...): such frames are trimmed from the leaf end. */
bool ht_collapsed_is_alloc_fn(const char *function);

/* Expand stack `s` of `p` into frames, ROOT FIRST: locations from the
 * outermost caller to the leaf, and inside one location its lines from the
 * outermost to the innermost inlined function. Allocator frames at the
 * leaf end are dropped (never the last remaining frame). A location
 * without lines yields one synthetic frame named "module+0xOFFSET" or
 * "0xADDRESS"; its text lives in `scratch`, which must outlive the frames
 * (one scratch per stack; reset by each call).
 * The frames array (*frames, capacity *cap) grows as needed and is owned
 * by the caller: start with NULL and 0, free() it when done. Returns the number of frames (0 for an empty
 * stack) or -ENOMEM. */
typedef struct ht_csynth_s {
    ht_line_t line;
    char text[320];
} ht_csynth_t;
typedef struct ht_cscratch_s {
    ht_csynth_t *v;
    size_t cap;
} ht_cscratch_t;
int ht_collapsed_frames(const ht_profile_t *p, const ht_pstack_t *s, ht_cframe_t **frames,
                        size_t *cap, ht_cscratch_t *scratch);
void ht_collapsed_scratch_free(ht_cscratch_t *scratch);

/* Append the text of frame `fr` to buf (sanitized: ';' becomes ':', control
 * characters become ' ', so a frame never splits a line or a stack). With
 * with_line, append " (file:line)" when the file is known ("file" alone if
 * the line is 0). Returns 0 or -ENOMEM. The buffer is a growable,
 * NUL-terminated string: *buf of length *len and capacity *cap. */
int ht_collapsed_frame_text(const ht_cframe_t *fr, int with_line, char **buf, size_t *len,
                            size_t *cap);

/* Write `p` as collapsed stacks for metric m. Returns 0, -ENOMEM, -EINVAL
 * (bad metric), or -EIO when writing to f failed. A profile of
 * differences (negative values) writes negative values as they are;
 * flamegraph.pl ignores those lines: use ht_collapsed_write_pair for a
 * differential graph. */
int ht_collapsed_write(FILE *f, const ht_profile_t *p, ht_metric_t m,
                       const ht_collapsed_opts_t *o);

/* The two-column form of difffolded.pl, "stack BASE NEW", that
 * flamegraph.pl draws as a differential flame graph. Stacks of the two
 * profiles are matched by their collapsed text; a stack present in only one
 * side has 0 on the other. Lines where both values round to 0 are omitted.
 * Returns as ht_collapsed_write. */
int ht_collapsed_write_pair(FILE *f, const ht_profile_t *base, const ht_profile_t *cur,
                            ht_metric_t m, const ht_collapsed_opts_t *o);

#endif /* HT_FORMATS_COLLAPSED_H */
