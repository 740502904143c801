/*
 * heaptrace-cli/pprof.c -- `heaptrace pprof`: a gzipped profile.proto heap
 * profile for go tool pprof.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "formats/pprof.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
pprof_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace pprof [-o FILE] [--sample-index TYPE] SPEC\n"
            "\n"
            "Write SPEC as a gzipped pprof profile (profile.proto) with the sample types\n"
            "alloc_objects, alloc_space, inuse_objects and inuse_space, the modules with\n"
            "their build ids, and inlined calls as several lines of one location. SPEC is a\n"
            "trace (t.htr), a snapshot in it (t.htr@N) or a snapshot file. Where the file\n"
            "was written is said on stderr.\n"
            "\n"
            "Options:\n"
            "  -o, --output FILE        where to write (default: SPEC without its .htr,\n"
            "                           plus .pb.gz: t.htr -> t.pb.gz, t.htr@3 -> t@3.pb.gz);\n"
            "                           - for stdout\n"
            "  -s, --sample-index TYPE  the sample type pprof shows by default\n"
            "                           (default inuse_space; or inuse_objects, alloc_space,\n"
            "                           alloc_objects)\n"
            "  -h, --help               this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace pprof -o heap.pb.gz t.htr && go tool pprof -top heap.pb.gz\n"
            "  go tool pprof -http=: -sample_index=alloc_space heap.pb.gz\n"
            "  heaptrace pprof t.htr@0 && heaptrace pprof t.htr@5 &&\n"
            "      go tool pprof -top -diff_base t@0.pb.gz t@5.pb.gz\n");
}

int
cmd_pprof(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"sample-index", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_pprof_opts_t po;
    ht_pprof_opts_default(&po);
    const char *output = NULL;
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 's': {
            int m = ht_prof_metric_parse(optarg);
            if (m != HT_M_INUSE_SPACE && m != HT_M_INUSE_OBJECTS && m != HT_M_ALLOC_SPACE &&
                m != HT_M_ALLOC_OBJECTS)
                return ht_cli_usage_error("pprof", pprof_usage,
                                          "'%s' is not a pprof sample type (inuse_space, "
                                          "inuse_objects, alloc_space, alloc_objects)",
                                          optarg);
            po.default_sample = (ht_metric_t)m;
            break;
        }
        case 'h':
            pprof_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("pprof", c, argv, longopts, pprof_usage);
        }
    }
    if ((rc = ht_cli_one_operand("pprof", "SPEC", argc, pprof_usage)))
        return rc;
    const char *spec = argv[optind];
    char *dflt = NULL;
    if (!output) {
        dflt = ht_cli_default_output(spec, ".pb.gz");
        if (!dflt) {
            ht_cli_error("pprof: out of memory");
            return 1;
        }
        output = dflt;
    }

    int status = 1;
    ht_profile_t *p = NULL;
    if (ht_cli_load("pprof", spec, &p))
        goto out;
    rc = ht_pprof_write_file(output, p, &po);
    if (rc < 0) {
        ht_cli_error("pprof: writing %s: %s", output, strerror(-rc));
        goto out;
    }
    if (strcmp(output, "-") != 0)
        fprintf(stderr, "heaptrace: wrote %s (view it with: go tool pprof -http=: %s)\n", output,
                output);
    status = 0;
out:
    if (p)
        ht_prof_destroy(p);
    free(dflt);
    return status;
}
