/*
 * heaptrace-cli/flamegraph.c -- `heaptrace flamegraph`: our own
 * interactive SVG flame graph, plain or differential.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "formats/svg.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
flamegraph_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace flamegraph [--metric M] [--base BASE] [-o FILE.svg] SPEC\n"
            "\n"
            "Write a self-contained interactive SVG flame graph of SPEC: the root at the\n"
            "bottom, callers below callees, each frame as wide as its share of the metric.\n"
            "Hover for function, module, file:line, bytes and objects; click to zoom\n"
            "(Reset Zoom or Esc to go back); Search or Ctrl-F highlights the frames that\n"
            "match a regular expression and shows their share. With --base, a differential\n"
            "graph: widths from SPEC, red where a frame grew since BASE, blue where it\n"
            "shrank. SPEC and BASE are traces (t.htr), snapshots in them (t.htr@N) or\n"
            "snapshot files. Where the file was written is said on stderr.\n"
            "\n"
            "Options:\n"
            "  -m, --metric M    what widths measure (default inuse_space): inuse_space,\n"
            "                    inuse_objects, alloc_space, alloc_objects, leaked,\n"
            "                    leaked_objects, peak, peak_objects, temporary,\n"
            "                    temporary_space. For a trace of a program that exited,\n"
            "                    inuse_space is what it never freed (the same as leaked).\n"
            "  -b, --base BASE   draw a differential graph against BASE\n"
            "  -o, --output FILE where to write (default: SPEC without its .htr, plus\n"
            "                    .svg: t.htr -> t.svg, t.htr@3 -> t@3.svg); - for stdout\n"
            "  -l, --lines       one frame per file:line instead of per function\n"
            "  -t, --title TEXT  the title (default \"Heap flame graph: METRIC\")\n"
            "  -w, --width PX    image width in pixels (default 1200, at least 200)\n"
            "  -h, --help        this help\n"
            "\n"
            "Examples:\n"
            "  heaptrace flamegraph -o heap.svg t.htr\n"
            "  heaptrace flamegraph --metric alloc_space -o churn.svg t.htr\n"
            "  heaptrace flamegraph --base t.htr@0 -o growth.svg t.htr@5\n");
}

int
cmd_flamegraph(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"metric", required_argument, NULL, 'm'}, {"base", required_argument, NULL, 'b'},
        {"output", required_argument, NULL, 'o'}, {"lines", no_argument, NULL, 'l'},
        {"title", required_argument, NULL, 't'},  {"width", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    ht_svg_opts_t so;
    ht_svg_opts_default(&so);
    const char *output = NULL, *base_spec = NULL;
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:b:o:lt:w:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if ((rc = ht_cli_opt_metric("flamegraph", optarg, &so.metric, flamegraph_usage)))
                return rc;
            break;
        case 'b':
            base_spec = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'l':
            so.lines = 1;
            break;
        case 't':
            so.title = optarg;
            break;
        case 'w': {
            char *end;
            errno = 0;
            long w = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || w < 200 || w > 100000)
                return ht_cli_usage_error("flamegraph", flamegraph_usage,
                                          "--width wants pixels from 200 to 100000, not '%s'",
                                          optarg);
            so.width = (int)w;
            break;
        }
        case 'h':
            flamegraph_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("flamegraph", c, argv, longopts, flamegraph_usage);
        }
    }
    if ((rc = ht_cli_one_operand("flamegraph", "SPEC", argc, flamegraph_usage)))
        return rc;
    const char *spec = argv[optind];
    char *dflt = NULL;
    if (!output) {
        dflt = ht_cli_default_output(spec, ".svg");
        if (!dflt) {
            ht_cli_error("flamegraph: out of memory");
            return 1;
        }
        output = dflt;
    }

    int status = 1;
    ht_profile_t *p = NULL, *base = NULL;
    FILE *f = NULL;
    bool to_stdout = !strcmp(output, "-");
    if (base_spec && ht_cli_load("flamegraph", base_spec, &base))
        goto out;
    if (ht_cli_load("flamegraph", spec, &p))
        goto out;
    f = to_stdout ? stdout : fopen(output, "w");
    if (!f) {
        ht_cli_error("flamegraph: cannot create %s: %s", output, strerror(errno));
        goto out;
    }
    errno = 0;
    if (!base)
        ht_cli_note_empty("flamegraph", spec, p, so.metric);
    rc = base ? ht_svg_write_diff(f, base, p, &so) : ht_svg_write(f, p, &so);
    if (rc == -EIO && errno)
        rc = -errno;
    if (!to_stdout && fclose(f) == EOF && !rc)
        rc = errno ? -errno : -EIO;
    f = NULL;
    if (rc < 0) {
        ht_cli_error("flamegraph: writing %s: %s", output, strerror(-rc));
        if (!to_stdout)
            unlink(output); // no half-written graph left behind
        goto out;
    }
    if (!to_stdout)
        fprintf(stderr, "heaptrace: wrote %s\n", output);
    status = 0;
out:
    if (p)
        ht_prof_destroy(p);
    if (base)
        ht_prof_destroy(base);
    free(dflt);
    return status;
}
