/* Canonical bencode, Ed25519 keys, RFC 6962 Merkle proofs, records and paths. */
#include "ledger_testutil.h"

#include <fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct ben_limits lim = { 1 << 20, 16, 100000 };

static int chk(const char *s)
{
	return ben_check((const uint8_t *)s, strlen(s), &lim);
}

START_TEST(test_bencode_accepts_canonical)
{
	static const char *const ok[] = {
		"i0e",
		"i-1e",
		"i42e",
		"i9223372036854775807e",
		"i-9223372036854775808e",
		"0:",
		"3:abc",
		"le",
		"de",
		"li1ei2ee",
		"d1:ai1e1:bi2ee",
		"d1:a0:2:aai1ee",
		"d3:bard1:xleee",
		"l0:0:e",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		ck_assert_msg(chk(ok[i]) == 0, "rejected %s", ok[i]);
}
END_TEST

START_TEST(test_bencode_rejects_noncanonical)
{
	static const char *const bad[] = {
		"",
		"i-0e",
		"i01e",
		"i-01e",
		"ie",
		"i-e",
		"i1",
		"i9223372036854775808e",
		"i-9223372036854775809e",
		"01:a",
		"1:",
		"3:ab",
		"-1:a",
		"l",
		"li1e",
		"d",
		"d1:bi1e1:ai2ee", /* unsorted */
		"d1:ai1e1:ai2ee", /* duplicate */
		"di1ei2ee",       /* non-string key */
		"d1:ae",          /* key without value */
		"i1ei2e",         /* trailing value */
		"3:abcx",         /* trailing bytes */
		"x",
		"i+1e",
		"i 1e",
		"d2:ab1:x1:ai1ee",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(chk(bad[i]) == -EBADMSG, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_bencode_limits)
{
	struct ben_limits small = { 8, 2, 3 };
	char deep[200];

	ck_assert_int_eq(ben_check((const uint8_t *)"9:aaaaaaaaa", 11, &small), -EMSGSIZE);
	ck_assert_int_eq(ben_check((const uint8_t *)"lllleeee", 8, &small), -EBADMSG);
	ck_assert_int_eq(ben_check((const uint8_t *)"li1ei2ee", 8, &small), 0);
	ck_assert_int_eq(
	    ben_check((const uint8_t *)"li1ei2ei3ee", 11, &(struct ben_limits){ 64, 2, 3 }),
	    -EBADMSG);
	/* nesting far beyond the limit is refused, not a stack overflow */
	memset(deep, 'l', 100);
	memset(deep + 100, 'e', 100);
	ck_assert_int_eq(ben_check((const uint8_t *)deep, 200, &lim), -EBADMSG);
	/* a string length beyond the buffer */
	ck_assert_int_eq(chk("99999999999999999999:a"), -EBADMSG);
}
END_TEST

START_TEST(test_bencode_encoder_and_accessors)
{
	struct ben_buf b;
	struct ben v, d;
	struct ben_iter it;
	const uint8_t *s;
	size_t n, count = 0;
	int64_t i;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "a");
	ben_put_int(&b, -5);
	ben_put_key(&b, "list");
	ben_list_begin(&b);
	ben_put_cstr(&b, "x");
	ben_put_int(&b, 0);
	ben_end(&b);
	ben_put_key(&b, "z");
	ben_put_str(&b, "\0\1", 2);
	ben_end(&b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_int_eq(ben_check(b.p, b.len, &lim), 0);
	ck_assert_mem_eq(b.p, "d1:ai-5e4:listl1:xi0ee1:z2:\0\1e", b.len);
	d = (struct ben){ b.p, b.len };
	ck_assert(ben_get_int(d, "a", &i) && i == -5);
	ck_assert(ben_get_bytes(d, "z", &s, &n) && n == 2 && s[1] == 1);
	ck_assert(!ben_dict_get(d, "missing", &v));
	ck_assert(ben_dict_get(d, "list", &v) && ben_type(v) == 'l');
	ben_iter_init(v, &it);
	while (ben_iter_next(&it, &v))
		count++;
	ck_assert_int_eq(count, 2);
	ben_buf_release(&b);

	/* the encoder refuses to write an unsorted or duplicate key */
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "b");
	ben_put_int(&b, 1);
	ben_put_key(&b, "a");
	ck_assert_int_eq(b.err, -EINVAL);
	ben_buf_release(&b);
	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "ab");
	ben_put_int(&b, 1);
	ben_put_key(&b, "ab");
	ck_assert_int_eq(b.err, -EINVAL);
	ben_buf_release(&b);
}
END_TEST

/* ---- keys ---- */

START_TEST(test_keys_rfc8032_vector)
{
	/* RFC 8032 §7.1 TEST 1: the empty message */
	uint8_t seed[32], pub[32], want_pub[32], sig[64];
	struct ledger_key *k;

	ck_assert_int_eq(
	    ledger_unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed,
	                 32),
	    0);
	ck_assert_int_eq(
	    ledger_unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	                 want_pub, 32),
	    0);
	ck_assert_int_eq(
	    ledger_unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	                 "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	                 sig, 64),
	    0);
	ck_assert_int_eq(ledger_key_from_seed(seed, &k), 0);
	ledger_key_public(k, pub);
	ck_assert_mem_eq(pub, want_pub, 32);
	ck_assert(ledger_sig_verify(pub, "", 0, NULL, 0, sig));
	sig[0] ^= 1;
	ck_assert(!ledger_sig_verify(pub, "", 0, NULL, 0, sig));
	ledger_key_free(k);
}
END_TEST

/* Attack: sign as a public key of small order. With A = the identity point (01 00..00),
 * R = the identity and S = 0, the check [S]B = R + [h]A holds for every message h, so
 * anyone can "sign" anything as that key: OpenSSL 3.0's EVP verify took it (a record
 * whose author is that key could be written by anyone). Every small-order point (the
 * identity, the point of order 2, two of order 4, four of order 8, RFC 8032 encodings)
 * as the key, and each as R with S = 0, must be refused; so must S >= L. */
START_TEST(test_keys_small_order_forgery_refused)
{
	static const char *small[] = {
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	};
	static const uint8_t msg[] = "claim /docs/a.pdf";
	uint8_t pub[32], sig[64], real[32];
	struct ledger_key *k = tu_key(1);

	for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
		ck_assert_int_eq(ledger_unhex(small[i], pub, 32), 0);
		for (size_t j = 0; j < sizeof small / sizeof *small; j++) {
			memset(sig, 0, sizeof sig);
			ck_assert_int_eq(ledger_unhex(small[j], sig, 32), 0);
			ck_assert_msg(!ledger_sig_verify(pub, "t", 2, msg, sizeof msg, sig),
			              "small-order key %zu, R %zu: forged signature accepted", i,
			              j);
		}
	}
	/* S >= L: an honest signature with L added to S is the same point, refused */
	ledger_key_public(k, real);
	ck_assert_int_eq(ledger_key_sign(k, "t", 2, msg, sizeof msg, sig), 0);
	ck_assert(ledger_sig_verify(real, "t", 2, msg, sizeof msg, sig));
	{
		static const uint8_t L[32] = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
			                       0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
			                       0,    0,    0,    0,    0,    0,    0,    0,
			                       0,    0,    0,    0,    0,    0,    0,    0x10 };
		unsigned carry = 0;

		for (int b = 0; b < 32; b++) {
			unsigned v = sig[32 + b] + L[b] + carry;

			sig[32 + b] = (uint8_t)v;
			carry = v >> 8;
		}
		ck_assert(!carry); /* S < L < 2^253: S + L fits in 32 bytes */
		ck_assert_msg(!ledger_sig_verify(real, "t", 2, msg, sizeof msg, sig),
		              "S + L accepted: signatures are malleable");
	}
	ledger_key_free(k);
}
END_TEST

static struct rec sample(enum ledger_rec_type t);

/* Attack, on a record: a claim whose author is the identity point and whose signature
 * is the universal forgery above decodes as nothing (rec_decode refuses it). */
START_TEST(test_record_small_order_author_refused)
{
	struct ledger_key *k = tu_key(1);
	struct rec r = sample(LEDGER_REC_CLAIM), d;
	uint8_t *raw, *at, id_pub[32] = { 1 };
	size_t len;

	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	ck_assert_int_eq(rec_decode(NULL, raw, len, 4096, &d), 0);
	at = memmem(raw, len, k->pub, 32);
	ck_assert_ptr_nonnull(at);
	memcpy(at, id_pub, 32);
	at = memmem(raw, len, "3:sig64:", 8);
	ck_assert_ptr_nonnull(at);
	memset(at + 8, 0, 64);
	at[8] = 1; /* R = the identity, S = 0 */
	ck_assert_int_ne(rec_decode(NULL, raw, len, 4096, &d), 0);
	free(raw);
	ledger_key_free(k);
}
END_TEST

START_TEST(test_keys_save_load_sign)
{
	struct ledger_key *k, *k2;
	uint8_t p1[32], p2[32], sig[64];
	char *path = tu_path("a.key"), hex[LEDGER_HEX_LEN];
	struct stat st;

	ck_assert_int_eq(ledger_key_generate(&k), 0);
	ck_assert_int_eq(ledger_key_save(k, path), 0);
	ck_assert_int_eq(ledger_key_save(k, path), -EEXIST);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(ledger_key_load(path, &k2), 0);
	ledger_key_public(k, p1);
	ledger_key_public(k2, p2);
	ck_assert_mem_eq(p1, p2, 32);
	ck_assert_int_eq(ledger_key_sign(k2, "t", 2, (const uint8_t *)"msg", 3, sig), 0);
	ck_assert(ledger_sig_verify(p1, "t", 2, (const uint8_t *)"msg", 3, sig));
	ck_assert(!ledger_sig_verify(p1, "u", 2, (const uint8_t *)"msg", 3, sig));
	/* a key file others can read is refused */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(ledger_key_load(path, &k2 /* untouched on failure */), -EACCES);
	ledger_hex(p1, 32, hex);
	ck_assert_int_eq(strlen(hex), 64);
	ck_assert_int_eq(ledger_unhex(hex, p2, 32), 0);
	ck_assert_mem_eq(p1, p2, 32);
	ck_assert_int_eq(ledger_unhex("zz", p2, 1), -EINVAL);
	ledger_key_free(k);
	ledger_key_free(k2);
	ledger_key_free(NULL);
	free(path);
	tu_cleanup();
}
END_TEST

/* ---- Merkle ---- */

static const char *const ct_leaves[] = { "",
	                                 "00",
	                                 "10",
	                                 "2021",
	                                 "3031",
	                                 "40414243",
	                                 "5051525354555657",
	                                 "606162636465666768696a6b6c6d6e6f" };
static const char *const ct_roots[] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void ct_leaf_hashes(uint8_t out[8][32])
{
	for (size_t i = 0; i < 8; i++) {
		uint8_t data[16];
		size_t n = strlen(ct_leaves[i]) / 2;

		ck_assert_int_eq(ledger_unhex(ct_leaves[i], data, n), 0);
		merkle_leaf_hash(data, n, out[i]);
	}
}

struct ct_proof {
	size_t a, b; /* leaf index (0-based) or first size; tree size */
	const char *hashes[4];
};

/* Published in certificate-transparency and transparency-dev/merkle test data. */
static const struct ct_proof ct_inclusion[] = {
	{ 0,
	  8,
	  { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5,
	  8,
	  { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1,
	  5,
	  { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};
static const struct ct_proof ct_consistency[] = {
	{ 1,
	  8,
	  { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6,
	  8,
	  { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2,
	  5,
	  { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static size_t want_proof(const struct ct_proof *p, uint8_t out[4][32])
{
	size_t n = 0;

	while (n < 4 && p->hashes[n]) {
		ck_assert_int_eq(ledger_unhex(p->hashes[n], out[n], 32), 0);
		n++;
	}
	return n;
}

START_TEST(test_merkle_ct_vectors)
{
	uint8_t leaves[8][32], root[32], want[32], proof[64][32], exp[4][32], roots[9][32];
	size_t n;

	ct_leaf_hashes(leaves);
	for (size_t size = 0; size <= 8; size++) {
		ck_assert_int_eq(merkle_root((const uint8_t(*)[32])leaves, size, root), 0);
		ck_assert_int_eq(ledger_unhex(ct_roots[size], want, 32), 0);
		ck_assert_msg(!memcmp(root, want, 32), "root of %zu leaves", size);
		memcpy(roots[size], root, 32);
	}
	for (size_t i = 0; i < sizeof ct_inclusion / sizeof ct_inclusion[0]; i++) {
		const struct ct_proof *p = &ct_inclusion[i];
		size_t en = want_proof(p, exp);

		ck_assert_int_eq(
		    merkle_inclusion_proof((const uint8_t(*)[32])leaves, p->b, p->a, proof, &n), 0);
		ck_assert_uint_eq(n, en);
		ck_assert_mem_eq(proof, exp, n * 32);
		ck_assert(merkle_inclusion_verify(leaves[p->a], p->a, p->b,
		                                  (const uint8_t(*)[32])exp, en, roots[p->b]));
	}
	for (size_t i = 0; i < sizeof ct_consistency / sizeof ct_consistency[0]; i++) {
		const struct ct_proof *p = &ct_consistency[i];
		size_t en = want_proof(p, exp);

		ck_assert_int_eq(
		    merkle_consistency_proof((const uint8_t(*)[32])leaves, p->a, p->b, proof, &n),
		    0);
		ck_assert_uint_eq(n, en);
		ck_assert_mem_eq(proof, exp, n * 32);
		ck_assert(merkle_consistency_verify(p->a, p->b, roots[p->a], roots[p->b],
		                                    (const uint8_t(*)[32])exp, en));
	}
}
END_TEST

/* The definition of RFC 6962 §2.1, recursively, as the brute-force reference. */
static void ref_root(const uint8_t (*d)[32], size_t n, uint8_t out[32])
{
	uint8_t l[32], r[32];
	size_t k = 1;

	if (n == 0) {
		ledger_sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], 32);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	ref_root(d, k, l);
	ref_root(d + k, n - k, r);
	merkle_node_hash(l, r, out);
}

START_TEST(test_merkle_brute_force)
{
	enum { N = 70 };
	uint8_t leaves[N][32], roots[N + 1][32], ref[32], proof[64][32];
	size_t pn;

	for (size_t i = 0; i < N; i++) {
		uint8_t d[2] = { (uint8_t)i, (uint8_t)(i * 7) };

		merkle_leaf_hash(d, 2, leaves[i]);
	}
	for (size_t n = 0; n <= N; n++) {
		ck_assert_int_eq(merkle_root((const uint8_t(*)[32])leaves, n, roots[n]), 0);
		ref_root((const uint8_t(*)[32])leaves, n, ref);
		ck_assert_msg(!memcmp(ref, roots[n], 32), "root differs at %zu", n);
	}
	for (size_t n = 1; n <= N; n++) {
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(
			    merkle_inclusion_proof((const uint8_t(*)[32])leaves, n, i, proof, &pn),
			    0);
			ck_assert(merkle_inclusion_verify(
			    leaves[i], i, n, (const uint8_t(*)[32])proof, pn, roots[n]));
			/* wrong index, wrong size, wrong root, flipped or shortened proof */
			if (n > 1)
				ck_assert(!merkle_inclusion_verify(leaves[i], (i + 1) % n, n,
				                                   (const uint8_t(*)[32])proof, pn,
				                                   roots[n]));
			ck_assert(!merkle_inclusion_verify(leaves[i], i, n,
			                                   (const uint8_t(*)[32])proof, pn,
			                                   roots[n - 1]) ||
			          n == 1);
			if (pn) {
				proof[pn - 1][3] ^= 0x10;
				ck_assert(!merkle_inclusion_verify(
				    leaves[i], i, n, (const uint8_t(*)[32])proof, pn, roots[n]));
				proof[pn - 1][3] ^= 0x10;
				ck_assert(!merkle_inclusion_verify(leaves[i], i, n,
				                                   (const uint8_t(*)[32])proof,
				                                   pn - 1, roots[n]));
			}
		}
		for (size_t m = 0; m <= n; m++) {
			ck_assert_int_eq(merkle_consistency_proof((const uint8_t(*)[32])leaves, m,
			                                          n, proof, &pn),
			                 0);
			ck_assert_msg(merkle_consistency_verify(m, n, roots[m], roots[n],
			                                        (const uint8_t(*)[32])proof, pn),
			              "consistency %zu -> %zu", m, n);
			if (m > 0 && m < n) {
				ck_assert(!merkle_consistency_verify(
				    m, n, roots[m], roots[m], (const uint8_t(*)[32])proof, pn));
				proof[0][0] ^= 0x10;
				ck_assert(!merkle_consistency_verify(
				    m, n, roots[m], roots[n], (const uint8_t(*)[32])proof, pn));
				proof[0][0] ^= 0x10;
				ck_assert(!merkle_consistency_verify(
				    m, n, roots[m], roots[n], (const uint8_t(*)[32])proof, pn - 1));
			}
		}
	}
	ck_assert(!merkle_inclusion_verify(leaves[0], 0, 0, NULL, 0, roots[0]));
	ck_assert(!merkle_consistency_verify(5, 4, roots[5], roots[4], NULL, 0));
}
END_TEST

/* ---- paths and records ---- */

START_TEST(test_path_normalize)
{
	char out[LEDGER_PATH_MAX + 1], longname[300], longpath[LEDGER_PATH_MAX + 10];
	static const char *const ok[][2] = {
		{ "/a/b", "/a/b" },   { "a/b/", "/a/b" }, { "//a///b", "/a/b" },
		{ "/", "/" },         { "", "/" },        { "/caf\xc3\xa9", "/caf\xc3\xa9" },
		{ "/a/.b", "/a/.b" }, { "/..a", "/..a" },
	};
	static const char *const bad[] = {
		"/a/./b",        "/a/../b",           "..",        "/.", "/\xff", "/\xc0\xaf",
		"/\xed\xa0\x80", "/\xf4\x90\x80\x80", "/\xe2\x82",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_int_eq(ledger_path_normalize(ok[i][0], out), 0);
		ck_assert_str_eq(out, ok[i][1]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(ledger_path_normalize(bad[i], out) == -EINVAL, "accepted %s", bad[i]);
	memset(longname, 'x', 256);
	longname[256] = '\0';
	ck_assert_int_eq(ledger_path_normalize(longname, out), -EINVAL);
	longname[255] = '\0';
	ck_assert_int_eq(ledger_path_normalize(longname, out), 0);
	for (size_t i = 0; i < sizeof longpath - 1; i++)
		longpath[i] = i % 100 == 0 ? '/' : 'y';
	longpath[sizeof longpath - 1] = '\0';
	ck_assert_int_eq(ledger_path_normalize(longpath, out), -ENAMETOOLONG);
	ck_assert(ledger_path_is_normal("/a/b"));
	ck_assert(!ledger_path_is_normal("/a/b/"));
	ck_assert(!ledger_path_is_normal("a"));
	ck_assert_str_eq(ledger_path_split("/a/b", out), "b");
	ck_assert_str_eq(out, "/a");
	ck_assert_str_eq(ledger_path_split("/a", out), "a");
	ck_assert_str_eq(out, "/");
}
END_TEST

static struct rec sample(enum ledger_rec_type t)
{
	struct rec r;

	memset(&r, 0, sizeof r);
	r.type = t;
	memset(r.drive, 7, 32);
	r.time = TU_T0;
	r.nonce = 99;
	strcpy(r.path, "/docs/a.pdf");
	strcpy(r.dest, "/docs/b.pdf");
	memset(r.prev, 3, 32);
	memset(r.to, 4, 32);
	memset(r.member, 5, 32);
	tu_content(&r.content, 17);
	r.content.has_ih1 = t == LEDGER_REC_UPDATE;
	memset(r.content.ih1, 9, 20);
	r.producer = true;
	return r;
}

START_TEST(test_record_roundtrip_all_types)
{
	struct ledger_key *k = tu_key(1);

	for (int t = LEDGER_REC_CLAIM; t <= LEDGER_REC_MEMBER; t++) {
		struct rec r = sample((enum ledger_rec_type)t), d;
		uint8_t *raw, id[32];
		size_t len;

		ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
		ck_assert_int_eq(ben_check(raw, len, &lim), 0);
		ledger_sha256(raw, len, id);
		ck_assert_mem_eq(id, r.id, 32);
		ck_assert_msg(rec_decode(NULL, raw, len, 4096, &d) == 0, "type %d: %.*s", t,
		              (int)len, raw);
		ck_assert_int_eq(d.type, t);
		ck_assert_mem_eq(d.id, r.id, 32);
		ck_assert_mem_eq(d.author, k->pub, 32);
		if (t != LEDGER_REC_MEMBER)
			ck_assert_str_eq(d.path, r.path);
		if (t == LEDGER_REC_CLAIM || t == LEDGER_REC_UPDATE) {
			ck_assert_mem_eq(d.content.root, r.content.root, 32);
			ck_assert_mem_eq(d.content.ih2, r.content.ih2, 32);
			ck_assert_uint_eq(d.content.length, r.content.length);
			ck_assert_uint_eq(d.content.piece_length, r.content.piece_length);
			ck_assert_int_eq(d.content.mtime_ns, r.content.mtime_ns);
			ck_assert_int_eq(d.content.has_ih1, r.content.has_ih1);
			if (d.content.has_ih1)
				ck_assert_mem_eq(d.content.ih1, r.content.ih1, 20);
		}
		if (t == LEDGER_REC_MOVE)
			ck_assert_str_eq(d.dest, "/docs/b.pdf");
		if (t == LEDGER_REC_MEMBER)
			ck_assert(d.producer && !d.remove);
		/* every single flipped byte is caught: encoding, hash or signature */
		for (size_t i = 0; i < len; i += 7) {
			raw[i] ^= 0x01;
			ck_assert_msg(rec_decode(NULL, raw, len, 4096, &d) != 0, "flip at %zu", i);
			raw[i] ^= 0x01;
		}
		ck_assert_int_eq(rec_decode(NULL, raw, len, len - 1, &d), -EMSGSIZE);
		free(raw);
	}
	ledger_key_free(k);
}
END_TEST

/* Sign a record's bytes again in place, as its author would after changing them: the
 * signature covers the dict without its "sig" entry (ledger_dict_sig_verify). */
static void resign(const struct ledger_key *k, uint8_t *raw, size_t len)
{
	uint8_t *at = memmem(raw, len, "3:sig64:", 8), *msg = malloc(len);
	size_t cut = 8 + 64, off;

	ck_assert_ptr_nonnull(at);
	off = (size_t)(at - raw);
	memcpy(msg, raw, off);
	memcpy(msg + off, raw + off + cut, len - off - cut);
	ck_assert_int_eq(ledger_key_sign(k, LEDGER_REC_TAG, LEDGER_TAG_LEN(LEDGER_REC_TAG), msg,
	                                 len - cut, at + 8),
	                 0);
	free(msg);
}

START_TEST(test_record_rejects_bad_fields)
{
	struct ledger_key *k = tu_key(1);
	struct rec r = sample(LEDGER_REC_CLAIM), d;
	uint8_t *raw;
	size_t len;
	char *copy;

	/* a path that is not normal cannot be signed into a valid record */
	strcpy(r.path, "/a/../b");
	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	ck_assert_int_eq(rec_decode(NULL, raw, len, 4096, &d), -EBADMSG);
	free(raw);
	r = sample(LEDGER_REC_CLAIM);
	r.content.piece_length = 1000; /* not a power of two >= 16 KiB */
	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	ck_assert_int_eq(rec_decode(NULL, raw, len, 4096, &d), -EBADMSG);
	free(raw);
	/* an extra, unknown field, signed by the author like the rest: only the check of
	 * the field list can refuse it (the same re-signing without it decodes) */
	r = sample(LEDGER_REC_REVOKE);
	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	for (int extra = 0; extra < 2; extra++) {
		copy = malloc(len + 16);
		memcpy(copy, raw, len - 1);
		memcpy(copy + len - 1, extra ? "1:zi1ee" : "e", extra ? 7 : 1);
		resign(k, (uint8_t *)copy, len + (extra ? 6 : 0));
		ck_assert_int_eq(rec_decode(NULL, (uint8_t *)copy, len + (extra ? 6 : 0), 4096, &d),
		                 extra ? -EBADMSG : 0);
		free(copy);
	}
	free(raw);
	ledger_key_free(k);
}
END_TEST

/* A file within a torrent of several files: the optional fidx/foff pair. Records
 * without it keep their old bytes; half of the pair, or a negative value, is refused. */
START_TEST(test_record_file_in_torrent)
{
	struct ledger_key *k = tu_key(1);
	struct rec r = sample(LEDGER_REC_CLAIM), d;
	uint8_t *raw;
	size_t len;
	char *copy, *at;

	/* without the pair: no new key in the bytes, decoded as a one-file torrent */
	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	ck_assert_ptr_null(memmem(raw, len, "fidx", 4));
	ck_assert_int_eq(rec_decode(NULL, raw, len, 4096, &d), 0);
	ck_assert(!d.content.has_file);
	free(raw);
	/* with it: both values come back, and the bytes stay canonical */
	r.content.has_file = true;
	r.content.file_index = 2;
	r.content.file_offset = 123456789012ULL;
	ck_assert_int_eq(rec_sign(&r, k, &raw, &len), 0);
	ck_assert_int_eq(ben_check(raw, len, &lim), 0);
	ck_assert_int_eq(rec_decode(NULL, raw, len, 4096, &d), 0);
	ck_assert(d.content.has_file);
	ck_assert_uint_eq(d.content.file_index, 2);
	ck_assert_uint_eq(d.content.file_offset, 123456789012ULL);
	/* fidx without foff: cut "4:foffi123456789012e" out */
	copy = malloc(len);
	at = memmem(raw, len, "4:foffi", 7);
	ck_assert_ptr_nonnull(at);
	size_t cut = (size_t)(strchr(at + 7, 'e') + 1 - at), pre = (size_t)(at - (char *)raw);
	memcpy(copy, raw, pre);
	memcpy(copy + pre, at + cut, len - pre - cut);
	ck_assert_int_eq(rec_parse((uint8_t *)copy, len - cut, 4096, &d), -EBADMSG);
	/* a negative index */
	at = memmem(raw, len, "4:fidxi2e", 9);
	ck_assert_ptr_nonnull(at);
	pre = (size_t)(at - (char *)raw);
	free(copy);
	copy = malloc(len + 1);
	memcpy(copy, raw, pre);
	memcpy(copy + pre, "4:fidxi-2e", 10);
	memcpy(copy + pre + 10, at + 9, len - pre - 9);
	ck_assert_int_eq(rec_parse((uint8_t *)copy, len + 1, 4096, &d), -EBADMSG);
	free(copy);
	free(raw);
	ledger_key_free(k);
}
END_TEST

START_TEST(test_block_header_and_params)
{
	struct ledger_key *k = tu_key(2);
	struct ledger_params p, q;
	uint8_t prods[2][32], *praw, *hraw;
	size_t pl, hl;
	char *tr[] = { "http://127.0.0.1:6969/announce" };
	struct blk_hdr h, d;

	ledger_params_defaults(&p);
	p.name = "team";
	memcpy(p.admin, k->pub, 32);
	memset(prods[0], 1, 32);
	memset(prods[1], 2, 32);
	p.producers = prods;
	p.n_producers = 2;
	p.trackers = tr;
	p.n_trackers = 1;
	ck_assert_int_eq(params_encode(&p, &praw, &pl), 0);
	ck_assert_int_eq(params_decode((struct ben){ praw, pl }, &q), 0);
	ck_assert_str_eq(q.name, "team");
	ck_assert_uint_eq(q.n_producers, 2);
	ck_assert_mem_eq(q.producers[1], prods[1], 32);
	ck_assert_str_eq(q.trackers[0], tr[0]);
	ck_assert_uint_eq(q.max_block_records, p.max_block_records);
	ledger_params_release(&q);

	memset(&h, 0, sizeof h);
	h.version = 1;
	h.time = TU_T0;
	ck_assert_int_eq(blk_hdr_sign(&h, praw, pl, k, &hraw, &hl), 0);
	ck_assert_int_eq(blk_hdr_decode(hraw, hl, &d, true), 0);
	ck_assert_mem_eq(d.id, h.id, 32);
	ck_assert_uint_eq(d.params.len, pl);
	hraw[hl / 2] ^= 1;
	ck_assert_int_eq(blk_hdr_decode(hraw, hl, &d, true), -EBADMSG);
	free(hraw);
	free(praw);
	ledger_key_free(k);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ledger_codec");
	TCase *tc = tcase_create("codec");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, fixture_test_setup, NULL);
	tcase_add_test(tc, test_bencode_accepts_canonical);
	tcase_add_test(tc, test_bencode_rejects_noncanonical);
	tcase_add_test(tc, test_bencode_limits);
	tcase_add_test(tc, test_bencode_encoder_and_accessors);
	tcase_add_test(tc, test_keys_rfc8032_vector);
	tcase_add_test(tc, test_keys_save_load_sign);
	tcase_add_test(tc, test_keys_small_order_forgery_refused);
	tcase_add_test(tc, test_record_small_order_author_refused);
	tcase_add_test(tc, test_merkle_ct_vectors);
	tcase_add_test(tc, test_merkle_brute_force);
	tcase_add_test(tc, test_path_normalize);
	tcase_add_test(tc, test_record_roundtrip_all_types);
	tcase_add_test(tc, test_record_rejects_bad_fields);
	tcase_add_test(tc, test_record_file_in_torrent);
	tcase_add_test(tc, test_block_header_and_params);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run_suite(suite());
}
