/*
 * What a publish record signs is on disk before the signature (private to fs/), and
 * what a crash left signed is taken up at the next start.
 *
 * A public drive's staged files are their objects: a batch is made durable by one
 * syncfs (closes and the torrents' writes do not fsync each), or a small one file by
 * file, as a private drive's (fs/publish.c says when). A private drive's objects
 * are the ciphertexts the pack wrote beside the staged plaintexts, named by their IV's
 * nonce, and the plaintexts are removed once published: a batch syncs those
 * ciphertexts and their torrents alone, not the plaintexts (as many bytes again,
 * written back for nothing). A crash after the record then leaves a ciphertext the
 * record signs and a plaintext that may be torn: the next start adopts the ciphertext
 * and publishes nothing again (fs_durable_recover).
 *
 * Threads: the publish worker (fs_durable_batch) and the mount's start, before the
 * worker runs (fs_durable_recover). Errors: -errno.
 */
#ifndef SWARMFS_FS_DURABLE_H
#define SWARMFS_FS_DURABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct fs_drive;
struct ledger_queue_item;

/* Before a batch's records are signed: with files NULL, everything staged (syncfs of
 * the staging directory's file system); else the n objects files[i] with their torrents
 * <drive>/torrents/<hex of keys[i]>.torrent, and both directories. 0 or -errno (then
 * nothing may be signed). */
int fs_durable_batch(struct fs_drive *d, const char *const *files, const uint8_t (*keys)[32],
                     size_t n);

/* A private drive's queue item whose staged plaintext still exists: if this node's
 * record at its path signs a ciphertext still beside it (the crash came between the
 * record and the cache's adoption), that ciphertext goes into the cache and 0 is
 * returned: the publish is over (the caller drops the item and the plaintext). staged:
 * the caller's stat of the staged plaintext.
 * -ENOENT when the item is not such a one (publish it as usual); another -errno when
 * the adoption failed (the files stay; publish it as usual). Reads the whole
 * ciphertext. */
int fs_durable_recover(struct fs_drive *d, const struct ledger_queue_item *it,
                       const struct stat *staged);

#endif
