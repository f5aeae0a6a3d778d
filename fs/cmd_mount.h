/* Commands that act on a mounted drive: they ask the mount itself through xattrs on
 * its paths, never ledger.db behind its back (DESIGN.md §7). Main thread. */
#ifndef SWARMFS_FS_CMD_MOUNT_H
#define SWARMFS_FS_CMD_MOUNT_H

int fs_cmd_transfer(int argc, char **argv);
int fs_cmd_status(int argc, char **argv);
int fs_cmd_magnet(int argc, char **argv);
int fs_cmd_add(int argc, char **argv);

#endif
