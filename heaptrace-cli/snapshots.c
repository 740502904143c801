/*
 * heaptrace-cli/snapshots.c -- `heaptrace snapshots`: the snapshots a trace
 * holds, with the heap and RSS at each.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "analyzer/report.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
snapshots_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace snapshots [--json] TRACE\n"
            "\n"
            "List the snapshots in a trace: number, time in seconds since the recording\n"
            "started, why it was taken (interval, bytes, signal, api, exit), the\n"
            "estimated live heap, and the process's RSS from the last memory sample\n"
            "before it. Use a number with diff, report or leaks as TRACE@N.\n"
            "\n"
            "Options:\n"
            "  -j, --json    a JSON array on stdout, exact integers (default: text)\n"
            "  -h, --help    this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace snapshots t.htr\n"
            "  heaptrace diff t.htr@0 t.htr@5\n");
}

int
cmd_snapshots(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            snapshots_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("snapshots", c, argv, longopts, snapshots_usage);
        }
    }
    if ((rc = ht_cli_one_operand("snapshots", "TRACE", argc, snapshots_usage)))
        return rc;
    const char *path = argv[optind];
    ht_an_snap_t *s = NULL;
    size_t n = 0;
    double start_s = 0;
    char err[512] = "";
    rc = ht_an_snapshots(path, &s, &n, &start_s, err, sizeof err);
    if (rc < 0) {
        ht_cli_error("%s", err[0] ? err : strerror(-rc));
        return 1;
    }
    char a[64], b[64];
    if (json) {
        fputc('[', stdout);
        for (size_t i = 0; i < n; i++)
            printf("%s{\"number\":%" PRIu64 ",\"seconds\":%.6f,\"reason\":\"%s\","
                   "\"live_bytes\":%.0f,\"live_objects\":%.0f,\"rss\":%" PRIu64
                   ",\"heap_free\":%" PRIu64 "}",
                   i ? "," : "", s[i].number, s[i].seconds, ht_an_snap_reason(s[i].reason),
                   round(s[i].live_bytes), round(s[i].live_objects), s[i].rss, s[i].heap_free);
        fputs("]\n", stdout);
    } else if (n == 0) {
        printf("%s: no snapshots (record with --snapshot-interval, or run `heaptrace snapshot PID` / call "
               "heaptrace_snapshot() while recording)\n",
               path);
    } else {
        if (start_s > 0)
            printf("(the trace's oldest data was overwritten: it starts at %.2f s)\n", start_s);
        printf("%6s %10s  %-9s %14s %12s %12s\n", "#", "time", "reason", "live heap", "objects",
               "RSS");
        for (size_t i = 0; i < n; i++)
            printf("%6" PRIu64 " %9.2fs  %-9s %14s %12s %12s\n", s[i].number, s[i].seconds,
                   ht_an_snap_reason(s[i].reason), ht_report_size(a, sizeof a, s[i].live_bytes),
                   ht_report_count(b, sizeof b, s[i].live_objects),
                   s[i].rss ? ht_report_size((char[32]){0}, 32, (double)s[i].rss) : "-");
    }
    free(s);
    return ht_cli_finish_stdout("snapshots", 0);
}
