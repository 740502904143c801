/*
 * heaptrace-cli/common.h -- what the analysis subcommands (report, leaks,
 * diff, snapshots, collapse, pprof, flamegraph, dump, ...) share: option
 * errors, argument counts, loading a SPEC and finishing stdout, each with
 * the one-line message and the exit status of cmd.h's contract.
 *
 * Helpers that can fail return an exit status (0: carry on; 1: run-time
 * failure, its line already on stderr; 2: usage error, the line and the
 * usage already on stderr), so a caller writes
 *     if ((rc = ht_cli_opt_top("report", optarg, &top, report_usage)))
 *         return rc;
 * `cmd` is the subcommand's name, used as the message's prefix; `usage`
 * prints the subcommand's help to the FILE it is given.
 */
#ifndef HT_CLI_COMMON_H
#define HT_CLI_COMMON_H

#include "analyzer/profile.h"
#include "analyzer/report.h"

#include <getopt.h>
#include <stdio.h>

typedef void (*ht_cli_usage_fn)(FILE *f);

/* Print "heaptrace: CMD: " + message, then the usage, on stderr.
 * Returns 2. */
int ht_cli_usage_error(const char *cmd, ht_cli_usage_fn usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The default branch of a getopt_long loop run with opterr = 0 and an
 * optstring starting with ':' (after any '+'): c is what getopt_long
 * returned (':' a missing value, '?' anything else). Names the option as
 * the user wrote it (a long one, or the one bad letter of a cluster like
 * -jZ) and prints the usage. longopts is the table given to getopt_long.
 * Returns 2. */
int ht_cli_bad_option(const char *cmd, int c, char **argv, const struct option *longopts,
                      ht_cli_usage_fn usage);

/* Check that exactly one operand is left (argv[optind], after getopt);
 * what names it in the message ("SPEC", "TRACE"). Returns 0, or 2 after
 * "no WHAT given" / "one WHAT only" and the usage. */
int ht_cli_one_operand(const char *cmd, const char *what, int argc, ht_cli_usage_fn usage);

/* Parse a --top value, a decimal integer 0..INT_MAX, into *out.
 * Returns 0, or -1 (nothing stored) when s is not one. */
int ht_cli_parse_top(const char *s, int *out);

/* --top: ht_cli_parse_top, or the usage error "--top wants a number >= 0".
 * Returns 0 or 2. */
int ht_cli_opt_top(const char *cmd, const char *arg, int *out, ht_cli_usage_fn usage);

/* --metric: any metric name ht_prof_metric_parse knows, or the usage
 * error "unknown metric". Returns 0 or 2. */
int ht_cli_opt_metric(const char *cmd, const char *arg, ht_metric_t *out, ht_cli_usage_fn usage);

/* Load SPEC (a trace, trace@N or a snapshot file) with the analyzer's
 * defaults, with progress on stderr when stderr is a terminal. On success
 * *p is the caller's (ht_prof_destroy). Returns 0, or 1 after one line on
 * stderr (the analyzer's message, which names the file). */
int ht_cli_load(const char *cmd, const char *spec, ht_profile_t **p);

/* One line on stderr when metric m sums to nothing over p (an empty
 * graph or no stacks): why, and what to draw or record instead. A sampled
 * trace of a program that freed what it sampled has no inuse_space at its
 * end; one at a rate above all it allocated has no sample at all. */
void ht_cli_note_empty(const char *cmd, const char *spec, const ht_profile_t *p, ht_metric_t m);

/* The output path when -o is not given: SPEC minus the ".htr" of its
 * trace part, keeping a trailing "@N", plus ext (t.htr@3 -> t@3.svg).
 * Returns a malloc'd string (the caller frees it), or NULL when out of
 * memory. */
char *ht_cli_default_output(const char *spec, const char *ext);

/* The end of a command that wrote to stdout: rc is the writer's result
 * (0 or -errno). Flushes stdout; on a writer or flush error prints
 * "CMD: cannot write the output" (or the error for anything but -EIO).
 * Returns the exit status, 0 or 1. */
int ht_cli_finish_stdout(const char *cmd, int rc);

/* A writer of one SPEC's text or JSON report (ht_report_write,
 * ht_report_leaks): 0 or -errno. */
typedef int (*ht_cli_report_fn)(FILE *f, const ht_profile_t *p, const char *spec,
                                const ht_report_opts_t *o);

/* The whole of a command of the form `CMD [--top N] [--json] SPEC`
 * (report, leaks): parse argv (argv[0] is CMD), load SPEC, run write on
 * stdout. top is the default --top. Returns the exit status. */
int ht_cli_report_run(const char *cmd, int argc, char **argv, int top, ht_cli_usage_fn usage,
                      ht_cli_report_fn write);

#endif /* HT_CLI_COMMON_H */
