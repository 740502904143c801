/*
 * heaptrace-cli/common.c -- option errors, operand counts, SPEC loading
 * and the stdout epilogue shared by the subcommands (see common.h).
 */
#include "heaptrace-cli/common.h"

#include "analyzer/analyze.h"
#include "heaptrace-cli/cmd.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
ht_cli_usage_error(const char *cmd, ht_cli_usage_fn usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "heaptrace: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

/* Whether arg ("--name" or "--name=value") names the long option whose
 * val is `val`, allowing the unique abbreviations getopt_long accepts. */
static bool
cli_is_long_of(const char *arg, int val, const struct option *longopts)
{
    if (strncmp(arg, "--", 2) != 0)
        return false;
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");
    for (const struct option *o = longopts; o && o->name; o++)
        if (o->val == val && !o->flag && !strncmp(o->name, name, n))
            return true;
    return false;
}

int
ht_cli_bad_option(const char *cmd, int c, char **argv, const struct option *longopts,
                  ht_cli_usage_fn usage)
{
    // getopt_long does not say where it stopped. After a long option it
    // has always moved on, so argv[optind - 1] is that option; a short
    // one in the middle of a cluster (-Zj) leaves optind where it was, so
    // only optopt names it. optopt is 0 for an unknown long option and the
    // option's val when a known one was misused.
    const char *prev = optind > 0 ? argv[optind - 1] : "";
    bool is_long = optopt == 0 || cli_is_long_of(prev, optopt, longopts);
    char shortname[3] = {'-', (char)optopt, 0};
    const char *what = is_long ? prev : shortname;
    int n = is_long ? (int)strcspn(what, "=") : 2;
    if (c == ':')
        return ht_cli_usage_error(cmd, usage, "option '%.*s' needs a value", n, what);
    if (optopt != 0 && is_long && strchr(what, '='))
        return ht_cli_usage_error(cmd, usage, "option '%.*s' takes no value", n, what);
    return ht_cli_usage_error(cmd, usage, "unknown option '%s'", what);
}

int
ht_cli_one_operand(const char *cmd, const char *what, int argc, ht_cli_usage_fn usage)
{
    if (argc - optind == 1)
        return 0;
    return ht_cli_usage_error(cmd, usage, argc <= optind ? "no %s given" : "one %s only", what);
}

int
ht_cli_parse_top(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

int
ht_cli_opt_top(const char *cmd, const char *arg, int *out, ht_cli_usage_fn usage)
{
    if (ht_cli_parse_top(arg, out) < 0)
        return ht_cli_usage_error(cmd, usage, "--top wants a number >= 0, not '%s'", arg);
    return 0;
}

int
ht_cli_opt_metric(const char *cmd, const char *arg, ht_metric_t *out, ht_cli_usage_fn usage)
{
    int m = ht_prof_metric_parse(arg);
    if (m < 0)
        return ht_cli_usage_error(cmd, usage, "unknown metric '%s'", arg);
    *out = (ht_metric_t)m;
    return 0;
}

int
ht_cli_load(const char *cmd, const char *spec, ht_profile_t **p)
{
    ht_an_opts_t ao;
    ht_an_opts_default(&ao);
    // Progress redraws one line with \r: only for a person watching, never
    // into a log or a test's captured stderr.
    ao.progress = isatty(STDERR_FILENO);
    char err[512] = "";
    int rc = ht_an_profile_load(spec, &ao, p, err, sizeof err);
    if (rc < 0) {
        // The analyzer's message already names the file.
        if (err[0])
            ht_cli_error("%s", err);
        else
            ht_cli_error("%s: %s: %s", cmd, spec, strerror(-rc));
        return 1;
    }
    return 0;
}

void
ht_cli_note_empty(const char *cmd, const char *spec, const ht_profile_t *p, ht_metric_t m)
{
    if (p->v[m] > 0)
        return;
    if (p->v[HT_M_ALLOC_SPACE] <= 0) {
        fprintf(stderr, "heaptrace: %s: %s holds no %s; record with --all or a smaller "
                        "--sample-rate\n", cmd, spec, p->sampled ? "sample" : "allocation");
        return;
    }
    fprintf(stderr, "heaptrace: %s: %s is 0 in %s%s; try --metric alloc_space or peak\n", cmd,
            ht_prof_metric_name(m), spec,
            p->sampled && p->exited && (m == HT_M_INUSE_SPACE || m == HT_M_INUSE_OBJECTS ||
                                        m == HT_M_LEAKED_SPACE || m == HT_M_LEAKED_OBJECTS)
                ? " (no sampled block was live at exit)"
                : "");
}

char *
ht_cli_default_output(const char *spec, const char *ext)
{
    size_t n = strlen(spec), at = n;
    const char *a = strrchr(spec, '@');
    if (a && a[1]) {
        bool digits = true;
        for (const char *q = a + 1; *q; q++)
            digits &= isdigit((unsigned char)*q) != 0;
        if (digits)
            at = (size_t)(a - spec);
    }
    size_t stem = at >= 4 && !memcmp(spec + at - 4, ".htr", 4) ? at - 4 : at;
    char *out = malloc(n + strlen(ext) + 1);
    if (!out)
        return NULL;
    memcpy(out, spec, stem);
    memcpy(out + stem, spec + at, n - at);
    strcpy(out + stem + (n - at), ext);
    return out;
}

int
ht_cli_finish_stdout(const char *cmd, int rc)
{
    // A full disk or a closed pipe often shows only at the flush.
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0) {
        ht_cli_error("%s: %s", cmd, rc == -EIO ? "cannot write the output" : strerror(-rc));
        return 1;
    }
    return 0;
}

int
ht_cli_report_run(const char *cmd, int argc, char **argv, int top, ht_cli_usage_fn usage,
                  ht_cli_report_fn write)
{
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ht_report_opts_t ro = {.top = top, .json = 0};
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if ((rc = ht_cli_opt_top(cmd, optarg, &ro.top, usage)))
                return rc;
            break;
        case 'j':
            ro.json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option(cmd, c, argv, longopts, usage);
        }
    }
    if ((rc = ht_cli_one_operand(cmd, "SPEC", argc, usage)))
        return rc;
    const char *spec = argv[optind];
    ht_profile_t *p = NULL;
    if ((rc = ht_cli_load(cmd, spec, &p)))
        return rc;
    rc = write(stdout, p, spec, &ro);
    ht_prof_destroy(p);
    return ht_cli_finish_stdout(cmd, rc);
}
