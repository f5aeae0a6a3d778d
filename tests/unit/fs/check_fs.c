/* fs/ internals that need no mount: swarmfs:// URIs, the data directory, the lock,
 * publishing's one read of a staged file (fs/pack.h). */
#include "buffer.h"
#include "cipher.h"
#include "fixture.h"
#include "follow.h"
#include "fs.h"
#include "history.h"
#include "inode.h"
#include "json.h"
#include "mount_opts.h"
#include "pack.h"
#include "pagecache.h"
#include "warm.h"
#include "uri.h"

#include <swarm.h>

#include <check.h>
#include <dirent.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ID "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

START_TEST(uri_round_trip)
{
	struct fs_uri u, v;
	const char *why = NULL;
	char *text;

	ck_assert_int_eq(
	    fs_uri_parse("swarmfs://" ID "?tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce"
	                 "&peer=127.0.0.1:6881&peer=[::1]:7000&dn=team%20drive&x=ignored",
	                 &u, &why),
	    0);
	ck_assert_str_eq(u.drive_id, ID);
	ck_assert_uint_eq(u.n_trackers, 1);
	ck_assert_str_eq(u.trackers[0], "http://127.0.0.1:6969/announce");
	ck_assert_uint_eq(u.n_peers, 2);
	ck_assert_str_eq(u.peers[0], "127.0.0.1:6881");
	ck_assert_str_eq(u.peers[1], "[::1]:7000");
	ck_assert_str_eq(u.name, "team drive");
	ck_assert_int_eq(fs_uri_format(&u, &text), 0);
	ck_assert_int_eq(fs_uri_parse(text, &v, &why), 0);
	ck_assert_str_eq(v.drive_id, u.drive_id);
	ck_assert_str_eq(v.trackers[0], u.trackers[0]);
	ck_assert_str_eq(v.peers[1], u.peers[1]);
	ck_assert_str_eq(v.name, u.name);
	ck_assert_ptr_null(strchr(text, ' '));
	free(text);
	fs_uri_release(&u);
	fs_uri_release(&v);
}
END_TEST

START_TEST(uri_bare_id_and_case)
{
	struct fs_uri u;

	ck_assert(fs_uri_is_uri("SwarmFS://" ID));
	ck_assert_int_eq(
	    fs_uri_parse(
	        "SWARMFS://00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF", &u,
	        NULL),
	    0);
	ck_assert_str_eq(u.drive_id, ID);
	ck_assert_uint_eq(u.n_trackers + u.n_peers, 0);
	ck_assert_ptr_null(u.name);
	fs_uri_release(&u);
}
END_TEST

START_TEST(uri_malformed_rejected)
{
	/* what was tried: each of these must fail with a reason and leave nothing */
	static const char *const bad[] = {
		"http://" ID,
		"swarmfs://",
		"swarmfs://0011",
		"swarmfs://" ID "0",
		"swarmfs://g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"swarmfs://" ID "?tr",
		"swarmfs://" ID "?tr=",
		"swarmfs://" ID "?tr=http%3",
		"swarmfs://" ID "?tr=http%zz",
		"swarmfs://" ID "?dn=a%00b",
		"swarmfs://" ID "?peer=127.0.0.1",
		"swarmfs://" ID "?peer=127.0.0.1:0",
		"swarmfs://" ID "?peer=127.0.0.1:65536",
		"swarmfs://" ID "?peer=:80",
		"swarmfs://" ID "?peer=a:b:80",
		"swarmfs://" ID "?peer=[::1]80",
		"swarmfs://" ID "?peer=host%20x:80",
		NULL,
	};
	for (int i = 0; bad[i]; i++) {
		struct fs_uri u;
		const char *why = NULL;

		ck_assert_msg(fs_uri_parse(bad[i], &u, &why) == -EINVAL, "accepted %s", bad[i]);
		ck_assert_msg(why && *why, "no reason for %s", bad[i]);
		ck_assert_uint_eq(u.n_trackers + u.n_peers, 0);
	}
}
END_TEST

START_TEST(uri_list_limits)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct fs_uri u;
	const char *why;

	fprintf(f, "swarmfs://%s?", ID);
	for (int i = 0; i < FS_URI_MAX_LIST + 1; i++)
		fprintf(f, "peer=127.0.0.1:%d&", 1000 + i);
	fclose(f);
	/* what was tried: one peer more than the limit, as a hostile link could carry */
	ck_assert_int_eq(fs_uri_parse(text, &u, &why), -EINVAL);
	ck_assert_str_eq(why, "too many peers");
	free(text);
}
END_TEST

START_TEST(home_resolution_order)
{
	char *p;

	setenv("SWARMFS_HOME", "/a", 1);
	setenv("XDG_DATA_HOME", "/b", 1);
	setenv("HOME", "/c", 1);
	ck_assert_int_eq(fs_home_resolve("/x", &p), 0);
	ck_assert_str_eq(p, "/x");
	free(p);
	ck_assert_int_eq(fs_home_resolve(NULL, &p), 0);
	ck_assert_str_eq(p, "/a");
	free(p);
	unsetenv("SWARMFS_HOME");
	ck_assert_int_eq(fs_home_resolve(NULL, &p), 0);
	ck_assert_str_eq(p, "/b/swarmfs");
	free(p);
	unsetenv("XDG_DATA_HOME");
	ck_assert_int_eq(fs_home_resolve(NULL, &p), 0);
	ck_assert_str_eq(p, "/c/.local/share/swarmfs");
	free(p);
	unsetenv("HOME");
	ck_assert_int_eq(fs_home_resolve(NULL, &p), -ENOENT);
}
END_TEST

START_TEST(drive_dir_refuses_escapes)
{
	char *p;

	ck_assert_int_eq(fs_drive_dir("/h", "team", &p), 0);
	ck_assert_str_eq(p, "/h/drives/team");
	free(p);
	/* what was tried: names that would leave <home>/drives */
	ck_assert_int_eq(fs_drive_dir("/h", "..", &p), -EINVAL);
	ck_assert_int_eq(fs_drive_dir("/h", ".", &p), -EINVAL);
	ck_assert_int_eq(fs_drive_dir("/h", "a/../../etc", &p), -EINVAL);
	ck_assert_int_eq(fs_drive_dir("/h", "", &p), -EINVAL);
}
END_TEST

START_TEST(drive_lock_is_exclusive_and_dies_with_owner)
{
	char *dir, sub[4096];
	long holder = 0;
	int st, pfd[2];

	ck_assert_int_eq(fixture_tmpdir_new("fs", &dir), 0);
	snprintf(sub, sizeof sub, "%s/drives/team", dir);
	ck_assert_int_eq(fs_mkdirs(sub, 0700), 0);
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t owner = fork();
	if (owner == 0) {
		int fd = fs_drive_lock(sub, NULL);
		char c = fd >= 0 ? 'y' : 'n';

		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	ck_assert_int_eq(fs_drive_lock(sub, &holder), -EBUSY);
	ck_assert_int_eq(holder, owner);
	kill(owner, SIGKILL);
	waitpid(owner, &st, 0);
	int fd = fs_drive_lock(sub, &holder);
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(fixture_tmpdir_remove(dir), 0);
	free(dir);
}
END_TEST

START_TEST(inodes_ref_forget_and_numbers_never_reused)
{
	struct fs_inodes *t;
	uint64_t a, a2, b, root;
	char *p;

	ck_assert_int_eq(fs_inodes_new(&t), 0);
	ck_assert_int_eq(fs_inodes_path(t, 1, &p), 0);
	ck_assert_str_eq(p, "");
	free(p);
	ck_assert_int_eq(fs_inodes_ref(t, "", &root), 0);
	ck_assert_uint_eq(root, 1);
	ck_assert_int_eq(fs_inodes_ref(t, "docs/a.txt", &a), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "docs/a.txt", &a2), 0);
	ck_assert_uint_eq(a, a2);
	ck_assert_uint_gt(a, 1);
	ck_assert_int_eq(fs_inodes_path(t, a, &p), 0);
	ck_assert_str_eq(p, "docs/a.txt");
	free(p);
	ck_assert_uint_eq(fs_inodes_find(t, "docs/a.txt"), a);
	/* two lookups need two forgets */
	fs_inodes_forget(t, a, 1);
	ck_assert_uint_eq(fs_inodes_find(t, "docs/a.txt"), a);
	fs_inodes_forget(t, a, 1);
	ck_assert_uint_eq(fs_inodes_find(t, "docs/a.txt"), 0);
	ck_assert_int_eq(fs_inodes_path(t, a, &p), -ESTALE);
	/* the same path again gets a new number; the old one is never handed out */
	ck_assert_int_eq(fs_inodes_ref(t, "docs/a.txt", &b), 0);
	ck_assert_uint_ne(b, a);
	/* the root is never forgotten */
	fs_inodes_forget(t, 1, 1000);
	ck_assert_int_eq(fs_inodes_path(t, 1, &p), 0);
	free(p);
	ck_assert_int_eq(fs_inodes_path(t, 999999, &p), -ESTALE);
	fs_inodes_free(t);
}
END_TEST

START_TEST(inodes_dirent_numbers_match_stat_and_stay_stable)
{
	struct fs_inodes *t;
	uint64_t a, free_a, free_b;

	ck_assert_int_eq(fs_inodes_new(&t), 0);
	/* a name nobody looked up: a stable number outside the table's range */
	free_a = fs_inodes_dirent_ino(t, "docs/a.txt");
	free_b = fs_inodes_dirent_ino(t, "docs/b.txt");
	ck_assert_uint_ne(free_a, 0);
	ck_assert_uint_ne(free_a >> 63, 0);
	ck_assert_uint_eq(fs_inodes_dirent_ino(t, "docs/a.txt"), free_a);
	ck_assert_uint_ne(free_a, free_b);
	/* once the kernel holds the name, readdir gives the number stat gives */
	ck_assert_int_eq(fs_inodes_ref(t, "docs/a.txt", &a), 0);
	ck_assert_uint_eq(fs_inodes_dirent_ino(t, "docs/a.txt"), a);
	ck_assert_uint_eq(fs_inodes_dirent_ino(t, "docs/b.txt"), free_b);
	/* and after a rename, under the new name only */
	ck_assert_int_eq(fs_inodes_rename(t, "docs", "papers"), 0);
	ck_assert_uint_eq(fs_inodes_dirent_ino(t, "papers/a.txt"), a);
	ck_assert_uint_eq(fs_inodes_dirent_ino(t, "docs/a.txt"), free_a);
	fs_inodes_forget(t, a, 1);
	ck_assert_uint_ne(fs_inodes_dirent_ino(t, "papers/a.txt"), a);
	fs_inodes_free(t);
}
END_TEST

START_TEST(inodes_rename_moves_subtree_and_detaches_target)
{
	struct fs_inodes *t;
	uint64_t d, f, g, victim, other;
	char *p;

	ck_assert_int_eq(fs_inodes_new(&t), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "a", &d), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "a/f", &f), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "a/sub/g", &g), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "b", &victim), 0);
	ck_assert_int_eq(fs_inodes_ref(t, "ab", &other), 0); /* shares a prefix, not a parent */
	ck_assert_int_eq(fs_inodes_rename(t, "a", "b"), 0);
	ck_assert_int_eq(fs_inodes_path(t, d, &p), 0);
	ck_assert_str_eq(p, "b");
	free(p);
	ck_assert_int_eq(fs_inodes_path(t, g, &p), 0);
	ck_assert_str_eq(p, "b/sub/g");
	free(p);
	ck_assert_uint_eq(fs_inodes_find(t, "b/f"), f);
	ck_assert_uint_eq(fs_inodes_find(t, "a/f"), 0);
	ck_assert_int_eq(fs_inodes_path(t, victim, &p), -ESTALE);
	ck_assert_int_eq(fs_inodes_path(t, other, &p), 0);
	ck_assert_str_eq(p, "ab");
	free(p);
	fs_inodes_forget(t, victim, 1); /* the kernel may still forget a detached one */
	/* what was tried: a directory into itself, and the root */
	ck_assert_int_eq(fs_inodes_rename(t, "b", "b/sub/x"), -EINVAL);
	ck_assert_int_eq(fs_inodes_rename(t, "", "x"), -EINVAL);
	fs_inodes_free(t);
}
END_TEST

START_TEST(inodes_100k_entries)
{
	struct fs_inodes *t;
	char path[64];
	uint64_t ino, first = 0;

	ck_assert_int_eq(fs_inodes_new(&t), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(path, sizeof path, "big/file-%06d", i);
		ck_assert_int_eq(fs_inodes_ref(t, path, &ino), 0);
		if (!first)
			first = ino;
	}
	ck_assert_uint_eq(fs_inodes_count(t), 100001);
	ck_assert_uint_eq(fs_inodes_find(t, "big/file-000000"), first);
	ck_assert_uint_eq(fs_inodes_find(t, "big/file-099999"), first + 99999);
	ck_assert_int_eq(fs_inodes_rename(t, "big", "huge"), 0);
	ck_assert_uint_eq(fs_inodes_find(t, "huge/file-050000"), first + 50000);
	for (uint64_t i = 0; i < 100000; i++)
		fs_inodes_forget(t, first + i, 1);
	ck_assert_uint_eq(fs_inodes_count(t), 1);
	fs_inodes_free(t);
}
END_TEST

/* What was tried: every character JSON must escape, bytes that are not UTF-8 (a lone
 * continuation byte, a truncated sequence, an overlong '/', a surrogate), and a
 * misnested document. */
START_TEST(json_escapes_and_nests)
{
	struct fs_json j;
	char *out = NULL;

	fs_json_init(&j);
	fs_json_object_begin(&j, NULL);
	fs_json_str(&j, "q\"k", "a\"b\\c\nd\te\x01\x1f\x7f/");
	fs_json_str(&j, "utf8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	fs_json_str(&j, "bad", "\x80x\xc3\xc0\xaf\xed\xa0\x80");
	fs_json_array_begin(&j, "a");
	fs_json_int(&j, NULL, -5);
	fs_json_uint(&j, NULL, UINT64_MAX);
	fs_json_bool(&j, NULL, true);
	fs_json_null(&j, NULL);
	fs_json_hex(&j, NULL, (const uint8_t *)"\x01\xab", 2);
	fs_json_array_end(&j);
	fs_json_array_begin(&j, "empty");
	fs_json_array_end(&j);
	fs_json_str(&j, "none", NULL);
	fs_json_object_end(&j);
	ck_assert_int_gt(fs_json_finish(&j, &out), 0);
	ck_assert_str_eq(out, "{\n"
	                      "  \"q\\\"k\": \"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\x7f/\",\n"
	                      "  \"utf8\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\n"
	                      "  \"bad\": \"\\ufffdx\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\",\n"
	                      "  \"a\": [\n"
	                      "    -5,\n"
	                      "    18446744073709551615,\n"
	                      "    true,\n"
	                      "    null,\n"
	                      "    \"01ab\"\n"
	                      "  ],\n"
	                      "  \"empty\": [],\n"
	                      "  \"none\": null\n"
	                      "}\n");
	free(out);

	fs_json_init(&j); /* an end without a begin is an error, not a document */
	fs_json_object_begin(&j, NULL);
	fs_json_array_end(&j);
	fs_json_array_end(&j);
	ck_assert_int_eq(fs_json_finish(&j, &out), -EINVAL);
	fs_json_init(&j);
	fs_json_array_begin(&j, NULL);
	ck_assert_int_eq(fs_json_finish(&j, &out), -EINVAL);
}
END_TEST

static int collect_entry(const struct ledger_log_entry *e, void *ctx)
{
	memcpy(ctx, e, sizeof *e);
	return 0;
}

START_TEST(history_lines_round_trip_and_refuse_garbage)
{
	struct ledger_log_entry *e = calloc(2, sizeof *e);
	char line[2 * LEDGER_PATH_MAX + 256];

	ck_assert_ptr_nonnull(e);
	e[0].type = LEDGER_REC_MOVE;
	e[0].height = 42;
	e[0].time = 1700000000;
	memset(e[0].author, 0xab, sizeof e[0].author);
	memset(e[0].record_id, 0x01, sizeof e[0].record_id);
	strcpy(e[0].path, "dir/a b.txt");
	strcpy(e[0].dest, "dir/c \"d\".txt");
	ck_assert_int_lt(fs_history_line(&e[0], line, sizeof line), (int)sizeof line);
	ck_assert_int_eq(fs_history_parse(line, collect_entry, &e[1]), 0);
	ck_assert_int_eq(memcmp(&e[0], &e[1], sizeof *e), 0);
	/* what was tried: a short line, an unknown type, a bad number, a short key, no
	 * final newline; each is refused */
	const char *bad[] = { "claim\t1\t2\n", "nonsense\t1\t2\t" /* ... */,
		              "claim\tx\t2\tab\tcd\tp\t\n", "claim\t1\t2\tabcd\tabcd\tp\t\n",
		              NULL };
	for (int i = 0; bad[i]; i++)
		ck_assert_int_eq(fs_history_parse(bad[i], collect_entry, &e[1]), -EBADMSG);
	line[strlen(line) - 1] = '\0';
	ck_assert_int_eq(fs_history_parse(line, collect_entry, &e[1]), -EBADMSG);
	free(e);
}
END_TEST

START_TEST(time_is_iso8601)
{
	char buf[40];

	fs_time_iso8601(1700000000, true, buf, sizeof buf);
	ck_assert_str_eq(buf, "2023-11-14T22:13:20Z");
	setenv("TZ", "Asia/Kolkata", 1); /* +05:30: the minutes of the offset matter */
	tzset();
	fs_time_iso8601(1700000000, false, buf, sizeof buf);
	ck_assert_str_eq(buf, "2023-11-15T03:43:20+05:30");
	setenv("TZ", "UTC", 1);
	tzset();
	fs_time_iso8601(1700000000, false, buf, sizeof buf);
	ck_assert_str_eq(buf, "2023-11-14T22:13:20+00:00");
}
END_TEST

START_TEST(mount_o_options_become_flags)
{
	char *in[] = { "mount",
		       "-o",
		       "home=/h,rw,tracker=http://t/a,noauto,x-systemd.automount",
		       "-oallow-other,no_dht,cache_size=1G,_netdev,default_permissions",
		       "team",
		       "/mnt",
		       NULL };
	char **out;
	int n;

	ck_assert_int_eq(fs_mount_argv_expand(6, in, &n, &out), 0);
	/* the FUSE rest goes last (getopt permutes), or before a "--" */
	const char *want[] = { "mount",
		               "--home",
		               "/h",
		               "--tracker",
		               "http://t/a",
		               "--allow-other",
		               "--no-dht",
		               "--cache-size",
		               "1G",
		               "team",
		               "/mnt",
		               "-o",
		               "rw,default_permissions",
		               NULL };
	for (int i = 0; want[i]; i++) {
		ck_assert_msg(i < n, "only %d words", n);
		ck_assert_str_eq(out[i], want[i]);
	}
	ck_assert_int_eq(n, 13);
	ck_assert_ptr_null(out[n]);
	fs_mount_argv_free(out);
	char *helper[] = { "mount", "-o", "rw,home=/h", "--", "team", "/mnt", NULL };
	ck_assert_int_eq(fs_mount_argv_expand(6, helper, &n, &out), 0);
	ck_assert_int_eq(n, 8);
	ck_assert_str_eq(out[3], "-o");
	ck_assert_str_eq(out[4], "rw");
	ck_assert_str_eq(out[5], "--");
	fs_mount_argv_free(out);
	char *bad[] = { "mount", "-o", "peer", "team", "/mnt", NULL };
	ck_assert_int_eq(fs_mount_argv_expand(5, bad, &n, &out), -EINVAL);
}
END_TEST

/* The whole of a file into memory. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* A new directory (named after name) holding a staged file of size random bytes (seed)
 * at src, a cipher c under a new file key, and the ciphertext's path ct (not made). */
static char *private_staged(const char *name, uint64_t size, uint32_t seed, char src[4200],
                            char ct[4200], struct fs_cipher *c)
{
	uint8_t key[FS_CIPHER_KEY_LEN];
	int64_t nonce;
	char *dir;

	ck_assert_int_eq(fixture_tmpdir_new(name, &dir), 0);
	snprintf(src, 4200, "%s/staged", dir);
	snprintf(ct, 4200, "%s/cipher", dir);
	ck_assert_int_eq(fixture_file_random(src, size, seed), 0);
	ck_assert_int_eq(fs_cipher_new_key(key, &nonce), 0);
	fs_cipher_init(c, key, nonce);
	return dir;
}

/* private_staged's end: the cipher wiped, the directory gone. */
static void private_staged_done(struct fs_cipher *c, char *dir)
{
	fs_cipher_release(c);
	fixture_tmpdir_remove(dir);
	free(dir);
}

/* The files a and b are size bytes each, the same bytes. */
static void assert_same_file(const char *a, const char *b, uint64_t size)
{
	size_t alen, blen;
	uint8_t *x = slurp(a, &alen), *y = slurp(b, &blen);

	ck_assert_uint_eq(alen, size);
	ck_assert_uint_eq(blen, size);
	ck_assert_msg(!memcmp(x, y, size), "%s and %s differ", a, b);
	free(x);
	free(y);
}

/* A private file of more batches than the ciphertext writer's ring holds (5 of 8 MiB,
 * then an unaligned tail: the ring is reused, the tail written buffered): the
 * ciphertext on disk is the plaintext under the file's key stream at every offset,
 * and the torrent and the cache's block digests are those of the ciphertext, as a
 * public pack of that ciphertext makes them. */
START_TEST(pack_private_ring_writes_every_batch_in_place)
{
	const uint64_t size = (40ULL << 20) + 12345;
	char src[4200], ct[4200];
	uint8_t *plain, *cipher;
	struct fs_pack priv, pub;
	struct fs_cipher c;
	size_t plen, clen;
	char *dir = private_staged("pack", size, 17, src, ct, &c);

	ck_assert_int_eq(fs_pack_file(src, "n", &c, ct, NULL, NULL, NULL, &priv), 0);
	plain = slurp(src, &plen);
	cipher = slurp(ct, &clen);
	ck_assert_uint_eq(clen, size);
	ck_assert_uint_eq(plen, size);
	/* every 16 KiB block differs from the plaintext's and decrypts to it */
	for (size_t off = 0; off < size; off += 16384)
		ck_assert_msg(memcmp(cipher + off, plain + off, size - off < 16 ? size - off : 16),
		              "plaintext at %zu", off);
	ck_assert_int_eq(fs_cipher_apply(&c, 0, cipher, cipher, clen), 0);
	ck_assert_msg(!memcmp(cipher, plain, size), "the ciphertext does not decrypt to the file");
	ck_assert_int_eq(fs_pack_file(ct, "n", NULL, NULL, NULL, NULL, NULL, &pub), 0);
	ck_assert_mem_eq(priv.m->v2, pub.m->v2, 32);
	ck_assert_uint_eq(priv.nblocks, pub.nblocks);
	ck_assert(!memcmp(priv.blocks, pub.blocks, (size_t)priv.nblocks * 32));
	fs_pack_release(&priv);
	fs_pack_release(&pub);
	fs_cipher_release(&c);
	free(plain);
	free(cipher);
	fixture_tmpdir_remove(dir);
	free(dir);
}
END_TEST

/* A ciphertext write that fails half way (the file size limit: EFBIG from the third
 * batch on, with batches still queued behind it) fails the pack with its errno, leaves
 * no ciphertext behind, and does not hang. */
START_TEST(pack_private_write_failure_fails_and_removes)
{
	char src[4200], ct[4200];
	struct rlimit lim = { 20 << 20, 20 << 20 };
	struct fs_pack p;
	struct fs_cipher c;
	char *dir = private_staged("packfail", 64 << 20, 19, src, ct, &c);

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ck_assert_int_eq(fs_pack_file(src, "n", &c, ct, NULL, NULL, NULL, &p), -EFBIG);
	ck_assert_int_eq(access(ct, F_OK), -1);
	private_staged_done(&c, dir);
}
END_TEST

/* A thread's own buffer (fs_buffer_thread) is the same from call to call, grows when
 * asked for more, and is another thread's alone: two FUSE threads answering requests at
 * once must never share the plaintext of their replies. Freed when its thread ends
 * (the sanitizer run's leak check). Bulk buffers are aligned for O_DIRECT, and to a huge
 * page from 2 MiB on. */
static void *other_thread_buffer(void *arg)
{
	uint8_t *b = fs_buffer_thread(4096);

	(void)arg;
	return b;
}

START_TEST(buffers_are_the_threads_own_and_aligned)
{
	uint8_t *a = fs_buffer_thread(128 << 10), *b, *big, *small;
	pthread_t th;
	void *theirs;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(fs_buffer_thread(4096), a);
	memset(a, 0xa5, 128 << 10); /* all of it is there */
	ck_assert_ptr_nonnull(b = fs_buffer_thread(1 << 20));
	memset(b, 0x5a, 1 << 20);
	ck_assert_ptr_eq(fs_buffer_thread(128 << 10), b);
	ck_assert_int_eq(pthread_create(&th, NULL, other_thread_buffer, NULL), 0);
	ck_assert_int_eq(pthread_join(th, &theirs), 0);
	ck_assert_ptr_nonnull(theirs);
	ck_assert_ptr_ne(theirs, b);
	ck_assert_ptr_nonnull(big = fs_buffer_new(8 << 20));
	ck_assert_ptr_nonnull(small = fs_buffer_new(12345));
	ck_assert_uint_eq((uintptr_t)big % (2 << 20), 0);
	ck_assert_uint_eq((uintptr_t)small % 4096, 0);
	memset(big, 1, 8 << 20);
	free(big);
	free(small);
}
END_TEST

/* A packed private file's ciphertext (at ct, open read-only in *fd), and how much of it
 * is in the page cache (fs_pagecache_held): the tmpdir to remove. */
static char *packed_ciphertext(const char *name, uint64_t size, int seed, char *ct, int *fd,
                               int64_t *held)
{
	char src[4200];
	struct fs_pack p;
	struct fs_cipher c;
	char *dir = private_staged(name, size, seed, src, ct, &c);

	ck_assert_int_eq(fs_pack_file(src, "n", &c, ct, NULL, NULL, NULL, &p), 0);
	fs_pack_release(&p);
	fs_cipher_release(&c);
	ck_assert_int_ge(*fd = open(ct, O_RDONLY), 0);
	*held = fs_pagecache_held(*fd, 0, 0);
	return dir;
}

/* A private file's ciphertext, written around the page cache, is not in it after the
 * pack (an O_DIRECT write leaves no page behind); the warmer, handed it as a publish
 * does (fs/publish.c's job_seed), reads it in: fs_pagecache_held counts all of it
 * (polled, 10 s deadline). Without the warmer none of it comes. Files it cannot open,
 * and those past its queue's bound, are skipped, and stopping it with work queued drops
 * the work. Where the kernel cannot tell (no cachestat) or the file system has no
 * O_DIRECT (the ciphertext is buffered, so in the page cache already) there is nothing
 * to see. */
START_TEST(warmer_reads_a_ciphertext_in)
{
	const uint64_t size = (24 << 20) + 4321;
	const int64_t whole = (int64_t)((size + 4095) / 4096 * 4096);
	char ct[4200];
	struct fs_warmer *w;
	int64_t held;
	int fd;
	char *dir = packed_ciphertext("warm", size, 23, ct, &fd, &held);

	ck_assert_int_eq(fs_warmer_start(&w), 0);
	fs_warmer_add(w, "/nonexistent/warm", size); /* skipped, not waited on */
	fs_warmer_add(w, ct, size);
	if (held >= 0 && held < whole) {
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			held = fs_pagecache_held(fd, 0, 0);
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (held < whole && t.tv_sec - t0.tv_sec < 10);
		ck_assert_int_eq(held, whole);
	} else {
		ck_assert(held == -ENOSYS || held == whole);
	}
	/* a flood: more than the queue holds, then a stop with work queued */
	for (int i = 0; i < 4 * FS_WARM_QUEUE_MAX; i++)
		fs_warmer_add(w, ct, size);
	fs_warmer_stop(w);
	fs_warmer_stop(NULL);
	close(fd);
	fixture_tmpdir_remove(dir);
	free(dir);
}
END_TEST

/* The warmer reads nothing while the drive publishes: a read-in during the next
 * publish took its core and its disk (fs/warm.h). A ciphertext is handed to the warmer,
 * and then, for 3 s (six times its 0.5 s delay), the drive is held every 100 ms, as a
 * cp into the mount, the publish worker and a read through the mount do
 * (fs_warmer_hold): none of it may come into the page cache meanwhile. Once the holds
 * end it is read in (polled, 9 s deadline). Without the hold the warmer read it in 0.5 s
 * after the add, mid-publish. Where the kernel cannot tell, or the ciphertext is in the
 * page cache from the start, there is nothing to see. */
START_TEST(warmer_waits_while_the_drive_publishes)
{
	const uint64_t size = (16 << 20) + 999;
	const int64_t whole = (int64_t)((size + 4095) / 4096 * 4096);
	char ct[4200];
	struct timespec t0, t;
	struct fs_warmer *w;
	int64_t held, before;
	int fd;
	char *dir = packed_ciphertext("warmhold", size, 31, ct, &fd, &before);

	ck_assert_int_eq(fs_warmer_start(&w), 0);
	fs_warmer_add(w, ct, size);
	if (before >= 0 && before < whole) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			fs_warmer_hold(w);
			/* paces the holds on purpose (a busy drive's), not a wait */
			nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
			held = fs_pagecache_held(fd, 0, 0);
			ck_assert_msg(held <= before,
			              "the warmer read %lld bytes in while the drive was held",
			              (long long)(held - before));
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (t.tv_sec - t0.tv_sec < 3);
		do {
			held = fs_pagecache_held(fd, 0, 0);
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (held < whole && t.tv_sec - t0.tv_sec < 9);
		ck_assert_int_eq(held, whole);
	}
	fs_warmer_hold(NULL);
	fs_warmer_stop(w);
	close(fd);
	fixture_tmpdir_remove(dir);
	free(dir);
}
END_TEST

/* Two packs made alike: the same torrent (both infohashes), the same block digests. */
static void assert_same_pack(const struct fs_pack *a, const struct fs_pack *b)
{
	ck_assert_mem_eq(a->m->v2, b->m->v2, 32);
	ck_assert_mem_eq(a->m->v1, b->m->v1, 20);
	ck_assert_uint_eq(a->nblocks, b->nblocks);
	ck_assert(!memcmp(a->blocks, b->blocks, (size_t)a->nblocks * 32));
}

/* fs_pack_file hashes as libtorrent does: its hybrid torrent of a file (several
 * pieces, an unaligned tail) has the infohashes libtorrent's own maker gives it, and its
 * block digests are the SHA-256 of the file's 16 KiB blocks. */
START_TEST(pack_matches_libtorrent)
{
	const uint64_t size = (12ULL << 20) + 4321;
	struct swarm_make_params mp = { .kind = SWARM_MAKE_HYBRID };
	struct swarm_metainfo *lt = NULL;
	char src[4200], ct[4200];
	struct fs_cipher c;
	struct fs_pack p;
	char *dir = private_staged("packlt", size, 29, src, ct, &c);
	uint8_t *plain;
	size_t len;

	ck_assert_int_eq(fs_pack_file(src, "staged", NULL, NULL, NULL, NULL, NULL, &p), 0);
	ck_assert_int_eq(swarm_metainfo_make(src, &mp, &lt), 0);
	ck_assert_uint_eq(p.m->piece_length, lt->piece_length);
	ck_assert_mem_eq(p.m->v2, lt->v2, 32);
	ck_assert_mem_eq(p.m->v1, lt->v1, 20);
	ck_assert_mem_eq(p.m->files[0].root, lt->files[0].root, 32);
	plain = slurp(src, &len);
	for (uint64_t b = 0; b < p.nblocks; b++) {
		uint8_t md[32];
		size_t n = size - b * 16384 < 16384 ? size - b * 16384 : 16384;

		SHA256(plain + b * 16384, n, md);
		ck_assert_msg(!memcmp(md, p.blocks[b], 32), "block %llu", (unsigned long long)b);
	}
	free(plain);
	swarm_metainfo_free(lt);
	fs_pack_release(&p);
	private_staged_done(&c, dir);
}
END_TEST

/* A packer fed the file as it grows (steps at sizes of four piece lengths: 16 KiB up
 * to 64 KiB pieces) and finished at a fifth makes what one read of the whole file
 * makes: the same torrent, block digests and ciphertext, under the same key. */
START_TEST(packer_steps_across_piece_lengths_match_one_read)
{
	const uint64_t size = (50ULL << 20) + 777;
	const uint64_t avails[] = { 1 << 20, 4 << 20, 20 << 20, 30 << 20, 48 << 20 };
	char src[4200], ct[4200], ct2[4300];
	struct fs_pack stepped, whole;
	struct fs_packer *k;
	struct fs_cipher c;
	char *dir = private_staged("packstep", size, 31, src, ct, &c);

	snprintf(ct2, sizeof ct2, "%s2", ct);
	ck_assert_int_eq(fs_packer_new(src, &c, ct, 0, &k), 0);
	for (size_t i = 0; i < sizeof avails / sizeof *avails; i++) {
		ssize_t n;

		while ((n = fs_packer_step(k, avails[i])) > 0)
			;
		ck_assert_int_eq(n, 0);
		/* every whole piece of what is there, at the piece length of its size */
		ck_assert_uint_eq(fs_packer_done(k), avails[i] /
		                                         swarm_make_piece_length(avails[i]) *
		                                         swarm_make_piece_length(avails[i]));
	}
	ck_assert_int_eq(fs_packer_finish(k, "n", NULL, NULL, NULL, &stepped), 0);
	fs_packer_free(k);
	ck_assert_int_eq(fs_pack_file(src, "n", &c, ct2, NULL, NULL, NULL, &whole), 0);
	assert_same_pack(&stepped, &whole);
	assert_same_file(ct, ct2, size);
	fs_pack_release(&stepped);
	fs_pack_release(&whole);
	private_staged_done(&c, dir);
}
END_TEST

/* A packer whose piece length grows while it is fed the file keeps the SHA-1 state of
 * each even piece: a doubled piece length hashes again only the new pieces' second
 * halves, a quadrupled one their last three quarters. Steps at 1 MiB (16 KiB pieces),
 * 4 MiB (32 KiB: 1 MiB again, half of it hashed) and 48 MiB (128 KiB: 4 MiB again,
 * three quarters of it), finished at 50 MiB: the v1 hashes take the file's bytes and
 * 3.5 MiB more (without the states: 5 MiB more). A step that stops halfway through a
 * redo (one batch) leaves the pieces after it on their older states: the result is
 * still the one read of the whole file. */
START_TEST(packer_hashes_again_only_what_a_longer_piece_adds)
{
	const uint64_t size = (50ULL << 20) + 777;
	const uint64_t avails[] = { 1 << 20, 4 << 20, 48 << 20 };
	const uint32_t pls[] = { 16384, 32768, 131072 };
	char src[4200], ct[4200], ct2[4300];
	struct fs_pack stepped, whole;
	struct fs_packer *k;
	struct fs_cipher c;
	ssize_t n;
	char *dir = private_staged("packheads", size, 47, src, ct, &c);

	snprintf(ct2, sizeof ct2, "%s2", ct);
	ck_assert_int_eq(fs_packer_new(src, &c, ct, 0, &k), 0);
	for (size_t i = 0; i < sizeof avails / sizeof *avails; i++) {
		ck_assert_uint_eq(swarm_make_piece_length(avails[i]), pls[i]);
		while ((n = fs_packer_step(k, avails[i])) > 0)
			;
		ck_assert_int_eq(n, 0);
	}
	ck_assert_uint_eq(swarm_make_piece_length(size), 131072);
	ck_assert_int_eq(fs_packer_finish(k, "n", NULL, NULL, NULL, &stepped), 0);
	ck_assert_uint_eq(fs_packer_v1_work(k), size + (512 << 10) + (3 << 20));
	fs_packer_free(k);
	ck_assert_int_eq(fs_pack_file(src, "n", &c, ct2, NULL, NULL, NULL, &whole), 0);
	assert_same_pack(&stepped, &whole);
	assert_same_file(ct, ct2, size);
	fs_pack_release(&stepped);

	/* a redo cut short by the next length: 4 MiB whole, one batch at 20 MiB (64 KiB
	 * pieces, begun from the 32 KiB ones' states), then 48 MiB (128 KiB: the first
	 * pieces begun from 64 KiB states, those after from 32 KiB ones or none) */
	unlink(ct);
	ck_assert_int_eq(fs_packer_new(src, &c, ct, 0, &k), 0);
	while ((n = fs_packer_step(k, 4 << 20)) > 0)
		;
	ck_assert_int_gt(fs_packer_step(k, 20 << 20), 0);
	ck_assert_uint_lt(fs_packer_done(k), 20 << 20);
	ck_assert_int_gt(fs_packer_step(k, 48 << 20), 0);
	ck_assert_int_eq(fs_packer_finish(k, "n", NULL, NULL, NULL, &stepped), 0);
	fs_packer_free(k);
	assert_same_pack(&stepped, &whole);
	assert_same_file(ct, ct2, size);
	fs_pack_release(&stepped);
	fs_pack_release(&whole);
	private_staged_done(&c, dir);
}
END_TEST

/* A file cut shorter than what a packer packed of it (truncated behind a follower's
 * back: by another process, or by a crash that lost its tail) is not finished: its
 * hashes and its ciphertext are of bytes the file no longer holds, and a record signing
 * them would name content nobody can serve. fs_packer_finish says -ESTALE, and the
 * packer's free removes the ciphertext. Without the check the finish signed off on the
 * old bytes' last piece (returned 0). */
START_TEST(packer_finish_refuses_a_file_cut_short)
{
	const uint64_t size = (20ULL << 20) + 123;
	char src[4200], ct[4200];
	struct fs_packer *k;
	struct fs_pack p;
	struct fs_cipher c;
	ssize_t n;
	char *dir = private_staged("packcut", size, 43, src, ct, &c);

	ck_assert_int_eq(fs_packer_new(src, &c, ct, 0, &k), 0);
	while ((n = fs_packer_step(k, size)) > 0)
		;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_gt(fs_packer_done(k), 10 << 20);
	ck_assert_int_eq(truncate(src, (10 << 20) + 5000), 0);
	ck_assert_int_eq(fs_packer_finish(k, "n", NULL, NULL, NULL, &p), -ESTALE);
	ck_assert_int_eq(access(ct, F_OK), 0); /* still there until the packer goes */
	fs_packer_free(k);
	ck_assert_int_eq(access(ct, F_OK), -1);
	private_staged_done(&c, dir);
}
END_TEST

/* Write src's bytes [from, to) to dst in 1 MiB writes, telling f of each. */
static void follow_write(int dst, const uint8_t *src, uint64_t from, uint64_t to,
                         struct fs_follow *f)
{
	for (uint64_t off = from; off < to;) {
		size_t n = to - off < (1 << 20) ? (size_t)(to - off) : 1 << 20;

		ck_assert_int_eq(pwrite(dst, src + off, n, (off_t)off), (ssize_t)n);
		fs_follow_wrote(f, off, n);
		off += n;
	}
}

/* Wait (5 s at most) until f has packed at least n bytes. */
static void follow_wait(struct fs_follow *f, uint64_t n)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_msg(t.tv_sec - t0.tv_sec < 5, "packed %llu of %llu bytes in 5 s",
		              (unsigned long long)fs_follow_packed(f), (unsigned long long)n);
	} while (fs_follow_packed(f) < n);
}

/* A file written front to back (as cp writes into the mount) is packed while it is
 * written: the follower's work, finished after the last write, is what one read of
 * the closed file makes (on a private drive: under the follower's own key and nonce). */
START_TEST(follow_packs_a_file_as_it_is_written)
{
	const uint64_t size = (40ULL << 20) + 999;
	char src[4200], ct[4200], dst[4200], ct2[4300];
	struct fs_followed fl;
	struct fs_pack followed, whole;
	struct fs_follow *f;
	struct fs_cipher c;
	uint8_t *plain;
	size_t len;
	int fd;
	char *dir = private_staged("follow", size, 37, src, ct, &c);

	fs_cipher_release(&c); /* the follower draws its own key */
	plain = slurp(src, &len);
	snprintf(dst, sizeof dst, "%s/written", dir);
	ck_assert_int_ge(fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(fs_follow_new(dst, true, &f), 0);
	follow_write(fd, plain, 0, 24 << 20, f);
	follow_wait(f, 16 << 20);
	follow_write(fd, plain, 24 << 20, size, f);
	ck_assert_int_eq(fs_follow_take(f, &fl), 0);
	ck_assert_uint_ge(fl.packed, 16 << 20);
	ck_assert_ptr_nonnull(fl.cipher_path);
	ck_assert_int_eq(fs_packer_finish(fl.k, "n", NULL, NULL, NULL, &followed), 0);
	fs_packer_free(fl.k);
	fs_cipher_init(&c, fl.key, fl.nonce);
	snprintf(ct2, sizeof ct2, "%s2", ct);
	ck_assert_int_eq(fs_pack_file(dst, "n", &c, ct2, NULL, NULL, NULL, &whole), 0);
	assert_same_pack(&followed, &whole);
	ck_assert_int_eq(access(fl.cipher_path, F_OK), 0);
	close(fd);
	free(fl.cipher_path);
	free(plain);
	fs_pack_release(&followed);
	fs_pack_release(&whole);
	private_staged_done(&c, dir);
}
END_TEST

/* A flood of writers does not start a thread each: files are followed two at a time in
 * the process (follow.c's FOLLOW_MAX), each a core while its writer writes. Three files
 * are written past the follow threshold; the first two are packed as written, the third
 * not (its packed count stays 0 while the first packs 16 MiB more); once the first is
 * taken, the third's next write starts its follower. Without the bound the third's
 * follower packed alongside the others. */
START_TEST(follow_at_most_two_files_at_once)
{
	const uint64_t size = 32ULL << 20;
	char src[4200], ct[4200], dst[3][4200];
	struct fs_follow *f[3];
	struct fs_followed fl;
	struct fs_cipher c;
	uint8_t *plain;
	size_t len;
	int fd[3];
	char *dir = private_staged("followmax", size, 47, src, ct, &c);

	fs_cipher_release(&c);
	plain = slurp(src, &len);
	for (int i = 0; i < 3; i++) {
		snprintf(dst[i], sizeof dst[i], "%s/w%d", dir, i);
		ck_assert_int_ge(fd[i] = open(dst[i], O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
		ck_assert_int_eq(fs_follow_new(dst[i], false, &f[i]), 0);
		follow_write(fd[i], plain, 0, 12 << 20, f[i]);
	}
	follow_wait(f[0], 8 << 20);
	follow_wait(f[1], 8 << 20);
	follow_write(fd[0], plain, 12 << 20, size, f[0]);
	follow_wait(f[0], 24 << 20);
	ck_assert_uint_eq(fs_follow_packed(f[2]), 0);
	ck_assert_int_eq(fs_follow_take(f[0], &fl), 0); /* its thread ends */
	fs_packer_free(fl.k);
	free(fl.cipher_path);
	follow_write(fd[2], plain, 12 << 20, 16 << 20, f[2]);
	follow_wait(f[2], 8 << 20);
	fs_follow_free(f[1]);
	fs_follow_free(f[2]);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	free(plain);
	fixture_tmpdir_remove(dir);
	free(dir);
}
END_TEST

/* The attack on packing as written: bytes the follower has packed are written again
 * (a seek back and a rewrite of the file's first MiB, or a truncate, reported as a
 * cancel), so its hashes are of bytes the file no longer holds. A record signing them
 * would name content nobody can serve. The follower is not taken (publishing packs the
 * file again), and its ciphertext is gone. */
START_TEST(follow_rewrite_of_packed_bytes_cancels)
{
	const uint64_t size = 24ULL << 20;
	char src[4200], ct[4200], dst[4200];
	struct fs_followed fl = { 0 };
	struct fs_follow *f;
	struct fs_cipher c;
	uint8_t *plain;
	size_t len;
	int fd;
	char *dir = private_staged("followre", size, 41, src, ct, &c);

	fs_cipher_release(&c);
	plain = slurp(src, &len);
	snprintf(dst, sizeof dst, "%s/written", dir);
	for (int how = 0; how < 3; how++) {
		ck_assert_int_ge(fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
		ck_assert_int_eq(fs_follow_new(dst, how != 1, &f), 0);
		follow_write(fd, plain, 0, size, f);
		follow_wait(f, 16 << 20);
		if (how == 2)
			fs_follow_cancel(f); /* a truncate, a copy of older content */
		else
			follow_write(fd, plain + (4 << 20), 0, 1 << 20, f); /* other bytes at 0 */
		ck_assert_int_eq(fs_follow_take(f, &fl), -ENOENT);
		ck_assert_ptr_null(fl.k);
		close(fd);
	}
	/* no ciphertext of the private followers is left beside the file */
	{
		DIR *dh = opendir(dir);
		struct dirent *de;
		int files = 0;

		ck_assert_ptr_nonnull(dh);
		while ((de = readdir(dh)))
			files += de->d_name[0] != '.';
		closedir(dh);
		ck_assert_int_eq(files, 2); /* staged, written */
	}
	/* a write past the end (a hole) is not a rewrite, and is packed once the bytes
	 * before it are there */
	ck_assert_int_ge(fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(fs_follow_new(dst, false, &f), 0);
	follow_write(fd, plain, 12 << 20, size, f);
	follow_write(fd, plain, 0, 12 << 20, f);
	follow_wait(f, 8 << 20);
	ck_assert_int_eq(fs_follow_take(f, &fl), 0);
	fs_packer_free(fl.k);
	close(fd);
	free(plain);
	fixture_tmpdir_remove(dir);
	free(dir);
}
END_TEST

static void setup(void)
{
	fixture_test_setup();
}

int main(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("fs");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, uri_round_trip);
	tcase_add_test(tc, uri_bare_id_and_case);
	tcase_add_test(tc, uri_malformed_rejected);
	tcase_add_test(tc, uri_list_limits);
	tcase_add_test(tc, home_resolution_order);
	tcase_add_test(tc, drive_dir_refuses_escapes);
	tcase_add_test(tc, drive_lock_is_exclusive_and_dies_with_owner);
	tcase_add_test(tc, inodes_ref_forget_and_numbers_never_reused);
	tcase_add_test(tc, inodes_dirent_numbers_match_stat_and_stay_stable);
	tcase_add_test(tc, inodes_rename_moves_subtree_and_detaches_target);
	tcase_add_test(tc, inodes_100k_entries);
	tcase_add_test(tc, json_escapes_and_nests);
	tcase_add_test(tc, history_lines_round_trip_and_refuse_garbage);
	tcase_add_test(tc, time_is_iso8601);
	tcase_add_test(tc, mount_o_options_become_flags);
	tcase_add_test(tc, pack_private_ring_writes_every_batch_in_place);
	tcase_add_test(tc, pack_private_write_failure_fails_and_removes);
	tcase_add_test(tc, buffers_are_the_threads_own_and_aligned);
	tcase_add_test(tc, warmer_reads_a_ciphertext_in);
	tcase_add_test(tc, warmer_waits_while_the_drive_publishes);
	tcase_add_test(tc, packer_finish_refuses_a_file_cut_short);
	tcase_add_test(tc, pack_matches_libtorrent);
	tcase_add_test(tc, packer_steps_across_piece_lengths_match_one_read);
	tcase_add_test(tc, packer_hashes_again_only_what_a_longer_piece_adds);
	tcase_add_test(tc, follow_packs_a_file_as_it_is_written);
	tcase_add_test(tc, follow_rewrite_of_packed_bytes_cancels);
	tcase_add_test(tc, follow_at_most_two_files_at_once);
	suite_add_tcase(s, tc);
	return fixture_run_suite(s);
}
