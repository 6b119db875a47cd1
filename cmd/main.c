/* reeld's command line: one binary, a few commands. Each command is a function taking the
 * arguments after its name; this file only picks one and says how to use them. */
#include <stdio.h>
#include <string.h>

#include "actors/http_listener.h"
#include "cmd/cmd.h"

#ifndef REELD_VERSION
#define REELD_VERSION "0.0.0-dev"
#endif

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("reeld %s\n", REELD_VERSION);
    return 0;
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage; /* NULL: not listed in --help */
} commands[] = {
    {"serve", cmd_serve,
     "serve [--roles R] [--listen ADDR]   run the server; R: api,edge,worker (default all)"},
    {"migrate", cmd_migrate,
     "migrate                             apply the store's schema migrations"},
    {"worker", cmd_worker,
     "worker [--cores N]                  a headless worker of noop jobs (REELD_NOOP_SLOTS)"},
    {"job", cmd_job, "job add|get|cancel|list|counts ... inspect and change jobs in the store"},
    {"presign", cmd_presign, "presign --method M --bucket B --key K  print a presigned URL"},
    {"transcode", cmd_transcode,
     "transcode INPUT OUTDIR [OPTIONS]    encode an HLS ladder into OUTDIR"},
    {"export", cmd_export,
     "export IN OUT.mp4 --start S --end S   cut a range into one MP4 (--height, --captions)"},
    {"buckets", cmd_buckets,
     "buckets init                        create and configure the S3 buckets (S3 mode)"},
    {"version", cmd_version, "version                             print the version"},
    {"s3", cmd_s3, NULL}, /* operator and test tool: not listed */
};

static void usage(FILE *out)
{
    fprintf(out,
            "reeld %s: uploads in, adaptive HLS out, on NVIDIA GPUs or CPUs.\n\n"
            "Usage: reeld COMMAND [OPTIONS]\n\nCommands:\n",
            REELD_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].usage != NULL)
            fprintf(out, "  reeld %s\n", commands[i].usage);
    fputc('\n', out);
    config_usage(out);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "reeld: unknown command '%s' (see reeld --help)\n", argv[1]);
    return 2;
}
