/*
 * formats/svg.h -- a self-contained interactive SVG flame graph of a heap
 * profile (no flamegraph.pl needed). Prefix ht_svg_.
 *
 * Stacks are merged into a tree by frame text (as ht_collapsed_frames
 * expands them: root at the bottom, inlined calls as frames of their own,
 * allocator frames trimmed); siblings are sorted by name; a frame's width
 * is proportional to its metric value. Frames narrower than min_px are
 * omitted, so a huge profile stays a small file.
 *
 * Colors: warm (red to yellow) for the main program, one hue per other
 * module, grey for frames without a module; the shade varies with the
 * function name. In differential mode (ht_svg_write_diff) widths follow
 * the NEW profile and colors the change of each frame: red grew, blue
 * shrank, the deeper the larger the change relative to the largest one.
 *
 * Every frame has a tooltip (<title>): function, module, file:line, the
 * metric and its companion (bytes and objects), share of the total; in
 * differential mode base, new and delta. An embedded script gives
 * click-to-zoom (click a frame; "Reset Zoom" or Esc to go back) and
 * search (the "Search" button, Ctrl-F: a regular expression; matches are
 * highlighted in purple and the matched share of the total is shown). All
 * text is XML-escaped; invalid UTF-8 and control characters are replaced.
 */
#ifndef HT_FORMATS_SVG_H
#define HT_FORMATS_SVG_H

#include "analyzer/profile.h"

#include <stdio.h>

typedef struct ht_svg_opts_s {
    ht_metric_t metric; /* what widths measure (default inuse_space) */
    const char *title;  /* NULL: "Heap flame graph: METRIC" */
    int width;          /* image width in pixels (default 1200, at least 200) */
    double min_px;      /* omit frames narrower than this (default 0.1) */
    int lines;          /* frames per file:line instead of per function */
} ht_svg_opts_t;

void ht_svg_opts_default(ht_svg_opts_t *o);

/* Write p as an SVG flame graph to f. Stacks whose value is not positive
 * are left out (a profile of differences draws its growth only: use
 * ht_svg_write_diff for both directions). o may be NULL for defaults.
 * Returns 0, -EINVAL (bad metric), -ENOMEM, or -EIO when writing failed. */
int ht_svg_write(FILE *f, const ht_profile_t *p, const ht_svg_opts_t *o);

/* A differential flame graph: widths from cur, colors from cur - base per
 * frame (frames matched by their text along the whole path). Returns as
 * ht_svg_write. */
int ht_svg_write_diff(FILE *f, const ht_profile_t *base, const ht_profile_t *cur,
                      const ht_svg_opts_t *o);

#endif /* HT_FORMATS_SVG_H */
