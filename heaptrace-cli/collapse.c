/*
 * heaptrace-cli/collapse.c -- `heaptrace collapse`: collapsed stacks on
 * stdout for flamegraph.pl, speedscope or difffolded-style graphs.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "formats/collapsed.h"

#include <getopt.h>
#include <stdio.h>

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
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:lb:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if ((rc = ht_cli_opt_metric("collapse", optarg, &metric, collapse_usage)))
                return rc;
            break;
        case 'l':
            co.lines = 1;
            break;
        case 'b':
            base_spec = optarg;
            break;
        case 'h':
            collapse_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("collapse", c, argv, longopts, collapse_usage);
        }
    }
    if ((rc = ht_cli_one_operand("collapse", "SPEC", argc, collapse_usage)))
        return rc;
    const char *spec = argv[optind];

    ht_profile_t *p = NULL, *base = NULL;
    if (base_spec && (rc = ht_cli_load("collapse", base_spec, &base)))
        goto out;
    if ((rc = ht_cli_load("collapse", spec, &p)))
        goto out;
    if (!base)
        ht_cli_note_empty("collapse", spec, p, metric);
    rc = base ? ht_collapsed_write_pair(stdout, base, p, metric, &co)
              : ht_collapsed_write(stdout, p, metric, &co);
    rc = ht_cli_finish_stdout("collapse", rc);
out:
    if (p)
        ht_prof_destroy(p);
    if (base)
        ht_prof_destroy(base);
    return rc;
}
