/*
 * formats/pprof.h -- a heap profile in pprof's profile.proto, gzipped, for
 * `go tool pprof` and every tool that reads it. Prefix ht_pprof_.
 *
 * What is written (github.com/google/pprof/proto/profile.proto):
 *   sample_type   alloc_objects/count, alloc_space/bytes,
 *                 inuse_objects/count, inuse_space/bytes -- in that order,
 *                 the layout of Go's heap profiles
 *   sample        one per profile stack with any non-zero value; values
 *                 are the stack's estimates rounded to integers (negative
 *                 in a profile of differences); location ids leaf first,
 *                 allocator frames at the leaf end trimmed as in
 *                 ht_collapsed_frames; a "thread" numeric label when the
 *                 profile keeps threads apart
 *   mapping       every module: id = index + 1, memory start/limit, file
 *                 offset, path, build id, has_functions (symbolized),
 *                 has_filenames/has_line_numbers/has_inline_frames as found
 *   location      every location a sample uses: id = profile index + 1,
 *                 mapping id, address, one Line per (inlined) function,
 *                 innermost first
 *   function      deduplicated by (name, file)
 *   period_type   space/bytes; period = the mean sampling distance in
 *                 sampled mode, 1 in exact mode
 *   time_nanos, duration_nanos, comments (tool, program, mode), and
 *   default_sample_type (inuse_space unless the options say otherwise).
 *
 * The encoder is our own (varints, length-delimited fields, packed
 * repeated scalars); gzip comes from zlib.
 */
#ifndef HT_FORMATS_PPROF_H
#define HT_FORMATS_PPROF_H

#include "analyzer/profile.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ht_pprof_opts_s {
    /* The sample type pprof shows by default: HT_M_ALLOC_OBJECTS,
     * HT_M_ALLOC_SPACE, HT_M_INUSE_OBJECTS or HT_M_INUSE_SPACE. */
    ht_metric_t default_sample;
    int gzip_level; /* zlib level 0-9, or -1 for zlib's default */
} ht_pprof_opts_t;

void ht_pprof_opts_default(ht_pprof_opts_t *o);

/* Encode p as an uncompressed profile.proto message into a new malloc'ed
 * buffer (*out, *len; the caller frees it). o may be NULL for defaults.
 * Returns 0, -EINVAL (default_sample is not one of the four sample types)
 * or -ENOMEM. */
int ht_pprof_encode(const ht_profile_t *p, const ht_pprof_opts_t *o, uint8_t **out,
                    size_t *len);

/* Encode and gzip p to f. Returns 0, -EINVAL, -ENOMEM, or -EIO when
 * writing failed. Does not close f. */
int ht_pprof_write(FILE *f, const ht_profile_t *p, const ht_pprof_opts_t *o);

/* ht_pprof_write to a new file at path (created or truncated, mode 0666 &
 * ~umask); on failure the partial file is removed. "-" writes to stdout.
 * Returns 0 or -errno. */
int ht_pprof_write_file(const char *path, const ht_profile_t *p, const ht_pprof_opts_t *o);

#endif /* HT_FORMATS_PPROF_H */
