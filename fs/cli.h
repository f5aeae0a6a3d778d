/* Argument helpers shared by the swarmfs commands (private to fs/). Main thread. */
#ifndef SWARMFS_FS_CLI_H
#define SWARMFS_FS_CLI_H

#include <stdbool.h>

/* Whether argv[1..] holds the flag (e.g. "--json") before a "--"; every occurrence is
 * removed from argv (and *argc lowered), so a command's own parser never sees it. */
bool fs_cli_take_flag(int *argc, char **argv, const char *flag);

#endif
