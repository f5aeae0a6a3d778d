/* The RFC 6962 Merkle tree (leaf prefix 0x00, node prefix 0x01, no padding) with the
 * inclusion and consistency proofs of RFC 9162 §2.1.3 and §2.1.4. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32])
{
	uint8_t stackbuf[256], *b = len + 1 <= sizeof stackbuf ? stackbuf : malloc(len + 1);

	if (!b) {
		/* only reachable for huge leaves under memory pressure; a zero hash can
		 * never verify, which is the safe failure */
		memset(out, 0, 32);
		return;
	}
	b[0] = 0x00;
	if (len)
		memcpy(b + 1, data, len);
	ledger_sha256(b, len + 1, out);
	if (b != stackbuf)
		free(b);
}

void merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t b[65];

	b[0] = 0x01;
	memcpy(b + 1, l, 32);
	memcpy(b + 33, r, 32);
	ledger_sha256(b, sizeof b, out);
}

/* Largest power of two strictly below n (n >= 2). */
static size_t split_point(size_t n)
{
	size_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

int merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	uint8_t(*w)[32];

	if (n == 0) {
		ledger_sha256("", 0, out);
		return 0;
	}
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return 0;
	}
	w = malloc(n * 32);
	if (!w)
		return -ENOMEM;
	memcpy(w, leaves, n * 32);
	/* Bottom-up pairing where a lone last node moves up unhashed builds exactly
	 * the left-balanced tree RFC 6962 defines recursively. */
	while (n > 1) {
		size_t j = 0;

		for (size_t i = 0; i + 1 < n; i += 2)
			merkle_node_hash(w[i], w[i + 1], w[j++]);
		if (n & 1)
			memmove(w[j++], w[n - 1], 32);
		n = j;
	}
	memcpy(out, w[0], 32);
	free(w);
	return 0;
}

static int path_rec(const uint8_t (*d)[32], size_t n, size_t m, uint8_t (*out)[32], size_t *out_n)
{
	size_t k;
	int rc;

	if (n <= 1)
		return 0;
	k = split_point(n);
	if (m < k) {
		rc = path_rec(d, k, m, out, out_n);
		if (rc == 0)
			rc = merkle_root(d + k, n - k, out[(*out_n)++]);
	} else {
		rc = path_rec(d + k, n - k, m - k, out, out_n);
		if (rc == 0)
			rc = merkle_root(d, k, out[(*out_n)++]);
	}
	return rc;
}

int merkle_inclusion_proof(const uint8_t (*leaves)[32], size_t n, size_t i, uint8_t (*out)[32],
                           size_t *out_n)
{
	size_t cnt = 0;
	int rc;

	if (i >= n)
		return -EINVAL;
	rc = path_rec(leaves, n, i, out, &cnt);
	if (rc == 0)
		*out_n = cnt;
	return rc;
}

bool merkle_inclusion_verify(const uint8_t leaf[32], uint64_t i, uint64_t n,
                             const uint8_t (*proof)[32], size_t proof_n, const uint8_t root[32])
{
	uint64_t fn = i, sn = n - 1;
	uint8_t r[32];

	if (i >= n)
		return false;
	memcpy(r, leaf, 32);
	for (size_t k = 0; k < proof_n; k++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[k], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(r, proof[k], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(r, root, 32);
}

static int subproof(const uint8_t (*d)[32], size_t m, size_t n, bool whole, uint8_t (*out)[32],
                    size_t *out_n)
{
	size_t k;
	int rc;

	if (m == n) {
		if (whole)
			return 0;
		return merkle_root(d, n, out[(*out_n)++]);
	}
	k = split_point(n);
	if (m <= k) {
		rc = subproof(d, m, k, whole, out, out_n);
		if (rc == 0)
			rc = merkle_root(d + k, n - k, out[(*out_n)++]);
	} else {
		rc = subproof(d + k, m - k, n - k, false, out, out_n);
		if (rc == 0)
			rc = merkle_root(d, k, out[(*out_n)++]);
	}
	return rc;
}

int merkle_consistency_proof(const uint8_t (*leaves)[32], size_t m, size_t n, uint8_t (*out)[32],
                             size_t *out_n)
{
	size_t cnt = 0;
	int rc = 0;

	if (m > n)
		return -EINVAL;
	if (m > 0 && m < n)
		rc = subproof(leaves, m, n, true, out, &cnt);
	if (rc == 0)
		*out_n = cnt;
	return rc;
}

bool merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t root1[32],
                               const uint8_t root2[32], const uint8_t (*proof)[32], size_t proof_n)
{
	uint8_t fr[32], sr[32];
	const uint8_t *first;
	uint64_t fn, sn;
	size_t k = 0;

	if (m > n)
		return false;
	if (m == n)
		return proof_n == 0 && !memcmp(root1, root2, 32);
	if (m == 0)
		return proof_n == 0; /* the empty tree is a prefix of every tree */
	if (proof_n == 0)
		return false;
	/* a power-of-two first tree is a whole subtree: its root is the implicit
	 * first element of the proof */
	if ((m & (m - 1)) == 0) {
		first = root1;
	} else {
		first = proof[0];
		k = 1;
	}
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, first, 32);
	memcpy(sr, first, 32);
	for (; k < proof_n; k++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[k], fr, fr);
			merkle_node_hash(proof[k], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(sr, proof[k], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(fr, root1, 32) && !memcmp(sr, root2, 32);
}

int merkle_root_of_ids(const uint8_t (*ids)[32], size_t n, uint8_t out[32])
{
	uint8_t(*leaves)[32] = malloc((n ? n : 1) * 32);
	int rc;

	if (!leaves)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		merkle_leaf_hash(ids[i], 32, leaves[i]);
	rc = merkle_root((const uint8_t(*)[32])leaves, n, out);
	free(leaves);
	return rc;
}
