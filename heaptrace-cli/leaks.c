/*
 * heaptrace-cli/leaks.c -- `heaptrace leaks`: what was never freed, by
 * stack, with every frame's function and file:line.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/report.h"

#include <stdio.h>

static void
leaks_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace leaks [--top N] [--json] SPEC\n"
            "\n"
            "List the memory the program never freed, grouped by the stack that\n"
            "allocated it, largest first, with the full stack: every frame's function\n"
            "and file:line, inlined functions on lines of their own. For a trace that\n"
            "holds the program's exit these are the leaks; otherwise (still running, or\n"
            "SPEC is a snapshot) it is what was live at the end, and the output says so.\n"
            "Prints \"no leaks\" and exits 0 when everything was freed.\n"
            "\n"
            "Options:\n"
            "  -n, --top N   show the N largest stacks only (default 0: all)\n"
            "  -j, --json    one JSON object on stdout, exact integers (default: text)\n"
            "  -h, --help    this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace leaks t.htr\n"
            "  heaptrace leaks --top 5 t.htr\n"
            "  heaptrace leaks --json t.htr | jq '.leaks[0]'\n");
}

int
cmd_leaks(int argc, char **argv)
{
    return ht_cli_report_run("leaks", argc, argv, 0, leaks_usage, ht_report_leaks);
}
