/*
 * fs/mount_opts — swarmfs as a mount(8) helper and its -o options (private to fs/).
 *
 * mount -t fuse.swarmfs DRIVE DIR -o OPTS (or an fstab line of type fuse.swarmfs)
 * runs mount.fuse3, which runs `swarmfs DRIVE DIR -o OPTS`: main() hands that form to
 * fs_cmd_mount_helper. Every `swarmfs mount` flag is also an -o option, spelled with
 * '_' or '-' (home=DIR, key=NAME, cache_size=SIZE, listen=ADDR:PORT, tracker=URL,
 * peer=HOST:PORT and dht_bootstrap=HOST:PORT, repeatable, no_dht, lsd, utp[=on|off],
 * upload_limit=SIZE, no_receipts, read_timeout=SECS, volunteer=SIZE, seed_max=N,
 * allow_other; -f and -d have
 * none: a mount(8) helper returns once mounted, and FUSE's own "debug" traces); DRIVE may be a
 * FILE.torrent or a magnet, as for `swarmfs mount`. mount(8)'s own options (noauto,
 * _netdev, nofail, user, x-*, ...) are dropped, and every other option goes to FUSE.
 *
 * Main thread. Errors: -errno.
 */
#ifndef SWARMFS_FS_MOUNT_OPTS_H
#define SWARMFS_FS_MOUNT_OPTS_H

/* Rewrite a `swarmfs mount` argument vector: each -o list ("-o LIST" or "-oLIST") has
 * its swarmfs options turned into the matching long flags and its mount(8)-only
 * options dropped; the FUSE options left over become one -o list. *out_argv is NULL-terminated;
 * free it with fs_mount_argv_free. -ENOMEM, or -EINVAL for an empty option value (with a message).
 */
int fs_mount_argv_expand(int argc, char **argv, int *out_argc, char ***out_argv);
void fs_mount_argv_free(char **argv);

/* The mount(8) helper form: argv = { "swarmfs", DRIVE, DIR, [-o OPTS]... } is run as
 * `swarmfs mount [-o OPTS] -- DRIVE DIR` by mount (fs_cmd_mount: main.c holds it),
 * which mounts in the background (the helper must return once the mount is up).
 * Returns the exit code. */
int fs_cmd_mount_helper(int argc, char **argv, int (*mount)(int argc, char **argv));

#endif
