/*
 * heaptrace-cli/collapse.c -- `heaptrace collapse`: collapsed stacks on
 * stdout for flamegraph.pl, speedscope or difffolded-style graphs.
 */
#include "heaptrace-cli/cmd.h"

#include "analyzer/analyze.h"
#include "formats/collapsed.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
collapse_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace collapse [--metric M] [--lines] [--base BASE] SPEC\n"
            "\n"
            "Write the stacks of SPEC in the collapsed (folded) format on stdout, one line\n"
            "per distinct stack, root first, then the value:\n"
            "    main;parse_config;xstrdup 4096\n"
            "The leaf is the function that called the allocator; inlined calls are frames\n"
            "of their own; identical stacks are merged, values rounded to integers, and\n"
            "stacks whose value is 0 left out. SPEC is a trace (t.htr), a snapshot in it\n"
            "(t.htr@N) or a snapshot file.\n"
            "\n"
            "Options:\n"
            "  -m, --metric M   what to count (default inuse_space): inuse_space,\n"
            "                   inuse_objects, alloc_space, alloc_objects, leaked,\n"
            "                   leaked_objects, peak, peak_objects, temporary,\n"
            "                   temporary_space. For a trace of a program that exited,\n"
            "                   inuse_space is what it never freed (the same as leaked).\n"
            "  -l, --lines      append \" (file:line)\" to every frame whose source is known\n"
            "                   (by default frames are function names, which flame graph\n"
            "                   tools merge)\n"
            "  -b, --base BASE  write the two-column form \"stack BASE_VALUE SPEC_VALUE\"\n"
            "                   that flamegraph.pl draws as a differential graph\n"
            "  -h, --help       this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace collapse t.htr | flamegraph.pl --countname=bytes > heap.svg\n"
            "  heaptrace collapse --metric alloc_objects t.htr > allocs.folded\n"
            "  heaptrace collapse --base t.htr@0 t.htr@5 | flamegraph.pl > growth.svg\n");
}

static int
collapse_load(const char *spec, ht_profile_t **p)
{
    ht_an_opts_t ao;
    ht_an_opts_default(&ao);
    ao.progress = isatty(STDERR_FILENO);
    char err[512] = "";
    int rc = ht_an_profile_load(spec, &ao, p, err, sizeof err);
    if (rc < 0) {
        ht_cli_error("%s", err[0] ? err : strerror(-rc));
        return -1;
    }
    return 0;
}

int
cmd_collapse(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"metric", required_argument, NULL, 'm'},
        {"lines", no_argument, NULL, 'l'},
        {"base", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_metric_t metric = HT_M_INUSE_SPACE;
    ht_collapsed_opts_t co = {0};
    const char *base_spec = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:lb:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': {
            int m = ht_prof_metric_parse(optarg);
            if (m < 0) {
                ht_cli_error("collapse: unknown metric '%s'", optarg);
                collapse_usage(stderr);
                return 2;
            }
            metric = (ht_metric_t)m;
            break;
        }
        case 'l':
            co.lines = 1;
            break;
        case 'b':
            base_spec = optarg;
            break;
        case 'h':
            collapse_usage(stdout);
            return 0;
        case ':':
            ht_cli_error("collapse: option '%s' needs a value", argv[optind - 1]);
            collapse_usage(stderr);
            return 2;
        default:
            ht_cli_error("collapse: unknown option '%s'", argv[optind - 1]);
            collapse_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        ht_cli_error("collapse: %s", argc == optind ? "no SPEC given" : "one SPEC only");
        collapse_usage(stderr);
        return 2;
    }
    const char *spec = argv[optind];

    ht_profile_t *p = NULL, *base = NULL;
    int status = 1;
    if (base_spec && collapse_load(base_spec, &base) < 0)
        goto out;
    if (collapse_load(spec, &p) < 0)
        goto out;
    int rc = base ? ht_collapsed_write_pair(stdout, base, p, metric, &co)
                  : ht_collapsed_write(stdout, p, metric, &co);
    if (rc < 0) {
        ht_cli_error("collapse: writing to stdout: %s", strerror(-rc));
        goto out;
    }
    status = 0;
out:
    if (p)
        ht_prof_destroy(p);
    if (base)
        ht_prof_destroy(base);
    return status;
}
