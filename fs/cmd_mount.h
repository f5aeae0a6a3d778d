/* Commands that act on a mounted drive: they ask the mount itself through xattrs on
 * its paths, never ledger.db behind its back (DESIGN.md §7). Main thread. */
#ifndef SWARMFS_FS_CMD_MOUNT_H
#define SWARMFS_FS_CMD_MOUNT_H

int fs_cmd_transfer(int argc, char **argv);
int fs_cmd_status(int argc, char **argv);
int fs_cmd_magnet(int argc, char **argv);
int fs_cmd_rekey(int argc, char **argv);
int fs_cmd_add(int argc, char **argv);
int fs_cmd_pin(int argc, char **argv);
int fs_cmd_unpin(int argc, char **argv);

/* Read the attribute user.swarmfs.NAME of path into a malloc'd NUL-terminated string
 * (*out, free with free()). -ENODATA/-ENOTSUP mean path is not in a swarmfs mount (or
 * has no such fact); user.swarmfs.drive succeeds on a mount's root only. */
int fs_mount_ask(const char *path, const char *name, char **out);

#endif
