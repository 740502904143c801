/*
 * heaptrace-cli/leaks.c -- `heaptrace leaks`: what was never freed, by
 * stack, with every frame's function and file:line.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "analyzer/report.h"

#include <getopt.h>
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
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_report_opts_t ro = {.top = 0, .json = 0};
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if ((rc = ht_cli_opt_top("leaks", optarg, &ro.top, leaks_usage)))
                return rc;
            break;
        case 'j':
            ro.json = 1;
            break;
        case 'h':
            leaks_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("leaks", c, argv, longopts, leaks_usage);
        }
    }
    if ((rc = ht_cli_one_operand("leaks", "SPEC", argc, leaks_usage)))
        return rc;
    const char *spec = argv[optind];
    ht_profile_t *p = NULL;
    if ((rc = ht_cli_load("leaks", spec, &p)))
        return rc;
    rc = ht_report_leaks(stdout, p, spec, &ro);
    ht_prof_destroy(p);
    return ht_cli_finish_stdout("leaks", rc);
}
