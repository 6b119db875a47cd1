/* The commands of the reeld binary. Each takes the arguments after its name (argv[0] is the
 * command's name) and returns the process exit status. */
#ifndef REELD_CMD_H
#define REELD_CMD_H

#include "src/blob/s3.h"
#include "src/rt/config.h"

/* Runs the server until SIGINT or SIGTERM, then drains and returns 0. */
int cmd_serve(int argc, char **argv);

/* Applies the store's schema migrations and exits. */
int cmd_migrate(int argc, char **argv);

/* Runs the worker role alone: store, job dispatcher, noop workers; no HTTP. */
int cmd_worker(int argc, char **argv);

/* `reeld job add|get|cancel|list|counts ...`: one store request, the answer as JSON lines. */
int cmd_job(int argc, char **argv);
/* Prints a presigned PUT or GET URL for BUCKET/KEY (cmd/presign.c); 2 on a bad flag. */
int cmd_presign(int argc, char **argv);

/* Transcodes one input into an HLS ladder in a directory, or with --upload --asset ID publishes
 * it through the s3-uploader (S3_BUCKET_PREVIEWS, or the fs backend without S3_ENDPOINT): 0, 1
 * when the job failed (one line on stderr says why), 2 on a usage error, 130 when cancelled by
 * SIGINT/SIGTERM. */
int cmd_transcode(int argc, char **argv);

/* Exports a range of a local file into an MP4 (src/media/export.h): 0 after one JSON line of
 * the result on stdout, 1 when the job failed (one line on stderr says why), 2 on a usage
 * error, 130 when cancelled by SIGINT/SIGTERM. */
int cmd_export(int argc, char **argv);

/* `reeld s3 put|get|head|delete|copy|multipart ...`: one S3 operation through reeld's client
 * (cmd/s3cmd.c); a tool for operators and tests, not listed in --help. */
int cmd_s3(int argc, char **argv);

/* `reeld buckets init`: creates the S3 buckets and sets their CORS, lifecycle and Object Lock
 * configuration (cmd/buckets_cmd.c); 0, 1 with the S3 error on stderr, 2 on a usage error. */
int cmd_buckets(int argc, char **argv);

/* For the commands that talk to S3 (`reeld s3`, `reeld buckets`): loads the CA file (the
 * system's when NULL) for an https endpoint, starts one loop, creates the client from cfg's
 * S3_* settings and the other fields of `sc`, runs fn(client, arg), then stops and frees it
 * all (calling `after`, when not NULL, once the loop has stopped). Returns fn's status, or 1
 * after one line on stderr prefixed with `who`. */
int s3cmd_with_client(const char *who, const rd_config *cfg, const char *ca_file, s3_config *sc,
                      int (*fn)(s3_client *c, void *arg), void *arg, void (*after)(void));

#endif
