/*
 * heaptrace-cli/report.c -- `heaptrace report`: totals, peak, exit and the
 * top allocation sites of a trace or snapshot.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/report.h"

#include <stdio.h>

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

int
cmd_report(int argc, char **argv)
{
    return ht_cli_report_run("report", argc, argv, 10, report_usage, ht_report_write);
}
