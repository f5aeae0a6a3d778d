/* The ledger commands of the swarmfs program (private to fs/): key, init, drive, log,
 * verify. Each returns a process exit code: 0 done, 1 failed (verify: problems found),
 * FS_EXIT_USAGE for bad arguments. Main thread. */
#ifndef SWARMFS_FS_CMD_LEDGER_H
#define SWARMFS_FS_CMD_LEDGER_H

int fs_cmd_key(int argc, char **argv);
int fs_cmd_init(int argc, char **argv);
int fs_cmd_drive(int argc, char **argv);
int fs_cmd_log(int argc, char **argv);
int fs_cmd_verify(int argc, char **argv);
int fs_cmd_invite(int argc, char **argv);
int fs_cmd_credit(int argc, char **argv);
int fs_cmd_health(int argc, char **argv);

#endif
