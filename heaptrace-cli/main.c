/*
 * heaptrace-cli/main.c -- `heaptrace SUBCOMMAND ...`: dispatch over the
 * table in cmd.h.
 */
#include "heaptrace-cli/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// Weak, so the tree links while a subcommand is being written; a missing
// one says so instead of failing to build.
#define HT_CLI_WEAK(name, help) int cmd_##name(int argc, char **argv) __attribute__((weak));
HT_CLI_COMMANDS(HT_CLI_WEAK)
#undef HT_CLI_WEAK

typedef struct cli_cmd_s {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cli_cmd_t;

static const cli_cmd_t cli_cmds[] = {
#define HT_CLI_ROW(name, help) {#name, cmd_##name, help},
    HT_CLI_COMMANDS(HT_CLI_ROW)
#undef HT_CLI_ROW
};

void
ht_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("heaptrace: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
cli_usage(FILE *f)
{
    fprintf(f, "usage: heaptrace COMMAND [OPTIONS] ...\n\n"
               "A heap profiler and leak tracer for native Linux programs.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        fprintf(f, "  %-11s %s\n", cli_cmds[i].name, cli_cmds[i].help);
    fprintf(f, "\nExamples:\n"
               "  heaptrace record ./server --port 8080\n"
               "  heaptrace report heaptrace.server.1234.htr\n"
               "  heaptrace collapse t.htr | flamegraph.pl > heap.svg\n\n"
               "'heaptrace COMMAND --help' describes each command's options.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        cli_usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("heaptrace %s\n", HT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++) {
        if (strcmp(name, cli_cmds[i].name) != 0)
            continue;
        if (!cli_cmds[i].fn) {
            ht_cli_error("'%s' is not built into this heaptrace yet", name);
            return 1;
        }
        return cli_cmds[i].fn(argc - 1, argv + 1);
    }
    ht_cli_error("unknown command '%s'", name);
    cli_usage(stderr);
    return 2;
}
