/* What the one-job commands (`reeld transcode`, `reeld export`) share on their command line:
 * reading a flag that takes a value, passing the settings' flags on to config_load, and the
 * progress they print on stderr.
 *
 * owns:  nothing; every function works on what it is given.
 * never: exits, prints a usage message (the command does, in its own words), or knows a
 *        command's flags. */
#ifndef REELD_CMD_CLI_H
#define REELD_CMD_CLI_H

#include <stdint.h>

/* argv[*i] as one of the `n` flags of `names` that take a value: "--name=VALUE", or "--name"
 * with VALUE the next argument (*i then moves past it). Returns the flag's index with *val set
 * (NULL when the value is missing), or -1 when argv[*i] is none of them. */
int cli_flag(int argc, char **argv, int *i, const char *const *names, int n, const char **val);

/* argv[*i], when it is a setting's flag ("--log ..."), with its value (the next argument
 * unless written "--name=VALUE"), appended to rest[*nrest...] for config_load: 1, or 0 when
 * argv[*i] is no flag. `rest` has room for argc entries. */
int cli_setting(int argc, char **argv, int *i, char **rest, int *nrest);

/* One progress report on stderr: on a terminal (`tty`) a bar redrawn in place (*bar_shown set:
 * the command ends the line), else one plain line. */
void cli_progress(int tty, int *bar_shown, double percent, double fps, double speed,
                  int64_t frames);

#endif
