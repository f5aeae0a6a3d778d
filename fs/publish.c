#define FUSE_USE_VERSION 312
#include "publish.h"

#include "cipher.h"
#include "drive.h"
#include "durable.h"
#include "follow.h"
#include "fs.h"
#include "pack.h"
#include "pagecache.h"
#include "seedback.h"
#include "warm.h"

#include <cache.h>
#include <ledger.h>
#include <swarm.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fs_staged {
	char *path;      /* where it will be published (changes on rename) */
	char *file;      /* <drive>/staging/<n>/<basename> */
	int fd;          /* O_RDWR on file, open while anyone has it open */
	int opens;       /* open handles */
	int writers;     /* of which writers */
	bool dirty;      /* written or created since last queued */
	bool queued;     /* a queue item exists for it */
	bool in_hand;    /* the worker is publishing it now */
	bool failed;     /* its last attempt failed (reason logged, in the queue) */
	bool held;       /* failed for good: queued before a restart and found at another
	                  * size than its writer closed it at (the machine stopped before
	                  * the bytes reached the disk); published when written again */
	int fails;       /* attempts failed in a row */
	time_t retry_at; /* failed: tried again from then on (the cause may pass: a
	                  * membership arriving by sync, a full disk freed) */
	bool detached;   /* published or unlinked while open: off the list, freed at last
	                  * close */
	bool unlinked;   /* removed while open: its data lives on in the open fds only, and it
	                  * is never published; it waits in p->orphans */
	uint64_t ino;    /* unlinked: the inode number the kernel still stats it by */
	int64_t queue_id;
	/* packing it while it is written (fs/follow.h), or NULL; the worker takes it */
	struct fs_follow *follow;
	bool nofollow;    /* changed other than by fs_staged_write: never followed again */
	int64_t ready_ms; /* when its last writer closed it (CLOCK_REALTIME, ms) */
	struct fs_staged *next, *prev; /* p->list (oldest first), or next in p->orphans */
	struct fs_staged *hnext;       /* p->buckets' chain of its path's hash */
};

enum { SPARES = 16 }; /* spare staging files kept ready: cp -r takes one a file */

struct fs_publisher {
	pthread_mutex_t lock; /* guards the list and the counters below */
	pthread_cond_t cond;  /* the worker waits here for work */
	pthread_cond_t idle;  /* broadcast when the worker puts an item down */
	/* tests (SWARMFS_TEST_KILL_AT=signed): the process dies once a batch is signed */
	bool kill_at_signed;
	struct fs_staged *list, *tail;
	/* the list's entries by path: a cp -r of thousands of files looks each new name
	 * up several times (lookup, create, stat), and a walk of the list per lookup made
	 * the copy quadratic */
	struct fs_staged **buckets;
	size_t nbuckets, count;
	struct fs_staged *orphans; /* unlinked while open, by the mount's inode number */
	struct fs_warmer *warmer;  /* a private drive's: new ciphertexts read in; or NULL */
	uint64_t seq;              /* for staging directory names */
	uint64_t published;
	uint32_t hashed, hash_total; /* the file in hand: pieces hashed of its pieces */
	char last_error[600];        /* "PATH: reason" of the newest failure, for swarmfs status */
	bool stop;
	bool running;
	pthread_t thread;
	/* spare staging files (staging/spare-<n>-<pid>, empty, 0600, open): a new file
	 * takes one instead of allocating an inode while cp waits for its create (the
	 * file system's inode allocation was most of a create: about 250 of its 360 us
	 * under a cp -r); the spare thread makes them, guarded by lock */
	int spare_fd[SPARES];
	char *spare_file[SPARES];
	size_t nspare;
	bool spare_stop, spare_running;
	pthread_cond_t spare_cond; /* the spare thread waits here for room */
	pthread_t spare_thread;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t path_hash(const char *path)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct fs_staged *find_locked(struct fs_publisher *p, const char *path)
{
	if (!p->nbuckets)
		return NULL;
	for (struct fs_staged *s = p->buckets[path_hash(path) & (p->nbuckets - 1)]; s; s = s->hnext)
		if (!strcmp(s->path, path))
			return s;
	return NULL;
}

/* Whether another entry on the list has s's path (a restart can list two queue items
 * of one path). */
static bool path_shared_locked(struct fs_publisher *p, const struct fs_staged *s)
{
	for (struct fs_staged *e = p->buckets[path_hash(s->path) & (p->nbuckets - 1)]; e;
	     e = e->hnext)
		if (e != s && !strcmp(e->path, s->path))
			return true;
	return false;
}

static struct fs_staged *find_file_locked(struct fs_publisher *p, const char *file)
{
	for (struct fs_staged *s = p->list; s; s = s->next)
		if (!strcmp(s->file, file))
			return s;
	return NULL;
}

static void hash_insert_locked(struct fs_publisher *p, struct fs_staged *s)
{
	if (p->count >= p->nbuckets) { /* grow: at most one entry a bucket on average */
		size_t nb = p->nbuckets ? p->nbuckets * 2 : 64;
		struct fs_staged **b = calloc(nb, sizeof *b);

		if (b) {
			for (size_t i = 0; i < p->nbuckets; i++) {
				while (p->buckets[i]) {
					struct fs_staged *e = p->buckets[i];
					size_t k = path_hash(e->path) & (nb - 1);

					p->buckets[i] = e->hnext;
					e->hnext = b[k];
					b[k] = e;
				}
			}
			free(p->buckets);
			p->buckets = b;
			p->nbuckets = nb;
		} /* else longer chains: still found (fs_publish_start made the first table) */
	}
	size_t k = path_hash(s->path) & (p->nbuckets - 1);

	s->hnext = p->buckets[k];
	p->buckets[k] = s;
	p->count++;
}

static void hash_remove_locked(struct fs_publisher *p, struct fs_staged *s)
{
	struct fs_staged **pp = &p->buckets[path_hash(s->path) & (p->nbuckets - 1)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = s->hnext;
		p->count--;
	}
	s->hnext = NULL;
}

static void staged_free(struct fs_staged *s)
{
	fs_follow_free(s->follow);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s->file);
	free(s);
}

/* Put s at the end of the list, findable by its path. */
static void list_add_locked(struct fs_publisher *p, struct fs_staged *s)
{
	s->next = NULL;
	s->prev = p->tail;
	if (p->tail)
		p->tail->next = s;
	else
		p->list = s;
	p->tail = s;
	hash_insert_locked(p, s);
}

static void unlink_locked(struct fs_publisher *p, struct fs_staged *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else if (p->list == s)
		p->list = s->next;
	else
		return; /* not on the list */
	if (s->next)
		s->next->prev = s->prev;
	else
		p->tail = s->prev;
	s->next = s->prev = NULL;
	hash_remove_locked(p, s);
}

/* Remove a staging file (unless moved: it went into the cache), and the private
 * directory it had in the layout before staging/<n>-<pid> (staging/<n>-<pid>/<basename>:
 * a queue item from then). */
static void staging_remove(struct fs_drive *d, const char *file, bool moved)
{
	char *copy = strdup(file), root[4200];

	if (!moved)
		unlink(file);
	snprintf(root, sizeof root, "%s/staging", d->dir);
	if (copy && strcmp(dirname(copy), root))
		rmdir(copy);
	free(copy);
}

static void remove_staging(struct fs_drive *d, const char *file)
{
	staging_remove(d, file, false);
}

/* A name for a new staging file, <drive>/staging/<n>-<pid>, into buf: one flat
 * directory, no directory a file (a mkdir and an rmdir a file were a fifth of a small
 * file's publishing). The caller creates it exclusively and asks again on EEXIST (a
 * file a previous run left under the same pid). */
static void staging_name(struct fs_drive *d, const char *prefix, char *buf, size_t len)
{
	struct fs_publisher *p = d->pub;
	unsigned long long n;

	pthread_mutex_lock(&p->lock);
	n = ++p->seq;
	pthread_mutex_unlock(&p->lock);
	snprintf(buf, len, "%s/staging/%s%llu-%ld", d->dir, prefix, n, (long)getpid());
}

/* A new empty staging file, O_RDWR, exclusively created under a fresh name (into
 * file): its fd, or -errno. */
static int staging_new(struct fs_drive *d, const char *prefix, char *file, size_t len)
{
	int fd;

	do {
		staging_name(d, prefix, file, len);
		fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	} while (fd < 0 && errno == EEXIST);
	return fd < 0 ? -errno : fd;
}

static const char SPARE_PREFIX[] = "spare-";

/* Keeps p's spares at SPARES while the mount runs (its thread). A spare that cannot
 * be made (a full disk, the open-file limit) is tried again at the next take. */
static void *spare_main(void *arg)
{
	struct fs_drive *d = arg;
	struct fs_publisher *p = d->pub;
	char file[4200];

	pthread_mutex_lock(&p->lock);
	while (!p->spare_stop) {
		if (p->nspare >= SPARES) {
			pthread_cond_wait(&p->spare_cond, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		int fd = staging_new(d, SPARE_PREFIX, file, sizeof file);
		char *name = fd >= 0 ? strdup(file) : NULL;

		pthread_mutex_lock(&p->lock);
		if (!name || p->spare_stop || p->nspare >= SPARES) {
			if (fd >= 0) {
				unlink(file);
				close(fd);
			}
			free(name);
			if (!name && !p->spare_stop) /* wait for the next take */
				pthread_cond_wait(&p->spare_cond, &p->lock);
			continue;
		}
		p->spare_fd[p->nspare] = fd;
		p->spare_file[p->nspare++] = name;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* A spare into s (its fd and file), when there is one: true. */
static bool spare_take(struct fs_publisher *p, struct fs_staged *s)
{
	bool took = false;

	pthread_mutex_lock(&p->lock);
	if (p->nspare) {
		p->nspare--;
		s->fd = p->spare_fd[p->nspare];
		s->file = p->spare_file[p->nspare];
		took = true;
	}
	if (p->spare_running)
		pthread_cond_signal(&p->spare_cond);
	pthread_mutex_unlock(&p->lock);
	return took;
}

/* Whether a staging file's name is a ciphertext's (fs_pack_cipher_path: its nonce, 16
 * hex digits). */
static bool cipher_name(const char *name)
{
	size_t i = 0;

	while (name[i] && i < 16 && strchr("0123456789abcdef", name[i]))
		i++;
	return i == 16 && !name[i];
}

/* A ciphertext no record names (see staging_sweep), at file, goes. */
static void sweep_cipher(const char *file)
{
	if (unlink(file) == 0)
		fs_info("removed %s: a ciphertext no record names, left by a mount that was "
		        "killed",
		        file);
}

/* Whether a staging directory's name is a staged file's own, of the older layout
 * (<n>-<pid>, digits both). */
static bool old_layout_name(const char *name)
{
	size_t a = strspn(name, "0123456789"), b;

	if (!a || name[a] != '-')
		return false;
	b = strspn(name + a + 1, "0123456789");
	return b && !name[a + 1 + b];
}

/* The ciphertexts in dir (a staged file's own directory, the layout before
 * staging/<n>-<pid>: staging/<n>-<pid>/<basename>, its ciphertext beside it) go, and
 * the directory with them if that empties it. */
static void staging_sweep_old(const char *dir)
{
	char file[4200 + 260];
	struct dirent *de;
	DIR *dh = opendir(dir);

	if (!dh)
		return;
	while ((de = readdir(dh))) {
		if ((size_t)snprintf(file, sizeof file, "%s/%s", dir, de->d_name) >= sizeof file)
			continue;
		if (cipher_name(de->d_name))
			sweep_cipher(file); /* a directory so named: unlink fails, it stays */
	}
	closedir(dh);
	rmdir(dir); /* fails while a staged file is in it: it stays */
}

/* What a previous run left in the staging directory goes at the start; the drive's lock
 * (home.c) says no other mount uses it:
 * - spares (killed: no queue item names them, or they were never taken). A spare that was
 *   taken and closed has a queue item, and is kept;
 * - ciphertexts, of a pack or a follower (fs/follow.c) a kill cut short. Those whose
 *   record was signed were taken up into the cache just before (fs_durable_recover); the
 *   rest no record names, and the file they were made from is packed afresh under a new
 *   key. They are not user data, and were the only thing a crash left there for good.
 *   Those of the older layout, in a staged file's own directory, go too, and the
 *   directory once empty.
 * Staged files themselves stay (DESIGN.md: never deleted before confirmed). */
static void staging_sweep(struct fs_drive *d, const struct ledger_queue_item *items, int n)
{
	char dir[4200], file[4200 + 260];
	struct dirent *de;
	DIR *dh;

	snprintf(dir, sizeof dir, "%s/staging", d->dir);
	if (!(dh = opendir(dir)))
		return;
	while ((de = readdir(dh))) {
		bool queued = false;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR ||
		    (de->d_type == DT_UNKNOWN && lstat(file, &st) == 0 && S_ISDIR(st.st_mode))) {
			if (old_layout_name(de->d_name))
				staging_sweep_old(file);
			continue; /* an import's download, a metadata fetch's: not ours */
		}
		if (cipher_name(de->d_name)) {
			sweep_cipher(file);
			continue;
		}
		if (strncmp(de->d_name, SPARE_PREFIX, sizeof SPARE_PREFIX - 1))
			continue;
		for (int i = 0; i < n && !queued; i++)
			queued = !strcmp(items[i].staging, file);
		if (!queued)
			unlink(file);
	}
	closedir(dh);
}

/* The staged entry at path once the worker is not publishing it (it may be gone then:
 * published). Hashing a file takes about a second a GiB; a writer waits that long
 * rather than fail with EBUSY. Called and returns with p->lock held. */
static struct fs_staged *settled_locked(struct fs_publisher *p, const char *path)
{
	struct fs_staged *s;

	while ((s = find_locked(p, path)) && s->in_hand)
		pthread_cond_wait(&p->idle, &p->lock);
	return s;
}

int fs_staged_stat(struct fs_drive *d, const char *path, struct stat *out_st)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s;
	int err = -ENOENT;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	s = find_locked(p, path);
	if (s)
		err = (s->fd >= 0 ? fstat(s->fd, out_st) : stat(s->file, out_st)) < 0 ? -errno : 0;
	pthread_mutex_unlock(&p->lock);
	return err;
}

int fs_staged_children(struct fs_drive *d, const char *dir, char ***out_names)
{
	struct fs_publisher *p = d->pub;
	size_t dlen = strlen(dir), n = 0;
	char **names = NULL;
	int err = 0;

	if (!p) {
		*out_names = NULL;
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	for (struct fs_staged *s = p->list; s; s = s->next) {
		const char *rest;

		if (dlen && (strncmp(s->path, dir, dlen) || s->path[dlen] != '/'))
			continue;
		rest = dlen ? s->path + dlen + 1 : s->path;
		if (strchr(rest, '/'))
			continue;
		char **nn = realloc(names, (n + 1) * sizeof *nn);
		if (!nn || !(nn[n] = strdup(rest))) {
			names = nn ? nn : names;
			err = -ENOMEM;
			break;
		}
		names = nn;
		n++;
	}
	pthread_mutex_unlock(&p->lock);
	if (err) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return err;
	}
	*out_names = names;
	return (int)n;
}

/* A new staged file on the list, with one writer (its creator). */
static void list_writer(struct fs_publisher *p, struct fs_staged *s)
{
	s->opens = s->writers = 1;
	s->dirty = true;
	pthread_mutex_lock(&p->lock);
	list_add_locked(p, s);
	pthread_mutex_unlock(&p->lock);
}

/* No more following s (lock held). */
static void nofollow_locked(struct fs_staged *s)
{
	s->nofollow = true;
	if (s->follow)
		fs_follow_cancel(s->follow);
}

int fs_staged_create(struct fs_drive *d, const char *path, mode_t mode, struct fs_staged **out)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s, *old;
	char file[4200];
	int err;

	if (!p)
		return -EROFS;
	fs_warmer_hold(p->warmer); /* a file on its way: no read-in meanwhile (warm.h) */
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	pthread_mutex_lock(&p->lock);
	old = settled_locked(p, path);
	if (old && old->fd < 0 && (old->fd = open(old->file, O_RDWR | O_CLOEXEC)) < 0) {
		err = -errno;
		pthread_mutex_unlock(&p->lock);
		free(s);
		return err;
	}
	if (old) { /* created again while still staged: start it over, empty; a queue
		    * item it has already stays and publishes the new content */
		nofollow_locked(old);
		if (ftruncate(old->fd, 0) < 0) {
			err = -errno;
			pthread_mutex_unlock(&p->lock);
			free(s);
			return err;
		}
		fchmod(old->fd, mode & 07777);
		old->opens++;
		old->writers++;
		old->dirty = true;
		pthread_mutex_unlock(&p->lock);
		free(s);
		*out = old;
		return 0;
	}
	pthread_mutex_unlock(&p->lock);

	/* 0600 until published: the staging directory is this node's alone; the record
	 * carries the mode the user asked for */
	if (!spare_take(p, s)) {
		if ((s->fd = staging_new(d, "", file, sizeof file)) < 0) {
			err = s->fd;
			s->fd = -1;
			staged_free(s);
			return err;
		}
		if (!(s->file = strdup(file))) {
			unlink(file);
			staged_free(s);
			return -ENOMEM;
		}
	}
	if (!(s->path = strdup(path))) {
		unlink(s->file);
		staged_free(s);
		return -ENOMEM;
	}
	fchmod(s->fd, mode & 07777);
	list_writer(p, s);
	*out = s;
	return 0;
}

int fs_staged_adopt(struct fs_drive *d, const char *path, const char *file, mode_t mode)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s;
	char dest[4200];
	bool taken;
	int err;

	if (!p)
		return -EROFS;
	if (!(s = calloc(1, sizeof *s)))
		return -ENOMEM;
	s->fd = -1;
	pthread_mutex_lock(&p->lock);
	taken = find_locked(p, path) != NULL;
	pthread_mutex_unlock(&p->lock);
	if (taken) {
		free(s);
		return -EEXIST;
	}
	if (!(s->path = strdup(path))) {
		staged_free(s);
		return -ENOMEM;
	}
	do {
		staging_name(d, "", dest, sizeof dest);
		err = renameat2(AT_FDCWD, file, AT_FDCWD, dest, RENAME_NOREPLACE) < 0 ? -errno : 0;
	} while (err == -EEXIST);
	if (err < 0) {
		staged_free(s);
		return err;
	}
	if (!(s->file = strdup(dest)))
		err = -ENOMEM;
	else if ((s->fd = open(s->file, O_RDWR | O_CLOEXEC)) < 0 || fchmod(s->fd, mode & 07777) < 0)
		err = -errno;
	if (err < 0) {
		rename(dest, file); /* back where it was: nothing is lost */
		staged_free(s);
		return err;
	}
	list_writer(p, s);
	/* as a writer's last close: queued, handed to the worker */
	return fs_staged_release(d, s, true);
}

int fs_staged_open(struct fs_drive *d, const char *path, bool write, struct fs_staged **out)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s;
	int err = 0;

	if (!p)
		return -ENOENT;
	if (write)
		fs_warmer_hold(p->warmer);
	pthread_mutex_lock(&p->lock);
	s = write ? settled_locked(p, path) : find_locked(p, path);
	if (!s)
		err = -ENOENT;
	else if (s->fd < 0 && (s->fd = open(s->file, O_RDWR | O_CLOEXEC)) < 0)
		err = -errno;
	if (!err) {
		s->opens++;
		if (write) {
			s->writers++;
			s->dirty = true;
		}
		*out = s;
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

int fs_staged_fd(struct fs_staged *s)
{
	return s->fd;
}

int fs_staged_fd_modify(struct fs_drive *d, struct fs_staged *s)
{
	pthread_mutex_lock(&d->pub->lock);
	nofollow_locked(s);
	pthread_mutex_unlock(&d->pub->lock);
	return s->fd;
}

void fs_staged_follow(struct fs_drive *d, struct fs_staged *s)
{
	struct fs_publisher *p = d->pub;

	pthread_mutex_lock(&p->lock);
	/* a file created afresh, not one started over while its earlier content is
	 * being copied in (fs_staged_create's second create of a path) */
	if (!s->follow && !s->nofollow && s->writers == 1 &&
	    fs_follow_new(s->file, ledger_is_private(d->ledger), &s->follow) < 0)
		s->follow = NULL; /* published as if it were not followed */
	pthread_mutex_unlock(&p->lock);
}

ssize_t fs_staged_write(struct fs_drive *d, struct fs_staged *s, const void *buf, size_t n,
                        uint64_t off)
{
	struct fs_publisher *p = d->pub;
	ssize_t w = pwrite(s->fd, buf, n, (off_t)off);

	if (w < 0)
		return -errno;
	fs_warmer_hold(p->warmer);
	pthread_mutex_lock(&p->lock);
	if (s->follow)
		fs_follow_wrote(s->follow, off, (size_t)w);
	pthread_mutex_unlock(&p->lock);
	return w;
}

void fs_publish_reading(struct fs_drive *d)
{
	if (d->pub)
		fs_warmer_hold(d->pub->warmer);
}

/* Queue what a writer wrote: a queue item (once) with the size it was closed at. This
 * runs at flush, which close(2) waits for, and again at release: FUSE sends release
 * after close has returned, so a process killed right after cp's last close must find
 * every closed file queued already. The bytes reach the disk with the worker's batch
 * (one syncfs before anything is signed), not here: an fsync per close held a cp -r to
 * ~150 files/s. A power failure before that batch may leave a queue item over a file
 * the disk has not all of yet; the size recorded here tells a restart so (held). */
static int commit(struct fs_drive *d, struct fs_staged *s)
{
	struct fs_publisher *p = d->pub;
	char *path = NULL, *file = NULL;
	bool push;
	int64_t id = 0, qid;
	int err = 0, fd;
	struct stat st;

	pthread_mutex_lock(&p->lock);
	if (!s->dirty || s->unlinked) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	s->dirty = false;
	s->failed = false;
	s->fails = 0;
	s->held = false;
	push = !s->queued;
	qid = s->queue_id;
	if (push && (!(path = strdup(s->path)) || !(file = strdup(s->file))))
		err = -ENOMEM;
	fd = s->fd;
	pthread_mutex_unlock(&p->lock);
	/* the worker takes no entry that has a writer, so fd stays open meanwhile */
	if (!err && fstat(fd, &st) < 0)
		err = -errno;
	if (!err && push)
		err = ledger_queue_push(d->ledger, path, file, (int64_t)st.st_size, &id);
	else if (!err)
		err = ledger_queue_resize(d->ledger, qid, (int64_t)st.st_size);
	pthread_mutex_lock(&p->lock);
	if (err < 0) {
		s->dirty = true;
		fs_err("cannot queue %s for publishing: %s", s->path, strerror(-err));
	} else if (push) {
		s->queued = true;
		s->queue_id = id;
	}
	pthread_mutex_unlock(&p->lock);
	free(path);
	free(file);
	return err;
}

int fs_staged_flush(struct fs_drive *d, struct fs_staged *s)
{
	return commit(d, s);
}

int fs_staged_release(struct fs_drive *d, struct fs_staged *s, bool was_writer)
{
	struct fs_publisher *p = d->pub;
	int err = 0;

	if (was_writer)
		err = commit(d, s);
	pthread_mutex_lock(&p->lock);
	s->opens--;
	if (was_writer)
		s->writers--;
	if (s->detached && s->opens == 0) {
		for (struct fs_staged **pp = &p->orphans; s->unlinked && *pp; pp = &(*pp)->next) {
			if (*pp == s) {
				*pp = s->next;
				break;
			}
		}
		staged_free(s);
	} else if (was_writer && s->writers == 0) {
		s->ready_ms = now_ms();
		pthread_cond_signal(&p->cond); /* the worker may take it now */
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

int fs_staged_setattr(struct fs_drive *d, const char *path, const struct stat *attr, int to_set)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s;
	int err = 0, fd;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	s = settled_locked(p, path);
	if (!s) {
		pthread_mutex_unlock(&p->lock);
		return -ENOENT;
	}
	fd = s->fd >= 0 ? s->fd : open(s->file, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		err = -errno;
	if (!err && (to_set & FUSE_SET_ATTR_SIZE)) {
		nofollow_locked(s);
		if (ftruncate(fd, attr->st_size) < 0)
			err = -errno;
		else if (s->queued)
			err = 0; /* the worker reads the file as it is when it starts */
		s->dirty = true;
	}
	if (!err && (to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 07777) < 0)
		err = -errno;
	if (!err && (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, attr->st_mtim };

		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		if (futimens(fd, ts) < 0)
			err = -errno;
	}
	if (fd != s->fd && fd >= 0)
		close(fd);
	pthread_mutex_unlock(&p->lock);
	return err;
}

int fs_staged_rename(struct fs_drive *d, const char *from, const char *to)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s, *victim;
	char *np = strdup(to);
	int err = 0;

	if (!p || !np) {
		free(np);
		return p ? -ENOMEM : -ENOENT;
	}
	pthread_mutex_lock(&p->lock);
	settled_locked(p, to);
	s = settled_locked(p, from);
	victim = find_locked(p, to);
	if (!s)
		err = -ENOENT; /* published meanwhile: the caller renames the record */
	else if (victim && victim->in_hand)
		err = -EBUSY;
	else {
		if (victim && victim != s) {
			/* replaced before it was published: it never will be */
			unlink_locked(p, victim);
			if (victim->queued)
				ledger_queue_done(d->ledger, victim->queue_id);
			remove_staging(d, victim->file);
			staged_free(victim);
		}
		hash_remove_locked(p, s);
		free(s->path);
		s->path = np;
		np = NULL;
		hash_insert_locked(p, s);
	}
	pthread_mutex_unlock(&p->lock);
	free(np);
	return err;
}

int fs_staged_orphan_stat(struct fs_drive *d, uint64_t ino, struct stat *out_st)
{
	struct fs_publisher *p = d->pub;
	int err = -ENOENT;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	for (struct fs_staged *s = p->orphans; s && err == -ENOENT; s = s->next)
		if (s->ino == ino)
			err = fstat(s->fd, out_st) < 0 ? -errno : 0;
	pthread_mutex_unlock(&p->lock);
	return err;
}

int fs_staged_unlink(struct fs_drive *d, const char *path, uint64_t ino)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s;
	int err = 0;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	s = settled_locked(p, path);
	if (!s)
		err = -ENOENT;
	else if (s->opens) {
		/* as on any filesystem: the name goes now, the open descriptors keep the
		 * data until the last close, and nothing is published */
		unlink_locked(p, s);
		if (s->queued)
			ledger_queue_done(d->ledger, s->queue_id);
		s->queued = false;
		s->unlinked = s->detached = true;
		s->ino = ino;
		s->next = p->orphans;
		p->orphans = s;
		remove_staging(d, s->file);
	} else {
		unlink_locked(p, s);
		if (s->queued)
			ledger_queue_done(d->ledger, s->queue_id);
		remove_staging(d, s->file);
		staged_free(s);
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

void fs_staged_unlink_open(struct fs_drive *d, struct fs_staged *s)
{
	struct fs_publisher *p = d->pub;

	pthread_mutex_lock(&p->lock);
	if (--s->opens == 0 && !s->queued && !s->detached) {
		unlink_locked(p, s);
		remove_staging(d, s->file);
		staged_free(s);
	} else
		s->writers--;
	pthread_mutex_unlock(&p->lock);
}

void fs_publish_status(struct fs_drive *d, struct fs_publish_status *out)
{
	struct fs_publisher *p = d->pub;

	memset(out, 0, sizeof *out);
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (struct fs_staged *s = p->list; s; s = s->next) {
		out->staged++;
		out->queued += s->queued;
		out->failed += s->failed;
	}
	out->published = p->published;
	if (out->failed)
		snprintf(out->last_error, sizeof out->last_error, "%s", p->last_error);
	pthread_mutex_unlock(&p->lock);
}

int fs_publish_list(struct fs_drive *d, fs_publish_item_fn fn, void *ctx)
{
	struct fs_publisher *p = d->pub;
	int n = 0;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	for (struct fs_staged *s = p->list; s; s = s->next, n++) {
		struct fs_publish_item it = { .path = s->path };
		struct stat st;

		if (s->fd >= 0 ? fstat(s->fd, &st) == 0 : stat(s->file, &st) == 0)
			it.size = (uint64_t)st.st_size;
		if (s->in_hand) {
			it.state = "hashing";
			it.hashed = p->hashed;
			it.pieces = p->hash_total;
		} else if (s->writers)
			it.state = "writing";
		else if (s->held)
			it.state = "held";
		else if (s->failed)
			it.state = "failed";
		else
			it.state = s->queued ? "queued" : "staged";
		fn(&it, ctx);
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* ---- the worker ---- */

/* fs_pack's progress, on the worker thread: for swarmfs status; and the warmer waits
 * for a long pack's end. */
static void hash_progress(uint32_t hashed, uint32_t total, void *ctx)
{
	struct fs_publisher *p = ctx;

	fs_warmer_hold(p->warmer);
	pthread_mutex_lock(&p->lock);
	p->hashed = hashed;
	p->hash_total = total;
	pthread_mutex_unlock(&p->lock);
}

/* One staged file on its way: what is prepared before the batch's records are
 * submitted, and what is done with it after. */
struct pub_job {
	struct fs_staged *s;
	char *path, *file;
	int64_t qid;
	int err;
	bool submit; /* its record goes into the batch (else: same content, or empty) */
	bool priv;
	struct ledger_op op;
	uint8_t fkey[FS_CIPHER_KEY_LEN];
	struct fs_cipher cipher;
	struct fs_pack pack;
	char *data;     /* the object's data file, where the cache adopts it */
	char *conflict; /* published as this conflict copy instead (job_conflict) */
	struct stat st;
	struct fs_follow *follow; /* what packed it as it was written, or NULL */
};

/* Publishing a staged file: the steps are ordered so that a crash between any two
 * leaves either the staging file (and the queue item, which is done again: a record
 * already made for the same content is not made twice) or the published object. One
 * read of the file makes the torrent, the cache's hashes and, on a private drive, the
 * ciphertext the swarm carries (fs/pack.h). Before its record: job_prepare. */
static int job_prepare(struct fs_drive *d, struct pub_job *j)
{
	struct ledger_op *op = &j->op;
	struct ledger_entry e;
	char name[32];
	int err, fd;

	op->type = LEDGER_REC_CLAIM;
	op->path = j->path;
	j->priv = ledger_is_private(d->ledger);
	/* The record signs this content: it must be on disk before the signature, or a
	 * crash could leave a record whose staging file says something else; the batch's
	 * syncfs after every job is prepared does it (publish_batch). */
	if ((fd = open(j->file, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	err = fstat(fd, &j->st) < 0 ? -errno : 0;
	close(fd);
	if (err < 0)
		return err;
	op->content.length = (uint64_t)j->st.st_size;
	op->content.mode = j->st.st_mode & 07777;
	op->content.mtime_ns = (int64_t)j->st.st_mtim.tv_sec * 1000000000 + j->st.st_mtim.tv_nsec;
	op->content.piece_length = 16384; /* empty content has no torrent; the field is
	                                   * required */
	if (j->st.st_size > 0) {
		/* the torrent's name: the file's, as it is published (not the staging
		 * file's, a number) */
		const char *file = j->file,
		           *base = strrchr(j->path, '/') ? strrchr(j->path, '/') + 1 : j->path;

		/* packed as it was written, all but its tail (fs/follow.h), or not */
		struct fs_followed fl = { 0 };
		bool followed = j->follow && fs_follow_take(j->follow, &fl) == 0;

		j->follow = NULL;
		if (followed && !fl.cipher_path != !j->priv) { /* not what it packed for */
			fs_packer_free(fl.k);
			free(fl.cipher_path);
			followed = false;
			fl = (struct fs_followed){ 0 };
		}
		if (j->priv) {
			/* the record's nonce makes the IV and names the torrent: no path, no
			 * name leaves the drive's members */
			if (followed) {
				memcpy(j->fkey, fl.key, sizeof j->fkey);
				OPENSSL_cleanse(fl.key, sizeof fl.key);
				op->nonce = fl.nonce;
				j->data = fl.cipher_path; /* beside the staged file */
			} else if ((err = fs_cipher_new_key(j->fkey, &op->nonce)) < 0 ||
			           (err = fs_pack_cipher_path(file, op->nonce, &j->data)) < 0)
				return err;
			fs_cipher_init(&j->cipher, j->fkey, op->nonce);
			op->file_key = j->fkey;
			snprintf(name, sizeof name, "%016llx", (unsigned long long)op->nonce);
			base = name;
		} else
			j->data = strdup(file);
		if (!j->data) {
			fs_packer_free(fl.k);
			return -ENOMEM;
		}
		if (followed)
			fs_debug("%s: %llu of %lld bytes packed as it was written", j->path,
			         (unsigned long long)fl.packed, (long long)j->st.st_size);
		else
			err = fs_packer_new(file, j->priv ? &j->cipher : NULL, j->data,
			                    (uint64_t)j->st.st_size, &fl.k);
		if (err == 0)
			err = fs_packer_finish(fl.k, base, NULL, hash_progress, d->pub, &j->pack);
		fs_packer_free(fl.k);
		if (err < 0)
			return err;
		memcpy(op->content.root, j->pack.m->files[0].root, 32);
		memcpy(op->content.ih2, j->pack.m->v2, 32);
		memcpy(op->content.ih1, j->pack.m->v1, 20);
		op->content.has_ih1 = j->pack.m->has_v1;
		op->content.piece_length = j->pack.m->piece_length;
		/* before the record: a full disk (or any failure) here leaves nothing
		 * signed for content this node could not seed */
		if ((err = fs_save_torrent_unsynced(d, j->pack.m->v2, j->pack.m->torrent,
		                                    j->pack.m->torrent_len)) < 0)
			return err;
	}
	err = ledger_lookup(d->ledger, j->path, &e);
	if (err == 0 && !e.is_dir && !memcmp(e.owner, d->me, LEDGER_KEY_LEN)) {
		op->type = LEDGER_REC_UPDATE;
		j->submit = !(e.content.length == op->content.length &&
		              !memcmp(e.content.root, op->content.root, 32) &&
		              e.content.mode == op->content.mode &&
		              e.content.mtime_ns == op->content.mtime_ns);
		return 0;
	}
	if (err == 0 || err == -ENOENT) {
		j->submit = true;
		return 0;
	}
	return err;
}

/* After its record: the object moves into the cache (one of a batch). */
static int job_finish(struct fs_drive *d, struct pub_job *j)
{
	struct swarm_metainfo *m = j->pack.m;

	if (!m) {
		remove_staging(d, j->file);
		return 0;
	}
	/* the batch's syncfs made the bytes durable; the index is synced and the file
	 * renamed once for the whole batch (publish_batch, then job_seed) */
	return cache_object_adopt_hashed(d->cache, m->v2, j->data, m->piece_length,
	                                 (const uint8_t(*)[CACHE_BLOCK_SHA_LEN])j->pack.blocks,
	                                 j->pack.nblocks, CACHE_ADOPT_SYNCED | CACHE_ADOPT_BATCH);
}

/* A private file's ciphertext is read into the page cache after its publish from this
 * size on (job_seed). */
#define WARM_MIN (1 << 20)

/* The bytes of j's staged plaintext in the page cache, to read its ciphertext in for
 * (job_seed): the memory the plaintext frees as it goes. A kernel that cannot tell: all
 * of it, up to an eighth of memory. */
static int64_t plaintext_held(const struct pub_job *j)
{
	int fd = open(j->file, O_RDONLY | O_CLOEXEC);
	int64_t held = 0;

	if (fd >= 0) {
		held = fs_pagecache_held(fd, 0, 0);
		close(fd);
	}
	if (held == -ENOSYS) {
		long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
		int64_t cap = pages > 0 && page > 0 ? (int64_t)pages * page / 8 : 0;

		held = j->st.st_size < cap ? j->st.st_size : cap;
	}
	return held;
}

/* After the batch's adoptions are synced: the staging directory goes, the object is
 * seeded. */
static void job_seed(struct fs_drive *d, struct pub_job *j)
{
	struct swarm_metainfo *m = j->pack.m;
	int err;

	if (!m)
		return;
	/* a public drive's staged file is the object now, in the page cache as far as the
	 * copy into the mount left it, for the peers that fetch a new file first (members
	 * replicating, a seedbox). A private one's is the plaintext, which goes; its
	 * object, the ciphertext, written around the page cache (fs/pack.c), is read in
	 * by the warmer (fs/warm.h), as much of it as the plaintext held. A small file's
	 * is not worth it: its tail was written through the page cache anyway, and a cp -r
	 * of thousands of them is the publish worker's busiest case. */
	int64_t held = j->priv && j->st.st_size >= WARM_MIN ? plaintext_held(j) : 0;
	char obj[4200];

	staging_remove(d, j->file, !j->priv);
	if (held > 0 && cache_object_path(d->cache, m->v2, obj, sizeof obj) > 0)
		fs_warmer_add(d->pub->warmer, obj, (uint64_t)held);
	/* loaded by the seedback thread (or indexed until a peer asks): never here */
	err = d->seedback ? fs_seedback_published(d->seedback, m->v2, m->has_v1 ? m->v1 : NULL)
	                  : fs_seed(d, m->torrent, m->torrent_len, m->v2, false, NULL);
	if (err < 0) /* the record and the data are safe: seeding retries later */
		fs_warn("cannot seed %s yet: %s", j->path, strerror(-err));
}

static void job_release(struct pub_job *j)
{
	fs_follow_free(j->follow);
	if (j->err < 0 && j->priv && j->data)
		unlink(j->data); /* the ciphertext; the staged plaintext stays for a retry */
	if (j->priv && j->st.st_size > 0) {
		fs_cipher_release(&j->cipher);
		OPENSSL_cleanse(j->fkey, sizeof j->fkey);
	}
	fs_pack_release(&j->pack);
	free(j->data);
	free(j->conflict);
	free(j->path);
	free(j->file);
}

/* Another member's claim took the path while this node's file was being written there
 * (each made the file before it saw the other's record, and the other's reached this
 * ledger first): the content is published beside it as a conflict copy, as a claim that
 * loses in the chain later is (fs/drive's on_ledger_dropped). Retrying the claim would
 * fail for ever, and the staged file would hide the winner's at the path meanwhile. */
static int job_conflict(struct fs_drive *d, struct pub_job *j)
{
	struct ledger_op op = j->op;
	int err = fs_conflict_submit(d, &op, j->path, &j->conflict);

	if (err == 0)
		fs_warn("%s was published by another member first: this node's content is "
		        "kept as %s",
		        j->path, j->conflict);
	return err;
}

/* Files published per batch at most: their records go into the ledger together (one
 * transaction, one block: group commit) instead of one block each. A batch's fixed
 * cost (a syncfs, a block committed with synchronous=FULL, the cache index synced)
 * is spread over its files; block times rise by a whole second a block, so a chain fed
 * many small blocks a second runs ahead of the clock until production stops. */
enum { PUB_BATCH = 4096 };
/* An idle worker waits this long after the first file of a batch is closed for more
 * to come (a cp -r closes a file every few hundred microseconds: ~30 files a batch
 * became hundreds), and while the head block is of this second, until the next one
 * (a block a second at most, each of its second: the ledger takes a batch's records
 * into its block as checked, where a block ahead of the clock walks and checks the
 * mempool again). A single file is published up to a second later. */
enum { GATHER_MS = 50 };

/* A public drive's batch of up to this many files is made durable file by file (an
 * fdatasync each, and of its torrent), a larger one by one syncfs of the staging
 * directory's file system. A syncfs writes back whatever else is dirty on that file
 * system too: the first publish after a 512 MiB download elsewhere on the disk waited
 * 1.19 s in syncfs, 0.37 s without it. A cp -r of thousands of files is one syncfs. */
enum { DURABLE_EACH_MAX = 16 };

/* What the prepared jobs' records will sign, on disk: 0 or -errno. */
static int batch_durable(struct fs_drive *d, const struct pub_job *jobs, size_t n)
{
	const char **files = calloc(n, sizeof *files);
	uint8_t(*keys)[32] = calloc(n, sizeof *keys);
	bool each = files && keys;
	size_t m = 0, plain = 0;
	char staging[4200];
	int err;

	snprintf(staging, sizeof staging, "%s/staging/", d->dir);
	for (size_t i = 0; i < n && each; i++) {
		const struct pub_job *j = &jobs[i];

		if (j->err < 0 || !j->pack.m)
			continue; /* nothing signed, or nothing on disk (an empty file) */
		/* a public drive's staged file is its object: synced itself while the batch
		 * is small, and where fs_durable_batch syncs the directory of (a staged file
		 * of the older layout, in a directory of its own, takes the syncfs) */
		if (!j->priv &&
		    (++plain > DURABLE_EACH_MAX || strncmp(j->data, staging, strlen(staging)) ||
		     strchr(j->data + strlen(staging), '/')))
			each = false;
		files[m] = j->data;
		memcpy(keys[m++], j->pack.m->v2, 32);
	}
	err = fs_durable_batch(d, each ? files : NULL, (const uint8_t(*)[32])keys, m);
	free(files);
	free(keys);
	return err;
}

/* Publish jobs[0..n): prepare each, submit the records of those ready as one batch,
 * finish each. Every job's outcome lands in its err. */
static void publish_batch(struct fs_drive *d, struct pub_job *jobs, size_t n)
{
	struct ledger_op *ops = malloc(n * sizeof *ops);
	size_t *idx = malloc(n * sizeof *idx), m = 0;
	int *rcs = malloc(n * sizeof *rcs), err;

	if (!ops || !idx || !rcs) {
		for (size_t i = 0; i < n; i++)
			jobs[i].err = -ENOMEM;
		goto out;
	}

	fs_warmer_hold(d->pub->warmer);
	for (size_t i = 0; i < n; i++) {
		struct pub_job *j = &jobs[i];

		j->err = j->path && j->file ? job_prepare(d, j) : -ENOMEM;
	}
	/* group commit of the disk too: before any record is signed, what it signs is
	 * durable (durable.h): a public drive's staged files by one syncfs, a private
	 * one's ciphertexts and torrents alone; an item in hand changes no more */
	err = batch_durable(d, jobs, n);
	for (size_t i = 0; i < n; i++) {
		struct pub_job *j = &jobs[i];

		if (j->err == 0 && err < 0)
			j->err = err; /* nothing signed: tried again later */
		if (j->err == 0 && j->submit) {
			ops[m] = j->op;
			idx[m++] = i;
		}
	}
	if (m && (err = ledger_submit_batch(d->ledger, ops, m, rcs, NULL)) < 0)
		for (size_t k = 0; k < m; k++)
			rcs[k] = err;
	for (size_t k = 0; k < m; k++) {
		struct pub_job *j = &jobs[idx[k]];

		j->err = rcs[k];
		if (j->err == -EEXIST && j->op.type == LEDGER_REC_CLAIM)
			j->err = job_conflict(d, j);
	}
	/* a test's crash at the worst moment for a private drive: records signed, their
	 * ciphertexts not in the cache yet (check_ciphertext) */
	if (m && d->pub->kill_at_signed)
		raise(SIGKILL);
	for (size_t i = 0; i < n; i++)
		if (jobs[i].err == 0)
			jobs[i].err = job_finish(d, &jobs[i]);
	/* the adoptions' index records synced, then their files renamed (durable before
	 * their queue items go, job_done_locked); an adoption undone there fails its job,
	 * which is tried again from the staged file */
	if ((err = cache_object_adopt_sync(d->cache)) != 0) {
		for (size_t i = 0; i < n; i++) {
			struct pub_job *j = &jobs[i];
			char dest[4200];

			if (j->err == 0 && j->pack.m &&
			    (err < 0 ||
			     cache_object_path(d->cache, j->pack.m->v2, dest, sizeof dest) < 0))
				j->err = err < 0 ? err : -EIO;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (jobs[i].err == 0)
			job_seed(d, &jobs[i]);
out:
	free(ops);
	free(idx);
	free(rcs);
}

/* A job's outcome into its staged item and the queue (lock held; let go meanwhile). */
static void job_done_locked(struct fs_drive *d, struct pub_job *j)
{
	struct fs_publisher *p = d->pub;
	struct fs_staged *s = j->s;

	s->in_hand = false;
	if (j->err < 0) {
		char why[256];

		snprintf(why, sizeof why, "%s", strerror(-j->err));
		s->failed = true;
		s->fails++;
		/* 5 s, doubling to 5 min */
		s->retry_at = time(NULL) + (s->fails > 6 ? 300 : 5 << (s->fails - 1));
		snprintf(p->last_error, sizeof p->last_error, "%s: %s (kept in %s)", j->path, why,
		         j->file);
		fs_err("publishing %s failed: %s (kept in %s; tried again in %lld s)", j->path, why,
		       j->file, (long long)(s->retry_at - time(NULL)));
		pthread_mutex_unlock(&p->lock);
		ledger_queue_fail(d->ledger, j->qid, why);
		pthread_mutex_lock(&p->lock);
		return;
	}
	unlink_locked(p, s);
	if (s->opens)
		s->detached = true; /* readers keep their fd: the file moved */
	else
		staged_free(s);
	p->published++;
	pthread_mutex_unlock(&p->lock);
	fs_info("published %s", j->conflict ? j->conflict : j->path);
	/* the kernel was told of the path's staged version with timeouts of 0: it asks
	 * again anyway, and the record's change was noted by the ledger; a conflict copy
	 * and the winner's file at the path are news to it */
	if (j->conflict) {
		fs_drive_changed(d, j->path);
		fs_drive_changed(d, j->conflict);
	}
	pthread_mutex_lock(&p->lock);
}

/* Whether the worker takes i in a batch now (lock held). */
static bool takeable_locked(const struct fs_staged *i, time_t now, time_t *next_retry)
{
	if (!i->queued || i->in_hand || i->writers || i->held)
		return false;
	if (i->failed && now < i->retry_at) {
		if (!*next_retry || i->retry_at < *next_retry)
			*next_retry = i->retry_at;
		return false;
	}
	return true;
}

static void *worker_main(void *arg)
{
	struct fs_drive *d = arg;
	struct fs_publisher *p = d->pub;
	struct pub_job *jobs = calloc(PUB_BATCH, sizeof *jobs);
	int64_t *done = calloc(PUB_BATCH, sizeof *done);

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		time_t now = time(NULL), next_retry = 0;
		int64_t oldest = INT64_MAX;
		size_t n = 0, nd = 0;

		/* the ready items: while the newest of them are younger than GATHER_MS and
		 * a batch is not full, more are probably coming */
		for (struct fs_staged *i = p->list; i && n < PUB_BATCH; i = i->next) {
			if (!takeable_locked(i, now, &next_retry))
				continue;
			n++;
			if (i->ready_ms < oldest)
				oldest = i->ready_ms;
		}
		if (n && n < PUB_BATCH && oldest != INT64_MAX) {
			int64_t until = oldest + GATHER_MS;
			struct ledger_head head;

			if (ledger_head_get(d->ledger, &head) == 0 && head.time >= now &&
			    (head.time + 1) * 1000 + 5 > until)
				until = (head.time + 1) * 1000 + 5; /* just after its second */
			if (until > oldest + 1000)
				until = oldest + 1000; /* a chain ahead of the clock: not longer */
			if (now_ms() < until) {
				struct timespec ts = { .tv_sec = until / 1000,
					               .tv_nsec = (until % 1000) * 1000000 };

				/* the closes meanwhile signal: wait out the window regardless */
				while (!p->stop && now_ms() < until)
					pthread_cond_timedwait(&p->cond, &p->lock, &ts);
				continue;
			}
		}
		/* the ready items, up to a batch; one path at most once a batch (its
		 * second version is an update of the first) */
		n = 0;
		for (struct fs_staged *i = p->list; i && jobs && done && n < PUB_BATCH;
		     i = i->next) {
			bool dup = false;

			if (!takeable_locked(i, now, &next_retry))
				continue;
			if (path_shared_locked(p, i))
				for (size_t k = 0; k < n && !dup; k++)
					dup = !strcmp(jobs[k].s->path, i->path);
			if (dup)
				continue;
			memset(&jobs[n], 0, sizeof jobs[n]);
			jobs[n].s = i;
			jobs[n].path = strdup(i->path);
			jobs[n].file = strdup(i->file);
			jobs[n].qid = i->queue_id;
			jobs[n].follow = i->follow; /* whatever becomes of the job */
			i->follow = NULL;
			i->in_hand = true;
			n++;
		}
		if (!n) {
			if (next_retry) {
				struct timespec ts = { .tv_sec = next_retry };

				pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			} else
				pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		p->hashed = p->hash_total = 0;
		pthread_mutex_unlock(&p->lock);

		publish_batch(d, jobs, n);

		pthread_mutex_lock(&p->lock);
		for (size_t k = 0; k < n; k++) {
			job_done_locked(d, &jobs[k]);
			if (jobs[k].err == 0)
				done[nd++] = jobs[k].qid;
		}
		pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->lock);
		/* their queue items in one transaction: each object is in the cache and
		 * synced (publish_batch), so a crash before this commit only finds them
		 * again at the next mount, their staging files gone: done then */
		if (nd && ledger_queue_done_batch(d->ledger, done, nd) < 0)
			for (size_t k = 0; k < nd; k++)
				ledger_queue_done(d->ledger, done[k]);
		for (size_t k = 0; k < n; k++)
			job_release(&jobs[k]);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	free(jobs);
	free(done);
	return NULL;
}

/* Every item of the durable queue, however many a crash left (a cp -r of thousands
 * of files is queued faster than it is published): a malloc'd array in *out, its
 * count returned, or -errno. */
static int queue_list_all(struct ledger *l, struct ledger_queue_item **out)
{
	for (size_t cap = 256;; cap *= 2) {
		struct ledger_queue_item *items = calloc(cap, sizeof *items);
		int n = items ? ledger_queue_list(l, items, cap) : -ENOMEM;

		if (n >= 0 && (size_t)n == cap) {
			free(items); /* there may be more: ask again with room for them */
			continue;
		}
		if (n < 0)
			free(items);
		else
			*out = items;
		return n;
	}
}

int fs_publish_start(struct fs_drive *d)
{
	struct fs_publisher *p = calloc(1, sizeof *p);
	struct ledger_queue_item *items = NULL;
	char dir[4200];
	int n, err;

	if (!p || !(p->buckets = calloc(p->nbuckets = 64, sizeof *p->buckets))) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_cond_init(&p->spare_cond, NULL);
	snprintf(dir, sizeof dir, "%s/staging", d->dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof dir, "%s/torrents", d->dir);
	mkdir(dir, 0700);
	d->pub = p;
	/* advice only: without it, peers read new ciphertexts from disk */
	if (ledger_is_private(d->ledger) && (err = fs_warmer_start(&p->warmer)) < 0)
		fs_warn("cannot start reading new ciphertexts in: %s", strerror(-err));
	p->kill_at_signed =
	    getenv("SWARMFS_TEST_KILL_AT") && !strcmp(getenv("SWARMFS_TEST_KILL_AT"), "signed");

	/* What a previous run queued is published now; its staging files are shown
	 * meanwhile, as they were before the crash. */
	n = queue_list_all(d->ledger, &items);
	if (n < 0)
		fs_err("cannot read the publish queue: %s (its items wait for the next mount)",
		       strerror(-n));
	for (int i = 0; i < n; i++) {
		struct fs_staged *s;
		struct stat st;

		if (stat(items[i].staging, &st) < 0) {
			/* gone: published just before the crash, or never written */
			ledger_queue_done(d->ledger, items[i].id);
			continue;
		}
		if (ledger_is_private(d->ledger) && fs_durable_recover(d, &items[i], &st) == 0) {
			/* its record and ciphertext were on disk: the plaintext goes */
			ledger_queue_done(d->ledger, items[i].id);
			remove_staging(d, items[i].staging);
			continue;
		}
		if (find_file_locked(p, items[i].staging) || !(s = calloc(1, sizeof *s)))
			continue;
		s->fd = -1;
		s->path = strdup(items[i].path);
		s->file = strdup(items[i].staging);
		s->queued = true;
		s->queue_id = items[i].id;
		if (!s->path || !s->file) {
			staged_free(s);
			continue;
		}
		list_add_locked(p, s);
		if (items[i].size >= 0 && st.st_size != items[i].size) {
			char why[256];

			/* not what its writer closed: signing it would publish a torn file */
			s->held = s->failed = true;
			snprintf(why, sizeof why,
			         "the staged copy is %lld bytes, %lld when it was closed (the "
			         "machine stopped before it reached the disk): not published until "
			         "it is written again",
			         (long long)st.st_size, (long long)items[i].size);
			snprintf(p->last_error, sizeof p->last_error, "%s: %s (kept in %s)",
			         s->path, why, s->file);
			fs_err("%s: %s (kept in %s)", s->path, why, s->file);
			ledger_queue_fail(d->ledger, s->queue_id, why);
			continue;
		}
		fs_info("resuming the publishing of %s", s->path);
	}
	if (n >= 0)
		staging_sweep(d, items, n);
	free(items);
	err = -pthread_create(&p->thread, NULL, worker_main, d);
	if (err) {
		fs_publish_stop(d); /* not running: frees the list, the table and p */
		return err;
	}
	p->running = true;
	/* without spares, creates make their files themselves */
	p->spare_running = pthread_create(&p->spare_thread, NULL, spare_main, d) == 0;
	return 0;
}

void fs_publish_stop(struct fs_drive *d)
{
	struct fs_publisher *p = d->pub;

	if (!p)
		return;
	if (p->spare_running) {
		pthread_mutex_lock(&p->lock);
		p->spare_stop = true;
		pthread_cond_signal(&p->spare_cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->spare_thread, NULL);
	}
	while (p->nspare) { /* never taken: nothing of them is kept */
		p->nspare--;
		unlink(p->spare_file[p->nspare]);
		close(p->spare_fd[p->nspare]);
		free(p->spare_file[p->nspare]);
	}
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	while (p->list) {
		struct fs_staged *s = p->list;

		p->list = s->next;
		staged_free(s); /* the staging files and queue items stay for next time */
	}
	fs_warmer_stop(p->warmer); /* after the worker, which adds to it */
	free(p->buckets);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->spare_cond);
	free(p);
	d->pub = NULL;
}
