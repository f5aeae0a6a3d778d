/* A mounted drive's membership for the swarmfs commands (see members.h). */
#include "members.h"

#include "drive.h"
#include "fs.h"
#include "ops.h"
#include "sync.h"

#include <ledger.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INVITE_DEFAULT_S (7 * 86400) /* an invite's life unless the command says */

static const char *role_name(const struct ledger_member *m)
{
	return m->admin      ? (m->producer ? "admin,producer" : "admin")
	       : m->producer ? "producer"
	                     : "member";
}

int fs_members_text(struct fs_drive *d, char **out)
{
	struct ledger_member *ms = NULL;
	size_t n = 0, len = 0;
	char hex[LEDGER_HEX_LEN], *buf = NULL;
	FILE *f;
	int rc = ledger_members(d->ledger, &ms, &n);

	if (rc < 0)
		return rc;
	if (!(f = open_memstream(&buf, &len))) {
		free(ms);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		ledger_hex(ms[i].key, LEDGER_KEY_LEN, hex);
		fprintf(f, "%s %s %lld %s\n", hex, role_name(&ms[i]), (long long)ms[i].since,
		        ms[i].name);
	}
	free(ms);
	if (fclose(f) || !buf)
		return -ENOMEM;
	*out = buf;
	return (int)len;
}

/* One "key=value" of a query string into out (percent-decoded); false if absent. */
static bool arg_get(const char *args, const char *key, char *out, size_t max)
{
	size_t kl = strlen(key);

	for (const char *p = args; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, key, kl) || p[kl] != '=')
			continue;
		size_t o = 0;

		for (p += kl + 1; *p && *p != '&' && o + 1 < max; p++) {
			if (*p == '%' && isxdigit((unsigned char)p[1]) &&
			    isxdigit((unsigned char)p[2])) {
				char h[3] = { p[1], p[2], 0 };

				out[o++] = (char)strtol(h, NULL, 16);
				p += 2;
			} else {
				out[o++] = *p;
			}
		}
		out[o] = '\0';
		return true;
	}
	return false;
}

int fs_members_invite(struct fs_drive *d, const char *args, char **out)
{
	char role[16] = "member", exp[24], name[LEDGER_DISPLAY_NAME_MAX + 1] = "", *uri = NULL;
	uint8_t secret[LEDGER_INVITE_SECRET_LEN];
	long long secs = INVITE_DEFAULT_S;
	int rc;

	if (!d->key)
		return -EROFS;
	if (!ledger_is_private(d->ledger))
		fs_info("an invite to the public drive %s: its URI alone would do", d->id_hex);
	arg_get(args, "role", role, sizeof role);
	if (arg_get(args, "expires", exp, sizeof exp)) {
		char *end;

		secs = strtoll(exp, &end, 10);
		if (*end || secs <= 0)
			return -EINVAL;
	}
	arg_get(args, "name", name, sizeof name);
	if ((strcmp(role, "member") && strcmp(role, "producer")) ||
	    (*name && !ledger_display_name_ok(name)))
		return -EINVAL;
	rc = ledger_invite_create(d->ledger, !strcmp(role, "producer"), (int64_t)time(NULL) + secs,
	                          name, secret);
	if (rc == 0)
		rc = fs_drive_invite_uri(d, secret, &uri);
	memset(secret, 0, sizeof secret);
	if (rc < 0) {
		fs_info("an invite to drive %s refused: %s", d->id_hex, strerror(-rc));
		return rc;
	}
	fs_drive_changed(d, NULL); /* the other members hear of it soon */
	rc = asprintf(out, "%s\n", uri);
	memset(uri, 0, strlen(uri));
	free(uri);
	if (rc < 0)
		return -ENOMEM;
	fs_info("invited a %s to drive %s, for %lld s", role, d->id_hex, secs);
	return rc;
}

int fs_members_set(struct fs_drive *d, const char *value, size_t size)
{
	struct ledger_op op = { .type = LEDGER_REC_MEMBER };
	char buf[LEDGER_HEX_LEN + 16 + LEDGER_DISPLAY_NAME_MAX + 2], hex[LEDGER_HEX_LEN];
	const char *rest, *name = NULL;
	int rc;

	if (size >= sizeof buf || size < LEDGER_HEX_LEN - 1 || memchr(value, '\0', size))
		return -EINVAL;
	memcpy(buf, value, size);
	buf[size] = '\0';
	memcpy(hex, buf, LEDGER_HEX_LEN - 1);
	hex[LEDGER_HEX_LEN - 1] = '\0';
	if (ledger_unhex(hex, op.member, LEDGER_KEY_LEN) < 0)
		return -EINVAL;
	rest = buf + LEDGER_HEX_LEN - 1;
	if (!*rest || !strcmp(rest, " member")) {
	} else if (!strcmp(rest, " producer")) {
		op.producer = true;
	} else if (!strncmp(rest, " member ", 8) || !strncmp(rest, " producer ", 10)) {
		op.producer = rest[1] == 'p';
		name = rest + (op.producer ? 10 : 8);
	} else if (!strcmp(rest, " remove")) {
		op.remove = true;
	} else {
		return -EINVAL;
	}
	if (op.remove) {
		/* a producer is removed as one, then as a member */
		op.producer = ledger_member_role(d->ledger, op.member) == 2;
		if (op.producer && (rc = fs_record_submit(d, &op)) < 0)
			return rc;
		op.producer = false;
	}
	op.name = name;
	if ((rc = fs_record_submit(d, &op)) < 0) {
		fs_info("%s %s refused: %s", op.remove ? "removing" : "admitting", hex,
		        strerror(-rc));
		return rc;
	}
	if (op.remove && ledger_is_private(d->ledger)) {
		/* what the removed member has, it keeps; what comes next, it cannot read */
		rc = ledger_epoch_rotate(d->ledger);
		if (rc < 0) {
			fs_err("drive %s: %s removed, but no new epoch: %s", d->id_hex, hex,
			       strerror(-rc));
			return rc;
		}
		fs_notice("drive %s: removed %s; epoch %d began", d->id_hex, hex, rc);
	} else {
		fs_info("%s %s", op.remove ? "removed" : "admitted", hex);
	}
	fs_drive_changed(d, NULL);
	return 0;
}

void fs_members_status(struct fs_drive *d, FILE *f)
{
	struct ledger_member *ms = NULL;
	struct fs_sync_info si;
	size_t n = 0;
	uint8_t k[LEDGER_EPOCH_KEY_LEN];
	int64_t epoch = 0;
	int role = d->key ? ledger_member_role(d->ledger, d->me) : 0;

	fprintf(f, "access: %s\n",
	        ledger_is_private(d->ledger) ? "private (members only)"
	                                     : "public (anyone with the URI reads)");
	if (ledger_members(d->ledger, &ms, &n) == 0)
		fprintf(f, "members: %zu\n", n);
	free(ms);
	fprintf(f, "membership: %s\n",
	        !d->key     ? "none (no key)"
	        : role == 2 ? "producer"
	        : role == 1 ? "member"
	                    : "not a member (waiting for an invite to be redeemed, or refused)");
	if (ledger_is_private(d->ledger)) {
		int rc = ledger_epoch_key(d->ledger, 0, k, &epoch);

		memset(k, 0, sizeof k);
		if (rc == 0)
			fprintf(f, "epoch: %lld (key held)\n", (long long)epoch);
		else
			fprintf(f, "epoch: %s\n",
			        rc == -ENOKEY ? "current key not sealed to us yet" : "none");
	}
	fs_sync_info(d, &si);
	if (si.refused[0])
		fprintf(f, "refused: %s\n", si.refused);
}
