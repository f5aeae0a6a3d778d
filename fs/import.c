/* swarmfs add, the mount's side: an existing torrent becomes claims in the drive. See
 * import.h. */
#include "import.h"

#include "drive.h"
#include "engine.h"
#include "fs.h"
#include "ops.h"
#include "publish.h"

#include <ledger.h>
#include <swarm.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void fs_import_why(struct fs_drive *d, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&d->add_lock);
	va_start(ap, fmt);
	vsnprintf(d->add_error, sizeof d->add_error, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&d->add_lock);
	fs_warn("swarmfs add: %s", d->add_error);
}

/* The drive path of file i: top itself for a torrent of one file, else top and the
 * file's path inside the torrent without the torrent's own name. */
static char *file_path(const struct swarm_metainfo *m, const char *top, uint32_t i)
{
	const char *inner = m->files[i].path, *slash;
	char *p;

	if (m->num_files == 1)
		return strdup(top);
	slash = strchr(inner, '/');
	inner = slash ? slash + 1 : inner;
	return asprintf(&p, "%s/%s", top, inner) < 0 ? NULL : p;
}

static void content_of(const struct swarm_metainfo *m, uint32_t i, struct ledger_content *c)
{
	memset(c, 0, sizeof *c);
	c->length = m->files[i].size;
	c->piece_length = m->piece_length;
	c->mode = 0644;
	c->mtime_ns = (int64_t)time(NULL) * 1000000000;
	c->has_ih1 = m->has_v1;
	memcpy(c->ih1, m->v1, 20);
	if (m->has_v2) {
		memcpy(c->ih2, m->v2, 32);
		if (m->files[i].has_root)
			memcpy(c->root, m->files[i].root, 32);
	} else { /* v1 only: the engine's key, no pieces root */
		memcpy(c->ih2, m->v1, 20);
	}
	if (m->num_files > 1) {
		c->has_file = true;
		c->file_index = i;
		c->file_offset = m->files[i].offset;
	}
}

void fs_import_no_metadata(struct fs_drive *d, const char *source, int err)
{
	/* named by its hash: the rest of a magnet is noise here */
	const char *h = strstr(source, "urn:btih:");
	int n;

	h = h ? h + 9 : (h = strstr(source, "urn:btmh:")) ? h + 9 : source;
	n = (int)strcspn(h, "&");
	if (err == -ETIMEDOUT || err == -EIO) /* the waiter's deadline passed */
		fs_import_why(d, "no metadata for %.*s after %d s (is anyone seeding it?)", n, h,
		              d->read_timeout_ms / 1000);
	else
		fs_import_why(d, "no metadata for %.*s: %s", n, h, strerror(-err));
}

void fs_import_plan_free(char *top, char **paths, uint32_t n)
{
	for (uint32_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(top);
}

int fs_import_plan(struct fs_drive *d, const char *dirpath, const char *name,
                   const struct swarm_metainfo *m, char **out_top, char ***out_paths)
{
	struct ledger_entry e;
	char *top = NULL, **paths = NULL;
	int err = 0;

	if (!*name)
		name = m->name; /* "/dest/": into the directory, under the torrent's own name */
	if (strchr(name, '/') || asprintf(&top, "%s%s%s", dirpath, *dirpath ? "/" : "", name) < 0) {
		top = NULL;
		err = -EINVAL;
		goto out;
	}
	if ((err = fs_path_may_create(d, top)) < 0) {
		fs_import_why(d, "cannot create /%s: %s", top, strerror(-err));
		goto out;
	}
	/* nothing of it may exist yet: all of the torrent or none of it (a file still being
	 * written there counts too) */
	if (ledger_lookup(d->ledger, top, &e) == 0 ||
	    fs_staged_stat(d, top, &(struct stat){ 0 }) == 0) {
		fs_import_why(d, "/%s exists already", top);
		err = -EEXIST;
		goto out;
	}
	if (!(paths = calloc(m->num_files, sizeof *paths))) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < m->num_files; i++) {
		if (!(paths[i] = file_path(m, top, i))) {
			err = -ENOMEM;
			goto out;
		}
	}
	*out_top = top;
	*out_paths = paths;
	return 0;
out:
	fs_import_plan_free(top, paths, m->num_files);
	return err;
}

int fs_import(struct fs_drive *d, const char *dirpath, const char *name, const char *source,
              const void *bytes, size_t len)
{
	struct swarm_metainfo *m = NULL;
	char *top = NULL, **paths = NULL;
	const char *why = "";
	int err;

	if (ledger_is_private(d->ledger))
		return -EMEDIUMTYPE; /* fs/import_fetch's: its content must be encrypted */
	if ((err = swarm_metainfo_parse(bytes, len, &m, &why)) < 0) {
		fs_import_why(d, "%s is not a torrent file (%s)", source, why);
		err = -EBADMSG;
		goto out;
	}
	if ((err = fs_import_plan(d, dirpath, name, m, &top, &paths)) < 0)
		goto out;
	uint8_t key[CACHE_KEY_LEN]; /* the torrent's, as the records' ih2 names it */

	fs_engine_key(m, key);
	if ((err = fs_save_torrent(d, key, bytes, len)) < 0)
		goto out;
	for (uint32_t i = 0; i < m->num_files; i++) {
		struct ledger_op op = { .type = LEDGER_REC_CLAIM, .path = paths[i] };

		content_of(m, i, &op.content);
		/* the ledger makes the directories between top and the file (implicit
		 * parents) */
		if ((err = ledger_submit(d->ledger, &op, NULL)) < 0) {
			fs_import_why(d, "cannot claim /%s: %s", paths[i], strerror(-err));
			goto out;
		}
	}
	fs_info("added %s as /%s (%u file%s)", source, top, m->num_files,
	        m->num_files == 1 ? "" : "s");
out:
	if (m)
		fs_import_plan_free(top, paths, m->num_files);
	swarm_metainfo_free(m);
	return err;
}
