/* Ed25519 keys (their files; the curve's work is libsodium's, in seal.c, which says why),
 * SHA-256 and randomness through OpenSSL; hex. The only file that includes OpenSSL
 * headers, so OpenSSL errors are translated here, once. */
#include "ledger_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

void ledger_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ledger_unhex(const char *hex, uint8_t *out, size_t len)
{
	uint8_t tmp[256];

	if (len > sizeof tmp || strlen(hex) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, len);
	return 0;
}

void ledger_sha256(const void *p, size_t len, uint8_t out[32])
{
	SHA256(p, len, out);
}

void ledger_digest(const void *p, size_t len, uint8_t out[LEDGER_ID_LEN])
{
	SHA256(p, len, out);
}

int ledger_random(void *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1 ? 0 : -EIO;
}

int ledger_key_from_seed(const uint8_t seed[32], struct ledger_key **out_key)
{
	struct ledger_key *k = calloc(1, sizeof *k);

	if (!k)
		return -ENOMEM;
	if (seal_public_of_seed(seed, k->pub)) {
		free(k);
		return -EIO;
	}
	memcpy(k->seed, seed, 32);
	*out_key = k;
	return 0;
}

int ledger_key_generate(struct ledger_key **out_key)
{
	uint8_t seed[32];
	int rc;

	if (RAND_bytes(seed, sizeof seed) != 1)
		return -EIO;
	rc = ledger_key_from_seed(seed, out_key);
	OPENSSL_cleanse(seed, sizeof seed);
	return rc;
}

int ledger_key_load(const char *path, struct ledger_key **out_key)
{
	uint8_t seed[33];
	struct stat st;
	ssize_t n;
	int fd, err, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* a seed others can read is a seed others may have copied */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return -EACCES;
	}
	n = read(fd, seed, sizeof seed);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	if (n != 32)
		return -EINVAL;
	rc = ledger_key_from_seed(seed, out_key);
	OPENSSL_cleanse(seed, sizeof seed);
	return rc;
}

int ledger_key_save(const struct ledger_key *key, const char *path)
{
	char *tmp;
	int fd, err = 0;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return err;
	}
	if (write(fd, key->seed, 32) != 32)
		err = errno ? -errno : -EIO;
	else if (fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	/* link() never replaces an existing key, unlike rename() */
	if (!err && link(tmp, path) < 0)
		err = -errno;
	unlink(tmp);
	free(tmp);
	return err;
}

void ledger_key_free(struct ledger_key *key)
{
	if (!key)
		return;
	OPENSSL_cleanse(key, sizeof *key);
	free(key);
}

void ledger_key_public(const struct ledger_key *key, uint8_t out_pub[LEDGER_KEY_LEN])
{
	memcpy(out_pub, key->pub, 32);
}

/* tag || msg into one buffer: EVP's Ed25519 is one-shot only. */
static uint8_t *concat(const char *tag, size_t tag_len, const uint8_t *msg, size_t len,
                       uint8_t *stackbuf, size_t stack_len)
{
	uint8_t *b = tag_len + len <= stack_len ? stackbuf : malloc(tag_len + len);

	if (!b)
		return NULL;
	memcpy(b, tag, tag_len);
	if (len)
		memcpy(b + tag_len, msg, len);
	return b;
}

int ledger_key_sign(const struct ledger_key *k, const char *tag, size_t tag_len, const uint8_t *msg,
                    size_t len, uint8_t out_sig[64])
{
	uint8_t stackbuf[4096], *b;
	int rc;

	b = concat(tag, tag_len, msg, len, stackbuf, sizeof stackbuf);
	if (!b)
		return -ENOMEM;
	rc = seal_sign(k->seed, k->pub, b, tag_len + len, out_sig);
	if (b != stackbuf)
		free(b);
	return rc;
}

struct ledger_pk_cache {
	/* ids of records whose signature a parallel pass checked already (open
	 * addressing, a power of two slots, all-zero = empty) */
	uint8_t (*pre)[32];
	size_t pre_slots;
};

static size_t pre_slot(const uint8_t id[32], size_t slots)
{
	size_t h;

	memcpy(&h, id, sizeof h); /* a SHA-256: uniform already */
	return h & (slots - 1);
}

int ledger_pk_cache_preverified_set(struct ledger_pk_cache *c, const uint8_t (*ids)[32], size_t n)
{
	static const uint8_t zero[32];
	size_t slots = 16;

	ledger_pk_cache_preverified_clear(c);
	while (slots < 2 * n)
		slots *= 2;
	if (!(c->pre = calloc(slots, 32)))
		return -ENOMEM;
	c->pre_slots = slots;
	for (size_t i = 0; i < n; i++) {
		size_t k = pre_slot(ids[i], slots);

		if (!memcmp(ids[i], zero, 32))
			continue;
		while (memcmp(c->pre[k], zero, 32) && memcmp(c->pre[k], ids[i], 32))
			k = (k + 1) & (slots - 1);
		memcpy(c->pre[k], ids[i], 32);
	}
	return 0;
}

bool ledger_pk_cache_preverified(const struct ledger_pk_cache *c, const uint8_t id[32])
{
	static const uint8_t zero[32];

	if (!c || !c->pre)
		return false;
	for (size_t k = pre_slot(id, c->pre_slots);; k = (k + 1) & (c->pre_slots - 1)) {
		if (!memcmp(c->pre[k], id, 32))
			return true;
		if (!memcmp(c->pre[k], zero, 32))
			return false;
	}
}

void ledger_pk_cache_preverified_clear(struct ledger_pk_cache *c)
{
	free(c->pre);
	c->pre = NULL;
	c->pre_slots = 0;
}

int ledger_pk_cache_new(struct ledger_pk_cache **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void ledger_pk_cache_free(struct ledger_pk_cache *c)
{
	if (!c)
		return;
	free(c->pre);
	free(c);
}

bool ledger_sig_verify(const uint8_t pub[32], const char *tag, size_t tag_len, const uint8_t *msg,
                       size_t len, const uint8_t sig[64])
{
	uint8_t stackbuf[4096], *b;
	bool ok;

	b = concat(tag, tag_len, msg, len, stackbuf, sizeof stackbuf);
	if (!b)
		return false;
	ok = seal_verify(pub, b, tag_len + len, sig);
	if (b != stackbuf)
		free(b);
	return ok;
}

bool ledger_dict_sig_verify(struct ben dict, const uint8_t pub[32], const char *tag, size_t tag_len)
{
	struct ben_iter it;
	struct ben k, v;
	uint8_t stackbuf[4096], *msg;
	const uint8_t *sig = NULL;
	size_t cut_at = 0, cut_len = 0, mlen;
	bool ok;

	if (!ben_iter_init(dict, &it))
		return false;
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v)) {
		const uint8_t *s;
		size_t sl;

		if (ben_str(k, &s, &sl) && sl == 3 && !memcmp(s, "sig", 3)) {
			if (!ben_str(v, &sig, &sl) || sl != 64)
				return false;
			cut_at = (size_t)(k.p - dict.p);
			cut_len = k.len + v.len;
			break;
		}
	}
	if (!sig)
		return false;
	mlen = dict.len - cut_len;
	msg = mlen <= sizeof stackbuf ? stackbuf : malloc(mlen);
	if (!msg)
		return false;
	memcpy(msg, dict.p, cut_at);
	memcpy(msg + cut_at, dict.p + cut_at + cut_len, dict.len - cut_at - cut_len);
	ok = ledger_sig_verify(pub, tag, tag_len, msg, mlen, sig);
	if (msg != stackbuf)
		free(msg);
	return ok;
}
