/*
 * tests/unit/main.c -- runs every Check suite. Each tests/unit/test_NAME.c
 * defines `Suite *suite_NAME(void)`; the Makefile lists them in
 * unit_suites.h, so adding a suite is adding a file.
 */
#include <check.h>
#include <stdlib.h>

#define X(fn) Suite *fn(void);
#include "unit_suites.h"
#undef X

int
main(void)
{
    // The symbolizer's disk cache (analyzer/symcache.h) would make the
    // suites depend on earlier runs: off, unless a test turns it on.
    setenv("HEAPTRACE_CACHE_DIR", "off", 0);
    SRunner *sr = srunner_create(NULL);
#define X(fn) srunner_add_suite(sr, fn());
#include "unit_suites.h"
#undef X
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
