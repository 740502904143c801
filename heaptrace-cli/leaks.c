/*
 * heaptrace-cli/leaks.c -- `heaptrace leaks`: what was never freed, by
 * stack, with every frame's function and file:line.
 */
#include "heaptrace-cli/cmd.h"

#include "analyzer/analyze.h"
#include "analyzer/report.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ht_cli_parse_top(const char *s, int *out); // heaptrace-cli/report.c

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
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (ht_cli_parse_top(optarg, &ro.top) < 0) {
                ht_cli_error("leaks: --top wants a number >= 0, not '%s'", optarg);
                leaks_usage(stderr);
                return 2;
            }
            break;
        case 'j':
            ro.json = 1;
            break;
        case 'h':
            leaks_usage(stdout);
            return 0;
        case ':':
            ht_cli_error("leaks: option '%s' needs a value", argv[optind - 1]);
            leaks_usage(stderr);
            return 2;
        default:
            ht_cli_error("leaks: unknown option '%s'", argv[optind - 1]);
            leaks_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        ht_cli_error("leaks: %s", argc == optind ? "no SPEC given" : "one SPEC only");
        leaks_usage(stderr);
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
    rc = ht_report_leaks(stdout, p, spec, &ro);
    ht_prof_destroy(p);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0) {
        ht_cli_error("leaks: %s", rc == -EIO ? "cannot write the output" : strerror(-rc));
        return 1;
    }
    return 0;
}
