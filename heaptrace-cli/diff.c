/*
 * heaptrace-cli/diff.c -- `heaptrace diff BASE NEW`: what grew between two
 * snapshots (or traces), by stack.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "analyzer/diff.h"
#include "formats/collapsed.h"
#include "formats/pprof.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void
diff_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace diff [--top N] [--json | --collapsed | --pprof -o FILE]\n"
            "                      [--metric M] BASE NEW\n"
            "\n"
            "Compare two SPECs -- two snapshots of a trace (t.htr@0 t.htr@5), two\n"
            "snapshot files, or two traces -- stack by stack. Stacks are matched by their\n"
            "symbolized frames (function, file, line), so two runs of a program line up.\n"
            "Shows the total change, then the stacks that grew (largest first) and those\n"
            "that shrank: +bytes, +objects, growth per hour (when both come from one\n"
            "process), file:line and the full stack. Sampled traces give estimates with\n"
            "the standard error of the difference. Prints \"no change\" when nothing\n"
            "differs.\n"
            "\n"
            "Options:\n"
            "  -n, --top N       stacks in each of the growing and shrinking lists\n"
            "                    (default 10)\n"
            "  -m, --metric M    what to compare (default inuse_space): inuse_space,\n"
            "                    inuse_objects, alloc_space, alloc_objects, leaked,\n"
            "                    leaked_objects, peak, peak_objects, temporary,\n"
            "                    temporary_space\n"
            "  -j, --json        one JSON object on stdout, exact integers\n"
            "  -c, --collapsed   write \"stack BASE_VALUE NEW_VALUE\" lines (difffolded.pl\n"
            "                    format, frames root first joined by ';') for\n"
            "                    flamegraph.pl's differential flame graph\n"
            "  -p, --pprof       write the difference (NEW - BASE, negative where memory\n"
            "                    shrank) as a gzipped pprof profile to the -o FILE\n"
            "  -o, --output FILE the file --pprof writes (no default)\n"
            "  -h, --help        this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace diff t.htr@0 t.htr@20\n"
            "  heaptrace diff --metric inuse_objects snap.0 snap.20\n"
            "  heaptrace diff --collapsed t.htr@0 t.htr@20 | flamegraph.pl > growth.svg\n"
            "  heaptrace diff --pprof -o growth.pb.gz t.htr@0 t.htr@20\n");
}

int
cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 'n'},
        {"metric", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"collapsed", no_argument, NULL, 'c'},
        {"pprof", no_argument, NULL, 'p'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_diff_opts_t dopt = {.top = 10, .json = 0, .metric = HT_M_INUSE_SPACE};
    int collapsed = 0, pprof = 0, c, rc;
    const char *output = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:m:jcpo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if ((rc = ht_cli_opt_top("diff", optarg, &dopt.top, diff_usage)))
                return rc;
            break;
        case 'm':
            if ((rc = ht_cli_opt_metric("diff", optarg, &dopt.metric, diff_usage)))
                return rc;
            break;
        case 'j':
            dopt.json = 1;
            break;
        case 'c':
            collapsed = 1;
            break;
        case 'p':
            pprof = 1;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            diff_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("diff", c, argv, longopts, diff_usage);
        }
    }
    if (argc - optind != 2)
        return ht_cli_usage_error("diff", diff_usage, "%s",
                                  argc - optind < 2 ? "needs BASE and NEW" : "too many arguments");
    if (collapsed + dopt.json + pprof > 1)
        return ht_cli_usage_error("diff", diff_usage,
                                  "--json, --collapsed and --pprof are different outputs; pick one");
    if (pprof != (output != NULL))
        return ht_cli_usage_error("diff", diff_usage, "%s",
                                  pprof ? "--pprof needs -o FILE" : "-o goes with --pprof");
    const char *bspec = argv[optind], *nspec = argv[optind + 1];
    ht_profile_t *base = NULL, *cur = NULL;
    if ((rc = ht_cli_load("diff", bspec, &base)))
        return rc;
    if ((rc = ht_cli_load("diff", nspec, &cur))) {
        ht_prof_destroy(base);
        return rc;
    }
    if (pprof) {
        // The difference as a profile of its own: pprof shows negative
        // values as they are (what `go tool pprof -diff_base` would show).
        ht_profile_t *d = NULL;
        rc = ht_diff_profile(base, cur, &d);
        if (rc == 0) {
            rc = ht_pprof_write_file(output, d, NULL);
            ht_prof_destroy(d);
            if (rc == 0)
                fprintf(stderr, "heaptrace: wrote %s (go tool pprof -top %s)\n", output, output);
        }
        ht_prof_destroy(base);
        ht_prof_destroy(cur);
        if (rc < 0) {
            ht_cli_error("diff: cannot write %s: %s", output, strerror(-rc));
            return 1;
        }
        return 0;
    } else if (collapsed) {
        ht_collapsed_opts_t co = {0};
        rc = ht_collapsed_write_pair(stdout, base, cur, dopt.metric, &co);
    } else {
        rc = ht_diff_write(stdout, base, bspec, cur, nspec, &dopt);
    }
    ht_prof_destroy(base);
    ht_prof_destroy(cur);
    return ht_cli_finish_stdout("diff", rc);
}
