/* The members-only channel of a private drive (DESIGN §9): a mutual handshake and the
 * sealed messages after it.
 *
 *   hello  (plain)  d 1:e 32:<ephemeral X25519 key> 1:m 5:hello 1:v i1e e
 *   auth   (sealed) d [1:i 32:<invite key> 2:is 64:<invite sig>] 1:k 32:<member key>
 *                     1:m 4:auth 1:s 64:<sig> e
 *
 * Each side sends hello at once. The side with the lower ephemeral key is the client of
 * libsodium's crypto_kx, which gives one key per direction. The transcript hash is
 * th = SHA-256("swarmfs-hs-v1\0" || drive id || client ephemeral || server ephemeral),
 * and each side signs "swarmfs-hs-auth-v1\0" || th || its role ('c' or 's') with its
 * member key; a joiner also signs, with the invite key, the same and its member key.
 * Everything after hello is sealed with ChaCha20-Poly1305 under the direction's key, the
 * drive id as associated data and a nonce that is the count of messages sent that way:
 * a replayed, reordered, dropped or altered message fails to open. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HS_TAG      "swarmfs-hs-v1"
#define HS_AUTH_TAG "swarmfs-hs-auth-v1"
#define HS_INV_TAG  "swarmfs-hs-invite-v1"
#define SEALED_MARK 0x01 /* first byte of a sealed message; plain ones are dicts ('d') */

int ledger_hs_new(const uint8_t drive[LEDGER_ID_LEN], const struct ledger_key *key,
                  const uint8_t *invite_secret, struct ledger_hs **out)
{
	struct ledger_hs *h = calloc(1, sizeof *h);
	int rc;

	if (!h)
		return -ENOMEM;
	memcpy(h->drive, drive, 32);
	h->key = key;
	rc = invite_secret ? ledger_invite_key(invite_secret, &h->invite) : 0;
	if (!rc)
		rc = seal_kx_keypair(h->epk, h->esk);
	if (rc) {
		ledger_hs_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void ledger_hs_free(struct ledger_hs *h)
{
	if (!h)
		return;
	ledger_key_free(h->invite);
	seal_wipe(h, sizeof *h);
	free(h);
}

bool ledger_hs_established(const struct ledger_hs *h)
{
	return h->established;
}

const struct ledger_hs_peer *ledger_hs_peer(const struct ledger_hs *h)
{
	return h->established ? &h->peer : NULL;
}

bool ledger_hs_is_hello(const uint8_t *buf, size_t len)
{
	return len > 0 && buf[0] == 'd';
}

static int take(struct ben_buf *b, uint8_t **out, size_t *out_len)
{
	if (b->err) {
		int rc = b->err;

		ben_buf_release(b);
		return rc;
	}
	*out = b->p;
	*out_len = b->len;
	return 0;
}

int ledger_hs_hello(struct ledger_hs *h, uint8_t **out, size_t *out_len)
{
	struct ben_buf b;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	ben_put_key(&b, "e");
	ben_put_str(&b, h->epk, sizeof h->epk);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "hello");
	ben_put_key(&b, "v");
	ben_put_int(&b, 1);
	ben_end(&b);
	return take(&b, out, out_len);
}

/* What a side's signatures cover: th and the signer's role; an invite proof also binds
 * the member key it vouches for. */
static size_t signed_data(const uint8_t th[32], bool client, const uint8_t *member, uint8_t out[65])
{
	memcpy(out, th, 32);
	out[32] = client ? 'c' : 's';
	if (!member)
		return 33;
	memcpy(out + 33, member, 32);
	return 65;
}

int ledger_hs_seal(struct ledger_hs *h, const uint8_t *msg, size_t len, uint8_t **out,
                   size_t *out_len)
{
	uint8_t nonce[LEDGER_AEAD_NONCE] = { 0 }, *buf;
	int rc;

	if (!h->have_hello)
		return -ENOTCONN;
	if (h->tx_n == UINT64_MAX)
		return -EOVERFLOW;
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(h->tx_n >> (8 * i));
	if (!(buf = malloc(1 + len + LEDGER_AEAD_TAG)))
		return -ENOMEM;
	buf[0] = SEALED_MARK;
	rc = seal_aead(h->tx, nonce, h->drive, 32, msg, len, buf + 1);
	if (rc) {
		free(buf);
		return rc;
	}
	h->tx_n++;
	*out = buf;
	*out_len = 1 + len + LEDGER_AEAD_TAG;
	return 0;
}

int ledger_hs_open(struct ledger_hs *h, const uint8_t *box, size_t len, uint8_t **out,
                   size_t *out_len)
{
	uint8_t nonce[LEDGER_AEAD_NONCE] = { 0 }, *buf;
	int rc;

	if (!h->have_hello)
		return -EBADMSG;
	if (len < 1 + LEDGER_AEAD_TAG || box[0] != SEALED_MARK || h->rx_n == UINT64_MAX)
		return -EBADMSG;
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(h->rx_n >> (8 * i));
	if (!(buf = malloc(len - 1 - LEDGER_AEAD_TAG + 1)))
		return -ENOMEM;
	rc = seal_aead_open(h->rx, nonce, h->drive, 32, box + 1, len - 1, buf);
	if (rc) {
		free(buf);
		return rc;
	}
	h->rx_n++; /* only a message that opened moves the count: a forgery cannot skip one */
	*out = buf;
	*out_len = len - 1 - LEDGER_AEAD_TAG;
	return 0;
}

int ledger_hs_on_hello(struct ledger_hs *h, const uint8_t *buf, size_t len, uint8_t **out,
                       size_t *out_len)
{
	static const struct ben_limits lim = { 256, 2, 16 };
	struct ben d = { buf, len };
	const uint8_t *m;
	size_t ml;
	int64_t v;
	uint8_t t[LEDGER_TAG_LEN(HS_TAG) + 32 + 2 * LEDGER_KX_PK], data[65], sig[64];
	struct ben_buf b;
	int rc;

	if (h->have_hello)
		return -EBADMSG; /* one hello a connection: a second is a replay */
	if (ben_check(buf, len, &lim) || ben_type(d) != 'd' || !ben_get_bytes(d, "m", &m, &ml) ||
	    ml != 5 || memcmp(m, "hello", 5) || !ben_get_int(d, "v", &v) || v != 1 ||
	    !ben_get_fixed(d, "e", h->peer_epk, LEDGER_KX_PK))
		return -EBADMSG;
	if (!memcmp(h->peer_epk, h->epk, LEDGER_KX_PK))
		return -EBADMSG; /* our own hello reflected back */
	h->client = memcmp(h->epk, h->peer_epk, LEDGER_KX_PK) < 0;
	rc = seal_kx_session(h->client, h->epk, h->esk, h->peer_epk, h->rx, h->tx);
	if (rc)
		return rc;
	memcpy(t, HS_TAG, LEDGER_TAG_LEN(HS_TAG));
	memcpy(t + LEDGER_TAG_LEN(HS_TAG), h->drive, 32);
	memcpy(t + LEDGER_TAG_LEN(HS_TAG) + 32, h->client ? h->epk : h->peer_epk, LEDGER_KX_PK);
	memcpy(t + LEDGER_TAG_LEN(HS_TAG) + 32 + LEDGER_KX_PK, h->client ? h->peer_epk : h->epk,
	       LEDGER_KX_PK);
	ledger_sha256(t, sizeof t, h->th);
	seal_wipe(h->esk, sizeof h->esk); /* the session keys are all it was for */
	h->have_hello = true;

	ben_buf_init(&b);
	ben_dict_begin(&b);
	if (h->invite) {
		uint8_t isig[64];

		rc = ledger_key_sign(h->invite, HS_INV_TAG, LEDGER_TAG_LEN(HS_INV_TAG), data,
		                     signed_data(h->th, h->client, h->key->pub, data), isig);
		if (rc) {
			ben_buf_release(&b);
			return rc;
		}
		ben_put_key(&b, "i");
		ben_put_str(&b, h->invite->pub, 32);
		ben_put_key(&b, "is");
		ben_put_str(&b, isig, 64);
	}
	rc = ledger_key_sign(h->key, HS_AUTH_TAG, LEDGER_TAG_LEN(HS_AUTH_TAG), data,
	                     signed_data(h->th, h->client, NULL, data), sig);
	if (rc) {
		ben_buf_release(&b);
		return rc;
	}
	ben_put_key(&b, "k");
	ben_put_str(&b, h->key->pub, 32);
	ben_put_key(&b, "m");
	ben_put_cstr(&b, "auth");
	ben_put_key(&b, "s");
	ben_put_str(&b, sig, 64);
	ben_end(&b);
	uint8_t *plain;
	size_t plen;

	rc = take(&b, &plain, &plen);
	if (rc)
		return rc;
	rc = ledger_hs_seal(h, plain, plen, out, out_len);
	free(plain);
	return rc;
}

int ledger_hs_on_auth(struct ledger_hs *h, const uint8_t *box, size_t len)
{
	static const struct ben_limits lim = { 512, 2, 16 };
	uint8_t *buf = NULL, data[65], sig[64], isig[64];
	size_t blen;
	const uint8_t *m;
	size_t ml;
	struct ledger_hs_peer p = { 0 };
	int rc;

	if (!h->have_hello || h->established)
		return -EBADMSG;
	rc = ledger_hs_open(h, box, len, &buf, &blen);
	if (rc)
		return rc;
	struct ben d = { buf, blen };

	rc = -EBADMSG;
	if (ben_check(buf, blen, &lim) || ben_type(d) != 'd' || !ben_get_bytes(d, "m", &m, &ml) ||
	    ml != 4 || memcmp(m, "auth", 4) || !ben_get_fixed(d, "k", p.key, 32) ||
	    !ben_get_fixed(d, "s", sig, 64))
		goto out;
	/* the peer signed with its own role, the opposite of ours */
	if (!ledger_sig_verify(p.key, HS_AUTH_TAG, LEDGER_TAG_LEN(HS_AUTH_TAG), data,
	                       signed_data(h->th, !h->client, NULL, data), sig))
		goto out;
	if (ben_get_fixed(d, "i", p.invite, 32)) {
		if (!ben_get_fixed(d, "is", isig, 64) ||
		    !ledger_sig_verify(p.invite, HS_INV_TAG, LEDGER_TAG_LEN(HS_INV_TAG), data,
		                       signed_data(h->th, !h->client, p.key, data), isig))
			goto out;
		p.has_invite = true;
	}
	h->peer = p;
	h->established = true;
	rc = 0;
out:
	free(buf);
	return rc;
}
