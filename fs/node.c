/*
 * What a path of the mount is now (node.h): a staged file, or a ledger entry shown
 * by the state tables' say, with the attributes the kernel is given for it.
 */
#include "node.h"

#include "drive.h"
#include "publish.h"

#include <errno.h>
#include <string.h>

/* Whether an entry may be shown: the state tables decide (DESIGN.md §4), less what
 * the verification sweep or an open found tampered. This node's pending records are
 * its own and shown as pending. */
bool fs_entry_exposable(struct fs_drive *d, const struct ledger_entry *e)
{
	return e->height < 0 || !fs_drive_is_bad(d, e->record_id, e->height);
}

bool fs_entry_owned(const struct fs_drive *d, const struct ledger_entry *e)
{
	return d->key && !memcmp(e->owner, d->me, LEDGER_KEY_LEN);
}

/* The I/O size a file says it prefers (st_blksize): the mount's largest request
 * (fs/ops.c's max_write). cp and cat size their buffers by it: at 128 KiB, a cp of
 * 512 MiB into the mount made eight times the requests and took 0.49 s at best, at
 * 1 MiB 0.32 s (8 rounds each; the machine's fresh pages make the rest vary). */
#define PREFERRED_IO (1 << 20)

void fs_entry_stat(const struct fs_drive *d, const struct ledger_entry *e, uint64_t ino,
                   struct stat *st)
{
	/* DESIGN.md §10: setuid, setgid and sticky bits are never shown */
	uint32_t mode = e->content.mode & 0777;
	/* a record may say any time: before the epoch reads as the epoch */
	int64_t mtime_ns = e->content.mtime_ns > 0 ? e->content.mtime_ns : 0;

	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = d->uid;
	st->st_gid = d->gid;
	st->st_blksize = PREFERRED_IO;
	if (e->is_dir) {
		if (!mode)
			mode = 0755;
		/* others may enter and list, and write only where the directory is open */
		if (!fs_entry_owned(d, e) && !(e->open && d->key))
			mode &= ~0222u;
		st->st_mode = S_IFDIR | mode;
		st->st_nlink = 2;
	} else {
		if (!mode)
			mode = 0644;
		/* DESIGN.md §7: the owner's files are writable, others' read-only */
		if (!fs_entry_owned(d, e))
			mode = (mode & ~0222u) | 0444;
		st->st_mode = S_IFREG | mode;
		st->st_nlink = 1;
		st->st_size = (off_t)e->content.length;
		st->st_blocks = (blkcnt_t)((e->content.length + 511) / 512);
	}
	st->st_mtim.tv_sec = mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = mtime_ns % 1000000000;
	st->st_atim = st->st_ctim = st->st_mtim;
}

static void root_entry(struct ledger_entry *e)
{
	memset(e, 0, sizeof *e);
	e->is_dir = true;
	e->content.mode = 0755;
}

/* Look path up and decide whether it is shown. */
int fs_entry_lookup(struct fs_drive *d, const char *path, struct ledger_entry *e)
{
	int err;

	if (!*path) {
		root_entry(e);
		err = ledger_lookup(d->ledger, "", e);
		if (err == -ENOENT || err == -EINVAL)
			root_entry(e);
		/* the root is the drive itself: everyone may publish at its top level
		 * unless the ledger says otherwise when a record is submitted */
		e->open = true;
		return 0;
	}
	err = ledger_lookup(d->ledger, path, e);
	if (err < 0)
		return err == -EINVAL ? -ENOENT : err;
	return fs_entry_exposable(d, e) ? 0 : -ENOENT;
}

int fs_node_get(struct fs_drive *d, const char *path, uint64_t ino, struct fs_node *n)
{
	int err;

	memset(n, 0, sizeof *n);
	if (*path && fs_staged_stat(d, path, &n->st) == 0) {
		n->staged = true;
		n->st.st_ino = ino;
		n->st.st_mode = S_IFREG | (n->st.st_mode & 0777);
		n->st.st_nlink = 1;
		n->st.st_uid = d->uid;
		n->st.st_gid = d->gid;
		n->st.st_blksize = PREFERRED_IO;
		/* as published files: nothing a tool compares (tar checks ctime) may
		 * change at the moment the record takes over */
		n->st.st_atim = n->st.st_ctim = n->st.st_mtim;
		return 0;
	}
	if ((err = fs_entry_lookup(d, path, &n->e)) < 0)
		return err;
	fs_entry_stat(d, &n->e, ino, &n->st);
	return 0;
}

/* A staged file changes under its writer: the kernel must ask every time. */
double fs_node_timeout(const struct fs_node *n)
{
	if (n->staged)
		return 0.0;
	return n->e.height < 0 ? FS_TIMEOUT_PENDING : FS_TIMEOUT_CONFIRMED;
}
