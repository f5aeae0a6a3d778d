/*
 * A directory's listing as one snapshot taken at opendir and served by offset
 * (dirsnap.h): staged files first, then the confirmed children (by name alone while
 * nothing was found bad), then this node's pending records.
 */
#include "dirsnap.h"

#include "drive.h"
#include "node.h"
#include "publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fs_dirsnap_free(struct fs_dirsnap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].name);
	free(s->items);
	free(s->path);
	free(s->child);
	free(s);
}

#define LIST_BATCH 256

static int snap_add(struct fs_dirsnap *s, const char *name, const struct stat *st, double timeout)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct fs_dir_item *ni = realloc(s->items, ncap * sizeof *ni);

		if (!ni)
			return -ENOMEM;
		s->items = ni;
		s->cap = ncap;
	}
	s->items[s->n].name = strdup(name);
	if (!s->items[s->n].name)
		return -ENOMEM;
	s->items[s->n].st = *st;
	s->items[s->n].timeout = timeout;
	s->items[s->n].loaded = true;
	s->n++;
	return 0;
}

static bool snap_staged_has(char **staged, int nstaged, const char *name)
{
	for (int j = 0; j < nstaged; j++)
		if (!strcmp(staged[j], name))
			return true;
	return false;
}

/* The confirmed children with their records (attributes loaded), leaving out those
 * found bad and the names staged already. */
static int snap_load_entries(struct fs_drive *d, const char *path, char **staged, int nstaged,
                             struct fs_dirsnap *s)
{
	struct ledger_entry *batch = malloc(LIST_BATCH * sizeof *batch);
	char after[LEDGER_NAME_MAX + 1] = "";
	size_t got = LIST_BATCH;
	int err = batch ? 0 : -ENOMEM;

	while (!err && got == LIST_BATCH &&
	       (err = ledger_list(d->ledger, path, after, batch, LIST_BATCH, &got)) == 0) {
		for (size_t i = 0; i < got && !err; i++) {
			struct stat st;

			if (snap_staged_has(staged, nstaged, batch[i].name) ||
			    !fs_entry_exposable(d, &batch[i]))
				continue;
			fs_entry_stat(d, &batch[i], 0, &st);
			err = snap_add(s, batch[i].name, &st,
			               batch[i].height < 0 ? FS_TIMEOUT_PENDING
			                                   : FS_TIMEOUT_CONFIRMED);
		}
		if (got)
			snprintf(after, sizeof after, "%s", batch[got - 1].name);
	}
	free(batch);
	return err;
}

/* The confirmed children by name and kind alone, read from an index (issue 18: a
 * fresh find over 1M files read every record). Their attributes are loaded when
 * readdirplus hands them out (fs_dirsnap_item_load). Only while nothing was found bad:
 * leaving a bad record out needs the record. */
static int snap_load_names(struct fs_drive *d, const char *path, char **staged, int nstaged,
                           struct fs_dirsnap *s)
{
	struct ledger_name *batch = malloc(LIST_BATCH * sizeof *batch);
	char after[LEDGER_NAME_MAX + 1] = "";
	size_t got = LIST_BATCH;
	int err = batch ? 0 : -ENOMEM;

	while (!err && got == LIST_BATCH &&
	       (err = ledger_list_names(d->ledger, path, after, batch, LIST_BATCH, &got)) == 0) {
		for (size_t i = 0; i < got && !err; i++) {
			struct stat st = { .st_mode = batch[i].is_dir ? S_IFDIR : S_IFREG };

			if (snap_staged_has(staged, nstaged, batch[i].name))
				continue;
			if ((err = snap_add(s, batch[i].name, &st, FS_TIMEOUT_CONFIRMED)) == 0)
				s->items[s->n - 1].loaded = false;
		}
		if (got)
			snprintf(after, sizeof after, "%s", batch[got - 1].name);
	}
	free(batch);
	return err;
}

static int snap_load(struct fs_drive *d, const char *path, struct fs_dirsnap *s)
{
	char **staged = NULL;
	int err = 0, nstaged;

	/* staged files first: this node's newest version of a name wins */
	nstaged = fs_staged_children(d, path, &staged);
	for (int i = 0; i < nstaged && !err; i++) {
		struct fs_node n;
		char *full;

		if (asprintf(&full, "%s%s%s", path, *path ? "/" : "", staged[i]) < 0) {
			err = -ENOMEM;
			break;
		}
		if (fs_node_get(d, full, 0, &n) == 0)
			err = snap_add(s, staged[i], &n.st, 0.0);
		free(full);
	}
	if (!err)
		err = fs_drive_any_bad(d) ? snap_load_entries(d, path, staged, nstaged, s)
		                          : snap_load_names(d, path, staged, nstaged, s);
	/* this node's records still waiting for a block (a member without a producer
	 * online): shown as pending, as DESIGN.md §7 says, not only found by name */
	char **pend = NULL;
	size_t npend = 0;

	if (!err && ledger_pending_children(d->ledger, *path ? path : "/", &pend, &npend) == 0) {
		for (size_t i = 0; i < npend && !err; i++) {
			struct ledger_entry e;
			struct stat st;
			char *full;
			bool dup = false;

			for (size_t j = 0; j < s->n && !dup; j++)
				dup = !strcmp(s->items[j].name, pend[i]);
			if (!dup &&
			    asprintf(&full, "%s%s%s", path, *path ? "/" : "", pend[i]) >= 0) {
				if (fs_entry_lookup(d, full, &e) == 0 && e.height < 0 &&
				    fs_entry_exposable(d, &e)) {
					fs_entry_stat(d, &e, 0, &st);
					err = snap_add(s, pend[i], &st, FS_TIMEOUT_PENDING);
				}
				free(full);
			}
		}
		for (size_t i = 0; i < npend; i++)
			free(pend[i]);
		free(pend);
	}
	for (int i = 0; i < nstaged; i++)
		free(staged[i]);
	free(staged);
	return err;
}

int fs_dirsnap_item_load(struct fs_drive *d, struct fs_dirsnap *s, size_t i)
{
	struct fs_dir_item *it = &s->items[i];
	const char *full;
	struct fs_node n;
	int err;

	if (it->loaded)
		return 0;
	if (!(full = fs_dirsnap_child(s, i)))
		return -ENOMEM;
	if ((err = fs_node_get(d, full, 0, &n)) < 0)
		return err;
	it->st = n.st;
	it->timeout = fs_node_timeout(&n);
	it->loaded = true;
	return 0;
}

int fs_dirsnap_load(struct fs_drive *d, const char *path, struct fs_dirsnap **out)
{
	struct fs_dirsnap *s = calloc(1, sizeof *s);
	size_t n = strlen(path);
	int err;

	if (!s || !(s->path = strdup(path))) {
		free(s);
		return -ENOMEM;
	}
	/* the children's paths are built in place: the prefix once, then each name */
	s->child_cap = n + 1 + LEDGER_NAME_MAX + 1;
	if (!(s->child = malloc(s->child_cap))) {
		fs_dirsnap_free(s);
		return -ENOMEM;
	}
	memcpy(s->child, path, n);
	if (n)
		s->child[n++] = '/';
	s->child[n] = 0;
	s->child_dir_len = n;
	if ((err = snap_load(d, path, s)) < 0) {
		fs_dirsnap_free(s);
		return err;
	}
	*out = s;
	return 0;
}

const char *fs_dirsnap_child(struct fs_dirsnap *s, size_t i)
{
	size_t n = strlen(s->items[i].name) + 1;

	if (s->child_dir_len + n > s->child_cap) {
		char *c = realloc(s->child, s->child_dir_len + n);

		if (!c)
			return NULL;
		s->child = c;
		s->child_cap = s->child_dir_len + n;
	}
	memcpy(s->child + s->child_dir_len, s->items[i].name, n);
	return s->child;
}
