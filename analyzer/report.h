/*
 * analyzer/report.h -- the human and JSON reports over a profile: the
 * `report` and `leaks` subcommands, and the text helpers `diff` and
 * `snapshots` share. Prefix ht_report_.
 *
 * Text is for people: sizes in KiB/MiB, counts with thousands separators,
 * estimates marked "~" with their error bar in sampled mode. JSON is for
 * programs: one object, exact integers (bytes, counts, nanoseconds),
 * estimates with a separate "_stderr" field.
 */
#ifndef HT_ANALYZER_REPORT_H
#define HT_ANALYZER_REPORT_H

#include "analyzer/profile.h"

#include <stddef.h>
#include <stdio.h>

typedef struct ht_report_opts_s {
    int top;  /* rows per table (default 10) */
    int json; /* one JSON object instead of text */
} ht_report_opts_t;

/* `heaptrace report`: header, totals, top sites by leaked, peak,
 * alloc_space and temporary. `spec` names the input in the output.
 * Returns 0, or -EIO when writing failed. */
int ht_report_write(FILE *f, const ht_profile_t *p, const char *spec, const ht_report_opts_t *o);
/* `heaptrace leaks`: every stack with leaked bytes, largest first, with
 * full symbolized stacks (inlined frames on lines of their own). */
int ht_report_leaks(FILE *f, const ht_profile_t *p, const char *spec, const ht_report_opts_t *o);

/* ---- helpers shared by the text outputs ---- */

/* "123 bytes", "4.0 KiB", "12.3 MiB", "1.5 GiB"; negative values get "-". */
const char *ht_report_size(char *buf, size_t n, double bytes);
/* "1,234,567" (rounded to an integer). */
const char *ht_report_count(char *buf, size_t n, double v);
/* Write s as a JSON string literal (quoted, escaped; invalid UTF-8 bytes
 * become U+FFFD). NULL writes null. */
void ht_report_json_str(FILE *f, const char *s);
/* One stack frame per line, leaf first, every inlined function on its own
 * line: "    function  file:line" (indent spaces before each line). At
 * most max_frames locations (0: all), then "... N more". */
void ht_report_stack(FILE *f, const ht_profile_t *p, const ht_pstack_t *s, int indent,
                     uint32_t max_frames);
/* The stack as a JSON array of frames {function, file, line, address,
 * module, inlined}. */
void ht_report_stack_json(FILE *f, const ht_profile_t *p, const ht_pstack_t *s);
/* "function (file:line)" of the allocation site of s (ht_prof_site_frame). */
const char *ht_report_site(char *buf, size_t n, const ht_profile_t *p, const ht_pstack_t *s);

#endif /* HT_ANALYZER_REPORT_H */
