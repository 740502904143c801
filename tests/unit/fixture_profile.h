/*
 * tests/unit/fixture_profile.h -- the hand-built profile that the output
 * writers' suites (test_collapsed.c, test_pprof.c, test_svg.c) draw from;
 * prefix fx_. No trace and no symbolizer: every module, location and stack
 * is spelled out in fixture_profile.c.
 *
 * The fixture: an executable with an inlined call, libc, a plugin that
 * could not be symbolized, allocator frames at the leaf end, a name chosen
 * by the suite (one with ';' and a newline, or an XML-hostile one), two
 * call sites in one function, an empty stack.
 */
#ifndef HT_TESTS_UNIT_FIXTURE_PROFILE_H
#define HT_TESTS_UNIT_FIXTURE_PROFILE_H

#include "analyzer/profile.h"

#include <stddef.h>

/* Stack shapes the fixture knows; stack i >= FX_NSHAPES repeats stack 0's. */
#define FX_NSHAPES 8

/* 0 /usr/bin/app (build id abcdef0123456789), 1 libc, 2 libplug.so (not
 * symbolized). */
extern ht_mapping_t fx_maps[3];

/* 0 inner_helper inlined into outer_fn, 1 main, 2 __libc_start_main,
 * 3 malloc, 4 the suite's odd line, 5 an unsymbolized plugin address,
 * 6 operator new, 7 worker at src/w.c:20, 8 worker at src/w.c:22. */
extern ht_location_t fx_locs[9];

/* Fill *p with the fixture's modules and locations and stacks[0..n), each
 * given its frames (leaf first; stack 6 is empty) and every value 0 -- the
 * suite sets the values and any header fields (exe, pid, ...) it needs.
 * *odd is copied into location 4 (the suite's odd function and file name);
 * its strings must outlive the profile.
 * pre: p, stacks and odd are not NULL; n <= UINT32_MAX. */
void fx_profile_init(ht_profile_t *p, ht_pstack_t *stacks, size_t n, const ht_line_t *odd);

#endif /* HT_TESTS_UNIT_FIXTURE_PROFILE_H */
