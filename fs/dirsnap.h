/* A directory's listing, taken whole at opendir and served by offset to readdir and
 * readdirplus (private to fs/): what the handle of an open directory holds, so that a
 * listing is one consistent view however the kernel pages it.
 *
 * Threads: a snapshot is used by one thread at a time (the kernel serialises the
 * readdir calls of one open directory); loading takes the ledger's lock per page. */
#ifndef SWARMFS_FS_DIRSNAP_H
#define SWARMFS_FS_DIRSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct fs_drive;

struct fs_dirsnap {
	char *path; /* the directory's drive path ("" is the root) */
	size_t n, cap;
	struct fs_dir_item {
		char *name;
		struct stat st; /* st_ino filled at readdirplus time */
		double timeout;
		bool loaded; /* st holds the attributes; else only the kind (S_IFMT) */
	} * items;
	char *child; /* path + "/" + a child's name, built by fs_dirsnap_child */
	size_t child_dir_len, child_cap;
};

/* The listing of directory path now, in *out (fs_dirsnap_free it): 0, -ENOMEM, or the
 * ledger's -errno. */
int fs_dirsnap_load(struct fs_drive *d, const char *path, struct fs_dirsnap **out);
void fs_dirsnap_free(struct fs_dirsnap *s);
/* The drive path of item i, in the snapshot's own buffer: valid until the next call
 * on s. NULL when out of memory. */
const char *fs_dirsnap_child(struct fs_dirsnap *s, size_t i);
/* Load the attributes of item i if the snapshot has its name and kind alone, as a
 * lookup would give them now: 0, or -ENOENT when it is gone or hidden since. */
int fs_dirsnap_item_load(struct fs_drive *d, struct fs_dirsnap *s, size_t i);

#endif
