/* What a path of a mounted drive is now, and the attributes the kernel is given for it
 * (private to fs/): for the FUSE handlers (ops.c, xattr.c) and the directory snapshot
 * (dirsnap.c). Any thread; each call takes the ledger's lock for its lookup. */
#ifndef SWARMFS_FS_NODE_H
#define SWARMFS_FS_NODE_H

#include <ledger.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct fs_drive;

/* Confirmed content never changes under a record id, and every ledger change is sent
 * to the kernel as an invalidation, so the kernel may keep what it learnt for long.
 * A pending record may still lose to another in a block: ask again soon (seconds). */
#define FS_TIMEOUT_CONFIRMED 3600.0
#define FS_TIMEOUT_PENDING   1.0

/* What a path is now: a staged file (being written or published: this node's newest
 * version wins) or a ledger entry. */
struct fs_node {
	bool staged;
	struct ledger_entry e; /* when not staged */
	struct stat st;
};

/* Look path ("" is the root) up in the ledger's state and decide whether it is shown:
 * 0 and *e, or -ENOENT (absent, or found tampered), -errno. */
int fs_entry_lookup(struct fs_drive *d, const char *path, struct ledger_entry *e);
/* Whether e may be shown: the state tables decide (DESIGN.md §4), less what the
 * verification sweep or an open found tampered. */
bool fs_entry_exposable(struct fs_drive *d, const struct ledger_entry *e);
/* Whether this node's key owns e. */
bool fs_entry_owned(const struct fs_drive *d, const struct ledger_entry *e);
/* The attributes of e as this mount shows them, with inode number ino. */
void fs_entry_stat(const struct fs_drive *d, const struct ledger_entry *e, uint64_t ino,
                   struct stat *st);
/* What path is now, with ino as its number: 0 and *n, -ENOENT, -errno. */
int fs_node_get(struct fs_drive *d, const char *path, uint64_t ino, struct fs_node *n);
/* How long the kernel may keep n's entry and attributes (seconds). */
double fs_node_timeout(const struct fs_node *n);

#endif
