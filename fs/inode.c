#include "inode.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_INO     1 /* FUSE_ROOT_ID, without including libfuse here */
#define PATH_MAX_LEN 4096

struct node {
	uint64_t ino;
	uint64_t nlookup;
	char *path;           /* NULL once detached by a rename over it */
	uint64_t path_hash;   /* hash_str(path) while path != NULL */
	struct node *by_ino;  /* hash chain */
	struct node *by_path; /* hash chain, only while path != NULL */
};

struct fs_inodes {
	pthread_mutex_t lock; /* guards everything below */
	struct node **ino_tab, **path_tab;
	size_t buckets; /* power of two, the same for both tables */
	uint64_t count;
	uint64_t next_ino;
};

/* FNV-1a: short keys, good enough spread, no allocation. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static uint64_t hash_ino(uint64_t ino)
{
	return ino * 0x9E3779B97F4A7C15ULL;
}

static void link_path(struct fs_inodes *t, struct node *n)
{
	size_t b = (n->path_hash = hash_str(n->path)) & (t->buckets - 1);

	n->by_path = t->path_tab[b];
	t->path_tab[b] = n;
}

static void unlink_path(struct fs_inodes *t, struct node *n)
{
	struct node **pp = &t->path_tab[n->path_hash & (t->buckets - 1)];

	while (*pp != n)
		pp = &(*pp)->by_path;
	*pp = n->by_path;
}

static void link_ino(struct fs_inodes *t, struct node *n)
{
	size_t b = hash_ino(n->ino) & (t->buckets - 1);

	n->by_ino = t->ino_tab[b];
	t->ino_tab[b] = n;
}

static struct node *find_path_hashed(struct fs_inodes *t, const char *path, uint64_t h)
{
	struct node *n = t->path_tab[h & (t->buckets - 1)];

	while (n && (n->path_hash != h || strcmp(n->path, path)))
		n = n->by_path;
	return n;
}

static struct node *find_path(struct fs_inodes *t, const char *path)
{
	return find_path_hashed(t, path, hash_str(path));
}

static struct node *find_ino(struct fs_inodes *t, uint64_t ino)
{
	struct node *n = t->ino_tab[hash_ino(ino) & (t->buckets - 1)];

	while (n && n->ino != ino)
		n = n->by_ino;
	return n;
}

/* Double both tables when the load passes 1, so chains stay short at 100k+ entries. */
static void maybe_grow(struct fs_inodes *t)
{
	size_t nb = t->buckets * 2;
	struct node **it, **pt, *all = NULL;

	if (t->count < t->buckets)
		return;
	it = calloc(nb, sizeof *it);
	pt = calloc(nb, sizeof *pt);
	if (!it || !pt) { /* keep the old tables: slower, still correct */
		free(it);
		free(pt);
		return;
	}
	for (size_t i = 0; i < t->buckets; i++) {
		for (struct node *n = t->ino_tab[i], *next; n; n = next) {
			next = n->by_ino;
			n->by_path = all; /* reuse as a temporary list */
			all = n;
		}
	}
	free(t->ino_tab);
	free(t->path_tab);
	t->ino_tab = it;
	t->path_tab = pt;
	t->buckets = nb;
	for (struct node *n = all, *next; n; n = next) {
		next = n->by_path;
		link_ino(t, n);
		if (n->path)
			link_path(t, n);
	}
}

int fs_inodes_new(struct fs_inodes **out_table)
{
	struct fs_inodes *t = calloc(1, sizeof *t);
	struct node *root = calloc(1, sizeof *root);

	if (!t || !root)
		goto nomem;
	t->buckets = 1024;
	t->ino_tab = calloc(t->buckets, sizeof *t->ino_tab);
	t->path_tab = calloc(t->buckets, sizeof *t->path_tab);
	root->path = strdup("");
	if (!t->ino_tab || !t->path_tab || !root->path)
		goto nomem;
	pthread_mutex_init(&t->lock, NULL);
	root->ino = ROOT_INO;
	root->nlookup = 1; /* the kernel's own reference, never forgotten */
	link_ino(t, root);
	link_path(t, root);
	t->count = 1;
	t->next_ino = ROOT_INO + 1;
	*out_table = t;
	return 0;
nomem:
	if (t) {
		free(t->ino_tab);
		free(t->path_tab);
	}
	if (root)
		free(root->path);
	free(root);
	free(t);
	return -ENOMEM;
}

void fs_inodes_free(struct fs_inodes *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->buckets; i++) {
		for (struct node *n = t->ino_tab[i], *next; n; n = next) {
			next = n->by_ino;
			free(n->path);
			free(n);
		}
	}
	free(t->ino_tab);
	free(t->path_tab);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int fs_inodes_ref(struct fs_inodes *t, const char *path, uint64_t *out_ino)
{
	struct node *n;
	int err = 0;

	if (strlen(path) >= PATH_MAX_LEN)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&t->lock);
	n = find_path(t, path);
	if (!n) {
		n = calloc(1, sizeof *n);
		if (n)
			n->path = strdup(path);
		if (!n || !n->path) {
			free(n);
			err = -ENOMEM;
			goto out;
		}
		n->ino = t->next_ino++;
		link_ino(t, n);
		link_path(t, n);
		t->count++;
		maybe_grow(t);
	}
	n->nlookup++;
	*out_ino = n->ino;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

int fs_inodes_path(struct fs_inodes *t, uint64_t ino, char **out_path)
{
	struct node *n;
	char *p = NULL;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (!n || !n->path)
		err = -ESTALE;
	else if (!(p = strdup(n->path)))
		err = -ENOMEM;
	pthread_mutex_unlock(&t->lock);
	if (!err)
		*out_path = p;
	return err;
}

uint64_t fs_inodes_find(struct fs_inodes *t, const char *path)
{
	struct node *n;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	n = find_path(t, path);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

uint64_t fs_inodes_dirent_ino(struct fs_inodes *t, const char *path)
{
	uint64_t h = hash_str(path), ino;
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_path_hashed(t, path, h);
	ino = n ? n->ino : h | (1ULL << 63);
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void fs_inodes_forget(struct fs_inodes *t, uint64_t ino, uint64_t nlookup)
{
	struct node *n, **pp;

	if (ino == ROOT_INO)
		return;
	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (!n)
		goto out;
	n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
	if (n->nlookup)
		goto out;
	pp = &t->ino_tab[hash_ino(ino) & (t->buckets - 1)];
	while (*pp != n)
		pp = &(*pp)->by_ino;
	*pp = n->by_ino;
	if (n->path)
		unlink_path(t, n);
	free(n->path);
	free(n);
	t->count--;
out:
	pthread_mutex_unlock(&t->lock);
}

/* Whether path is prefix itself or lies beneath it. */
static bool under(const char *path, const char *prefix, size_t plen)
{
	return !strncmp(path, prefix, plen) && (path[plen] == '\0' || path[plen] == '/');
}

int fs_inodes_rename(struct fs_inodes *t, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);
	struct node *moved = NULL;
	int err = 0;

	if (!flen || !tlen)
		return -EINVAL; /* the root neither moves nor is replaced */
	if (tlen >= PATH_MAX_LEN)
		return -ENAMETOOLONG;
	if (under(to, from, flen))
		return -EINVAL; /* into itself, as rename(2) says */
	pthread_mutex_lock(&t->lock);
	/* Two passes over the table: detach whatever sits at the target, then re-key
	 * the moved subtree. Renames are rare next to lookups; a directory rename in a
	 * 100k-entry table costs about a millisecond. */
	for (size_t i = 0; i < t->buckets; i++) {
		for (struct node *n = t->ino_tab[i]; n; n = n->by_ino) {
			if (n->path && under(n->path, to, tlen) && !under(n->path, from, flen)) {
				unlink_path(t, n);
				free(n->path);
				n->path = NULL;
			}
		}
	}
	for (size_t i = 0; i < t->buckets; i++) {
		for (struct node *n = t->ino_tab[i]; n; n = n->by_ino) {
			if (n->path && under(n->path, from, flen)) {
				size_t rest = strlen(n->path + flen);
				char *np = malloc(tlen + rest + 1);

				if (!np) {
					err = -ENOMEM; /* this one keeps its old name */
					continue;
				}
				memcpy(np, to, tlen);
				memcpy(np + tlen, n->path + flen, rest + 1);
				unlink_path(t, n);
				free(n->path);
				n->path = np;
				n->by_path = moved; /* relink after the walk: keys changed */
				moved = n;
			}
		}
	}
	for (struct node *n = moved, *next; n; n = next) {
		next = n->by_path;
		link_path(t, n);
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

void fs_inodes_each(struct fs_inodes *t, void (*fn)(const char *path, void *ctx), void *ctx)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->buckets; i++)
		for (struct node *n = t->ino_tab[i]; n; n = n->by_ino)
			if (n->path)
				fn(n->path, ctx);
	pthread_mutex_unlock(&t->lock);
}

uint64_t fs_inodes_count(struct fs_inodes *t)
{
	uint64_t c;

	pthread_mutex_lock(&t->lock);
	c = t->count;
	pthread_mutex_unlock(&t->lock);
	return c;
}
