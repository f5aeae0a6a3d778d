/* Records: encoding, signing, strict decoding and path rules. */
#include "ledger_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
	[LEDGER_REC_CLAIM] = "claim",       [LEDGER_REC_UPDATE] = "update",
	[LEDGER_REC_TRANSFER] = "transfer", [LEDGER_REC_MOVE] = "move",
	[LEDGER_REC_REVOKE] = "revoke",     [LEDGER_REC_MKDIR] = "mkdir",
	[LEDGER_REC_MEMBER] = "member",     [LEDGER_REC_INVITE] = "invite",
	[LEDGER_REC_REDEEM] = "redeem",     [LEDGER_REC_KEYS] = "keys",
	[LEDGER_REC_KEYWRAP] = "keywrap",   [LEDGER_REC_CREDIT] = "credit",
	[LEDGER_REC_HOST] = "host",         [LEDGER_REC_SETTING] = "setting",
};

const char *ledger_rec_type_name(enum ledger_rec_type t)
{
	if ((int)t < LEDGER_REC_CLAIM || t > LEDGER_REC_LAST)
		return NULL;
	return type_names[t];
}

static int type_from_name(const uint8_t *s, size_t n)
{
	for (int t = LEDGER_REC_CLAIM; t <= LEDGER_REC_LAST; t++)
		if (strlen(type_names[t]) == n && !memcmp(type_names[t], s, n))
			return t;
	return -1;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

int ledger_path_ctrl(const unsigned char *s)
{
	/* C0 and DEL: one byte; C1 (U+0080..U+009F): 0xc2 0x80..0x9f in UTF-8 */
	if (s[0] < 0x20 || s[0] == 0x7f)
		return s[0];
	if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
		return s[1];
	return -1;
}

int ledger_path_first_ctrl(const char *path)
{
	for (const unsigned char *s = (const unsigned char *)path; *s; s++)
		if (ledger_path_ctrl(s) >= 0)
			return ledger_path_ctrl(s);
	return -1;
}

int ledger_path_normalize(const char *in, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	while (*s) {
		const unsigned char *c;
		size_t clen;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		c = s;
		while (*s && *s != '/') {
			size_t u = utf8_len(s);

			if (!u || ledger_path_ctrl(s) >= 0)
				return -EINVAL; /* invalid UTF-8, or a C0/C1 control character */
			s += u;
		}
		clen = (size_t)(s - c);
		if (clen > LEDGER_NAME_MAX)
			return -EINVAL;
		if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.'))
			return -EINVAL;
		if (o + 1 + clen > LEDGER_PATH_MAX)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, c, clen);
		o += clen;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

bool ledger_path_is_normal(const char *path)
{
	char tmp[LEDGER_PATH_MAX + 1];

	if (strlen(path) > LEDGER_PATH_MAX || path[0] != '/')
		return false;
	return ledger_path_normalize(path, tmp) == 0 && !strcmp(tmp, path);
}

const char *ledger_path_split(const char *path, char *out_parent)
{
	const char *slash = strrchr(path, '/');

	if (!slash || !strcmp(path, "/")) {
		out_parent[0] = '\0';
		return path + strlen(path);
	}
	if (slash == path) {
		strcpy(out_parent, "/");
	} else {
		memcpy(out_parent, path, (size_t)(slash - path));
		out_parent[slash - path] = '\0';
	}
	return slash + 1;
}

bool rec_has_path(enum ledger_rec_type t)
{
	return t != LEDGER_REC_MEMBER && t != LEDGER_REC_INVITE && t != LEDGER_REC_REDEEM &&
	       t != LEDGER_REC_KEYS && t != LEDGER_REC_KEYWRAP && t != LEDGER_REC_CREDIT &&
	       t != LEDGER_REC_HOST && t != LEDGER_REC_SETTING;
}

bool ledger_display_name_ok(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strlen(name);

	if (n == 0 || n > LEDGER_DISPLAY_NAME_MAX)
		return false;
	while (*s) {
		size_t u = utf8_len(s);

		/* C0, DEL and C1 controls would forge lines or inject terminal escapes */
		if (!u || *s < 0x20 || *s == 0x7f || (u == 2 && s[0] == 0xc2 && s[1] < 0xa0))
			return false;
		s += u;
	}
	return true;
}

static void encode(struct ben_buf *b, const struct rec *r, bool with_sig)
{
	const struct ledger_content *c = &r->content;
	enum ledger_rec_type t = r->type;
	bool file = t == LEDGER_REC_CLAIM || t == LEDGER_REC_UPDATE;
	bool has_prev = t == LEDGER_REC_UPDATE || t == LEDGER_REC_TRANSFER ||
	                t == LEDGER_REC_MOVE || t == LEDGER_REC_REVOKE;
	bool epoch = t == LEDGER_REC_KEYS || t == LEDGER_REC_KEYWRAP || (file && r->has_wrap);
	bool ikey = t == LEDGER_REC_INVITE || t == LEDGER_REC_REDEEM;
	bool role = t == LEDGER_REC_MEMBER || t == LEDGER_REC_INVITE;

	/* keys in byte order; ben_put_key refuses anything else */
	ben_dict_begin(b);
	ben_put_key(b, "author");
	ben_put_str(b, r->author, 32);
	if (t == LEDGER_REC_KEYWRAP) {
		ben_put_key(b, "box");
		ben_put_str(b, r->box, sizeof r->box);
	}
	if (t == LEDGER_REC_KEYS || t == LEDGER_REC_CREDIT) {
		ben_put_key(b, "commit");
		ben_put_str(b, r->commit, 32);
	}
	if (t == LEDGER_REC_MOVE) {
		ben_put_key(b, "dest");
		ben_put_cstr(b, r->dest);
	}
	ben_put_key(b, "drive");
	ben_put_str(b, r->drive, 32);
	if (epoch) {
		ben_put_key(b, "epoch");
		ben_put_int(b, r->epoch);
	}
	if (t == LEDGER_REC_INVITE) {
		ben_put_key(b, "expires");
		ben_put_int(b, r->expires);
	}
	if (file && c->has_file) { /* optional: records of one-file torrents stay as they were */
		ben_put_key(b, "fidx");
		ben_put_int(b, c->file_index);
		ben_put_key(b, "foff");
		ben_put_int(b, (int64_t)c->file_offset);
	}
	if (file) {
		if (c->has_ih1) {
			ben_put_key(b, "ih1");
			ben_put_str(b, c->ih1, 20);
		}
		ben_put_key(b, "ih2");
		ben_put_str(b, c->ih2, 32);
	}
	if (ikey) {
		ben_put_key(b, "ikey");
		ben_put_str(b, r->ikey, 32);
	}
	if (t == LEDGER_REC_REDEEM) {
		ben_put_key(b, "isig");
		ben_put_str(b, r->isig, 64);
	}
	if (file) {
		ben_put_key(b, "len");
		ben_put_int(b, (int64_t)c->length);
	}
	if (t == LEDGER_REC_MEMBER || t == LEDGER_REC_KEYWRAP) {
		ben_put_key(b, "member");
		ben_put_str(b, r->member, 32);
	}
	if (file || t == LEDGER_REC_MKDIR) {
		ben_put_key(b, "mode");
		ben_put_int(b, c->mode);
		ben_put_key(b, "mtime");
		ben_put_int(b, c->mtime_ns);
	}
	if (role && r->name[0]) {
		ben_put_key(b, "name");
		ben_put_cstr(b, r->name);
	}
	ben_put_key(b, "nonce");
	ben_put_int(b, r->nonce);
	if (t == LEDGER_REC_MEMBER || t == LEDGER_REC_HOST) {
		ben_put_key(b, "op");
		ben_put_cstr(b, r->remove ? "remove" : "add");
	}
	if (t == LEDGER_REC_MKDIR) {
		ben_put_key(b, "open");
		ben_put_int(b, r->open);
	}
	if (t == LEDGER_REC_CREDIT) {
		ben_put_key(b, "rcpts");
		ben_list_begin(b);
		for (size_t i = 0; i < r->n_rcpt; i++)
			ben_put_str(b, r->rcpt[i], r->rcpt_len[i]);
		ben_end(b);
	}
	if (rec_has_path(t)) {
		ben_put_key(b, "path");
		ben_put_cstr(b, r->path);
	}
	if (file) {
		ben_put_key(b, "plen");
		ben_put_int(b, c->piece_length);
	}
	if (has_prev) {
		ben_put_key(b, "prev");
		ben_put_str(b, r->prev, 32);
	}
	if (role) {
		ben_put_key(b, "role");
		ben_put_cstr(b, r->producer ? "producer" : "member");
	}
	if (file || t == LEDGER_REC_HOST) {
		ben_put_key(b, "root");
		ben_put_str(b, c->root, 32);
	}
	if (t == LEDGER_REC_SETTING) {
		ben_put_key(b, "set");
		ben_put_cstr(b, r->setting);
	}
	if (with_sig) {
		ben_put_key(b, "sig");
		ben_put_str(b, r->sig, 64);
	}
	ben_put_key(b, "time");
	ben_put_int(b, r->time);
	if (t == LEDGER_REC_TRANSFER) {
		ben_put_key(b, "to");
		ben_put_str(b, r->to, 32);
	}
	if (t == LEDGER_REC_CREDIT) {
		char hex[LEDGER_HEX_LEN];

		ben_put_key(b, "totals");
		ben_dict_begin(b);
		for (size_t i = 0; i < r->n_tot; i++) {
			ledger_hex(r->tot[i].key, 32, hex);
			ben_put_key(b, hex);
			ben_put_int(b, r->tot[i].bytes);
		}
		ben_end(b);
	}
	ben_put_key(b, "type");
	ben_put_cstr(b, ledger_rec_type_name(t));
	if (t == LEDGER_REC_SETTING) {
		ben_put_key(b, "value");
		ben_put_int(b, r->value);
	}
	if (file && r->has_wrap) {
		ben_put_key(b, "wrap");
		ben_put_str(b, r->wrap, sizeof r->wrap);
	}
	ben_end(b);
}

int rec_sign(struct rec *r, const struct ledger_key *key, uint8_t **out, size_t *out_len)
{
	struct ben_buf b;
	int rc;

	if (!ledger_rec_type_name(r->type))
		return -EINVAL;
	memcpy(r->author, key->pub, 32);
	ben_buf_init(&b);
	encode(&b, r, false);
	rc = b.err ? b.err
	           : ledger_key_sign(key, LEDGER_REC_TAG, LEDGER_TAG_LEN(LEDGER_REC_TAG), b.p,
	                             b.len, r->sig);
	ben_buf_release(&b);
	if (rc)
		return rc;
	encode(&b, r, true);
	if (b.err) {
		rc = b.err;
		ben_buf_release(&b);
		return rc;
	}
	ledger_sha256(b.p, b.len, r->id);
	*out = b.p;
	*out_len = b.len;
	return 0;
}

static bool get_path(struct ben d, const char *key, char *out)
{
	const uint8_t *p;
	size_t n;

	if (!ben_get_bytes(d, key, &p, &n) || n == 0 || n > LEDGER_PATH_MAX || memchr(p, '\0', n))
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	/* the root itself is never the subject of a record */
	return ledger_path_is_normal(out) && strcmp(out, "/");
}

static bool get_str_is(struct ben d, const char *key, const char *a, const char *b, bool *out_is_a)
{
	const uint8_t *p;
	size_t n;

	if (!ben_get_bytes(d, key, &p, &n))
		return false;
	if (n == strlen(a) && !memcmp(p, a, n))
		*out_is_a = true;
	else if (n == strlen(b) && !memcmp(p, b, n))
		*out_is_a = false;
	else
		return false;
	return true;
}

static size_t dict_keys(struct ben d)
{
	struct ben_iter it;
	struct ben k, v;
	size_t n = 0;

	ben_iter_init(d, &it);
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v))
		n++;
	return n;
}

/* A credit record's receipts (1..LEDGER_CREDIT_RECEIPTS byte strings) and totals (a dict
 * of downloader keys in hex, lowercase, to bytes > 0): their shape only; what they say
 * is credit_check's. 0 or -EBADMSG. */
static int credit_parse_lists(struct ben d, struct rec *r)
{
	struct ben list, tot, k, v;
	struct ben_iter it;

	if (!ben_dict_get(d, "rcpts", &list) || ben_type(list) != 'l' ||
	    !ben_dict_get(d, "totals", &tot) || ben_type(tot) != 'd')
		return -EBADMSG;
	ben_iter_init(list, &it);
	while (ben_iter_next(&it, &v)) {
		const uint8_t *p;
		size_t n;

		if (r->n_rcpt == LEDGER_CREDIT_RECEIPTS || !ben_str(v, &p, &n) || !n ||
		    n > LEDGER_RECEIPT_MAX)
			return -EBADMSG;
		memcpy(r->rcpt[r->n_rcpt], p, n);
		r->rcpt_len[r->n_rcpt++] = (uint16_t)n;
	}
	ben_iter_init(tot, &it);
	while (ben_iter_next(&it, &k) && ben_iter_next(&it, &v)) {
		const uint8_t *p;
		size_t n;
		char hex[LEDGER_HEX_LEN];

		if (r->n_tot == LEDGER_CREDIT_RECEIPTS || !ben_str(k, &p, &n) || n != 64)
			return -EBADMSG;
		memcpy(hex, p, 64);
		hex[64] = '\0';
		if (ledger_unhex(hex, r->tot[r->n_tot].key, 32))
			return -EBADMSG;
		ledger_hex(r->tot[r->n_tot].key, 32, hex);
		if (memcmp(hex, p, 64) || !ben_int(v, &r->tot[r->n_tot].bytes) ||
		    r->tot[r->n_tot].bytes <= 0)
			return -EBADMSG; /* one spelling of a key only: lowercase */
		r->n_tot++;
	}
	return r->n_rcpt && r->n_tot ? 0 : -EBADMSG;
}

int rec_parse(const uint8_t *buf, size_t len, size_t max_len, struct rec *r)
{
	static const struct ben_limits lim = { SIZE_MAX, 2, 64 };
	struct ben d = { buf, len };
	struct ledger_content *c = &r->content;
	const uint8_t *tp;
	size_t tn, want;
	int64_t v;
	bool file, has_prev;
	int rc, t;

	if (len > max_len)
		return -EMSGSIZE;
	rc = ben_check(buf, len, &lim);
	if (rc)
		return rc == -EMSGSIZE ? rc : -EBADMSG;
	if (ben_type(d) != 'd' || !ben_get_bytes(d, "type", &tp, &tn))
		return -EBADMSG;
	t = type_from_name(tp, tn);
	if (t < 0)
		return -EBADMSG;
	memset(r, 0, sizeof *r);
	r->type = (enum ledger_rec_type)t;
	file = t == LEDGER_REC_CLAIM || t == LEDGER_REC_UPDATE;
	has_prev = t == LEDGER_REC_UPDATE || t == LEDGER_REC_TRANSFER || t == LEDGER_REC_MOVE ||
	           t == LEDGER_REC_REVOKE;
	want = 6; /* author drive nonce sig time type */
	if (!ben_get_fixed(d, "author", r->author, 32) ||
	    !ben_get_fixed(d, "drive", r->drive, 32) || !ben_get_int(d, "nonce", &r->nonce) ||
	    !ben_get_fixed(d, "sig", r->sig, 64) || !ben_get_int(d, "time", &r->time) ||
	    r->time < 0)
		return -EBADMSG;
	if (rec_has_path(r->type)) {
		if (!get_path(d, "path", r->path))
			return -EBADMSG;
		want++;
	}
	if (has_prev) {
		if (!ben_get_fixed(d, "prev", r->prev, 32))
			return -EBADMSG;
		want++;
	}
	if (file && ben_get_int(d, "fidx", &v)) {
		/* both or neither: a file index without its offset names nothing */
		if (v < 0 || v > UINT32_MAX)
			return -EBADMSG;
		c->has_file = true;
		c->file_index = (uint32_t)v;
		if (!ben_get_int(d, "foff", &v) || v < 0)
			return -EBADMSG;
		c->file_offset = (uint64_t)v;
		want += 2;
	}
	if (file) {
		if (ben_get_fixed(d, "ih1", c->ih1, 20)) {
			c->has_ih1 = true;
			want++;
		}
		if (!ben_get_fixed(d, "ih2", c->ih2, 32) ||
		    !ben_get_fixed(d, "root", c->root, 32) || !ben_get_int(d, "len", &v) || v < 0)
			return -EBADMSG;
		c->length = (uint64_t)v;
		if (!ben_get_int(d, "plen", &v) || v < 16384 || v > (1 << 30) || (v & (v - 1)))
			return -EBADMSG;
		c->piece_length = (uint32_t)v;
		want += 4;
		/* a private drive's content: its file key wrapped under an epoch key */
		if (ben_get_fixed(d, "wrap", r->wrap, sizeof r->wrap)) {
			if (!ben_get_int(d, "epoch", &r->epoch) || r->epoch < 1)
				return -EBADMSG;
			r->has_wrap = true;
			want += 2;
		}
	}
	if (file || t == LEDGER_REC_MKDIR) {
		if (!ben_get_int(d, "mode", &v) || v < 0 || v > 07777 ||
		    !ben_get_int(d, "mtime", &c->mtime_ns))
			return -EBADMSG;
		c->mode = (uint32_t)v;
		want += 2;
	}
	switch (t) {
	case LEDGER_REC_TRANSFER:
		if (!ben_get_fixed(d, "to", r->to, 32))
			return -EBADMSG;
		want++;
		break;
	case LEDGER_REC_MOVE:
		if (!get_path(d, "dest", r->dest))
			return -EBADMSG;
		want++;
		break;
	case LEDGER_REC_MKDIR:
		if (!ben_get_int(d, "open", &v) || (v != 0 && v != 1))
			return -EBADMSG;
		r->open = v;
		want++;
		break;
	case LEDGER_REC_MEMBER: {
		bool add;

		if (!ben_get_fixed(d, "member", r->member, 32) ||
		    !get_str_is(d, "role", "producer", "member", &r->producer) ||
		    !get_str_is(d, "op", "add", "remove", &add))
			return -EBADMSG;
		r->remove = !add;
		want += 3;
		break;
	}
	case LEDGER_REC_INVITE:
		if (!ben_get_fixed(d, "ikey", r->ikey, 32) ||
		    !get_str_is(d, "role", "producer", "member", &r->producer) ||
		    !ben_get_int(d, "expires", &r->expires) || r->expires < 0)
			return -EBADMSG;
		want += 3;
		break;
	case LEDGER_REC_REDEEM:
		if (!ben_get_fixed(d, "ikey", r->ikey, 32) ||
		    !ben_get_fixed(d, "isig", r->isig, 64))
			return -EBADMSG;
		want += 2;
		break;
	case LEDGER_REC_KEYS:
		if (!ben_get_fixed(d, "commit", r->commit, 32) ||
		    !ben_get_int(d, "epoch", &r->epoch) || r->epoch < 1)
			return -EBADMSG;
		want += 2;
		break;
	case LEDGER_REC_KEYWRAP:
		if (!ben_get_fixed(d, "member", r->member, 32) ||
		    !ben_get_fixed(d, "box", r->box, sizeof r->box) ||
		    !ben_get_int(d, "epoch", &r->epoch) || r->epoch < 1)
			return -EBADMSG;
		want += 3;
		break;
	case LEDGER_REC_CREDIT:
		if (!ben_get_fixed(d, "commit", r->commit, 32) || credit_parse_lists(d, r))
			return -EBADMSG;
		want += 3;
		break;
	case LEDGER_REC_HOST: {
		bool add;

		if (!ben_get_fixed(d, "root", c->root, 32) ||
		    !get_str_is(d, "op", "add", "remove", &add))
			return -EBADMSG;
		r->remove = !add;
		want += 2;
		break;
	}
	case LEDGER_REC_SETTING: {
		const uint8_t *sp;
		size_t sn;

		if (!ben_get_bytes(d, "set", &sp, &sn) || !sn || sn >= sizeof r->setting ||
		    memchr(sp, '\0', sn) || !ben_get_int(d, "value", &r->value))
			return -EBADMSG;
		memcpy(r->setting, sp, sn);
		want += 2;
		break;
	}
	default: break;
	}
	/* members and invites may carry a display name */
	if (t == LEDGER_REC_MEMBER || t == LEDGER_REC_INVITE) {
		const uint8_t *np;
		size_t nn;
		struct ben nv;

		if (ben_dict_get(d, "name", &nv)) {
			if (!ben_get_bytes(d, "name", &np, &nn) || nn == 0 ||
			    nn > LEDGER_DISPLAY_NAME_MAX || memchr(np, '\0', nn))
				return -EBADMSG;
			memcpy(r->name, np, nn);
			r->name[nn] = '\0';
			if (!ledger_display_name_ok(r->name))
				return -EBADMSG;
			want++;
		}
	}
	/* exactly the fields of the type: an unknown key could carry anything */
	if (dict_keys(d) != want)
		return -EBADMSG;
	ledger_sha256(buf, len, r->id);
	return 0;
}

int rec_decode(struct ledger_pk_cache *c, const uint8_t *buf, size_t len, size_t max_len,
               struct rec *r)
{
	struct ben d = { buf, len };
	int rc = rec_parse(buf, len, max_len, r);

	if (rc)
		return rc;
	if (ledger_pk_cache_preverified(c, r->id))
		return 0; /* these very bytes passed the check on another thread */
	if (!ledger_dict_sig_verify(d, r->author, LEDGER_REC_TAG, LEDGER_TAG_LEN(LEDGER_REC_TAG)))
		return -EBADMSG;
	return 0;
}
