/*
 * heaptrace-cli/report.c -- `heaptrace report`: totals, peak, exit and the
 * top allocation sites of a trace or snapshot.
 */
#include "heaptrace-cli/cmd.h"

#include "analyzer/analyze.h"
#include "analyzer/report.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
report_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace report [--top N] [--json] SPEC\n"
            "\n"
            "Summarize a trace: the program, how long it ran and how it ended, whether\n"
            "the figures are exact or sampled estimates; exact totals of every\n"
            "allocation and free; the live heap at the end, its peak and when it\n"
            "happened, what leaked; then the top allocation sites by bytes leaked, by\n"
            "bytes live at the peak, by bytes allocated and by temporary allocations,\n"
            "each with its file:line and its callers. In sampled mode every estimate\n"
            "carries its standard error. SPEC is a trace (t.htr), a snapshot in it\n"
            "(t.htr@N) or a snapshot file.\n"
            "\n"
            "Options:\n"
            "  -n, --top N   rows in each table (default 10)\n"
            "  -j, --json    one JSON object on stdout, exact integers (default: text)\n"
            "  -h, --help    this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace report t.htr\n"
            "  heaptrace report --top 25 t.htr@3\n"
            "  heaptrace report --json t.htr | jq .totals\n");
}

/* Parse a --top value: a non-negative integer. */
int ht_cli_parse_top(const char *s, int *out);

int
ht_cli_parse_top(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

int
cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_report_opts_t ro = {.top = 10, .json = 0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (ht_cli_parse_top(optarg, &ro.top) < 0) {
                ht_cli_error("report: --top wants a number >= 0, not '%s'", optarg);
                report_usage(stderr);
                return 2;
            }
            break;
        case 'j':
            ro.json = 1;
            break;
        case 'h':
            report_usage(stdout);
            return 0;
        case ':':
            ht_cli_error("report: option '%s' needs a value", argv[optind - 1]);
            report_usage(stderr);
            return 2;
        default:
            ht_cli_error("report: unknown option '%s'", argv[optind - 1]);
            report_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        ht_cli_error("report: %s", argc == optind ? "no SPEC given" : "one SPEC only");
        report_usage(stderr);
        return 2;
    }
    const char *spec = argv[optind];
    ht_an_opts_t ao;
    ht_an_opts_default(&ao);
    ao.progress = isatty(STDERR_FILENO);
    ht_profile_t *p = NULL;
    char err[512] = "";
    int rc = ht_an_profile_load(spec, &ao, &p, err, sizeof err);
    if (rc < 0) {
        ht_cli_error("%s", err[0] ? err : strerror(-rc));
        return 1;
    }
    rc = ht_report_write(stdout, p, spec, &ro);
    ht_prof_destroy(p);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0) {
        ht_cli_error("report: %s", rc == -EIO ? "cannot write the output" : strerror(-rc));
        return 1;
    }
    return 0;
}
