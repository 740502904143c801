/*
 * heaptrace-cli/cmd.h -- the subcommands of `heaptrace`. Each takes the
 * arguments after its name (argv[0] is the subcommand name) and returns
 * the process exit status: 0 success, 1 run-time failure (one line on
 * stderr already printed), 2 usage error.
 */
#ifndef HT_CLI_CMD_H
#define HT_CLI_CMD_H

#define HT_CLI_COMMANDS(X)                                                           \
    X(record, "run a program and record its heap activity to a trace")               \
    X(report, "totals, peak and the top allocation sites of a trace")                \
    X(leaks, "what was never freed, by stack, with file:line")                       \
    X(collapse, "collapsed stacks for flamegraph.pl / speedscope")                   \
    X(pprof, "write a gzipped pprof heap profile (go tool pprof)")                   \
    X(flamegraph, "write a self-contained SVG flame graph")                          \
    X(snapshots, "list the snapshots in a trace")                                    \
    X(snapshot, "ask a recorded process for a snapshot now")                         \
    X(diff, "what grew between two snapshots")                                       \
    X(dump, "print every record of a trace (text or --json)")

#define HT_CLI_DECL(name, help) int cmd_##name(int argc, char **argv);
HT_CLI_COMMANDS(HT_CLI_DECL)
#undef HT_CLI_DECL

/* Print "heaptrace: " + message to stderr (printf-style, newline added). */
void ht_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* HT_CLI_CMD_H */
