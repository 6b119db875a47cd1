/* The commands of the reeld binary. Each takes the arguments after its name (argv[0] is the
 * command's name) and returns the process exit status. */
#ifndef REELD_CMD_H
#define REELD_CMD_H

#include "src/rt/config.h"

/* Runs the server until SIGINT or SIGTERM, then drains and returns 0. */
int cmd_serve(int argc, char **argv);

/* Prints a presigned PUT or GET URL for BUCKET/KEY (src/presign.c); 2 on a bad flag. */
int cmd_presign(int argc, char **argv);

#endif
