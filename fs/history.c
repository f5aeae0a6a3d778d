/* swarmfs log's output: times, names, short ids, JSON (see history.h). */
#include "history.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHORT_ID 8 /* hex digits of a key or record id in the table */

struct fs_names {
	struct name_entry {
		uint8_t key[LEDGER_KEY_LEN];
		char *name;
	} * v;
	size_t n, cap;
};

static int names_add(struct fs_names *t, const uint8_t key[LEDGER_KEY_LEN], const char *name,
                     size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (!memcmp(t->v[i].key, key, LEDGER_KEY_LEN))
			return 0; /* the first name given wins: key files before the book */
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct name_entry *nv = realloc(t->v, cap * sizeof *nv);

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = cap;
	}
	if (!(t->v[t->n].name = strndup(name, len)))
		return -ENOMEM;
	memcpy(t->v[t->n++].key, key, LEDGER_KEY_LEN);
	return 0;
}

static int names_from_keys(struct fs_names *t, const char *home)
{
	char *dir;
	DIR *d;
	struct dirent *de;
	int err = 0;

	if (asprintf(&dir, "%s/keys", home) < 0)
		return -ENOMEM;
	d = opendir(dir);
	while (d && err == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct ledger_key *k;
		uint8_t pub[LEDGER_KEY_LEN];
		char *p;

		if (len <= 4 || strcmp(de->d_name + len - 4, ".key") || de->d_name[0] == '.')
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
			err = -ENOMEM;
			break;
		}
		if (ledger_key_load(p, &k) == 0) {
			ledger_key_public(k, pub);
			ledger_key_free(k);
			err = names_add(t, pub, de->d_name, len - 4);
		}
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
	return err;
}

static int names_from_book(struct fs_names *t, const char *home)
{
	char *path, line[512];
	FILE *f;
	int err = 0;

	if (asprintf(&path, "%s/names", home) < 0)
		return -ENOMEM;
	f = fopen(path, "re");
	free(path);
	while (f && err == 0 && fgets(line, sizeof line, f)) {
		char hex[LEDGER_HEX_LEN], *name = line + LEDGER_HEX_LEN - 1, *end;
		uint8_t key[LEDGER_KEY_LEN];

		if (strlen(line) < LEDGER_HEX_LEN + 1 || line[0] == '#' ||
		    !isspace((unsigned char)*name))
			continue;
		memcpy(hex, line, LEDGER_HEX_LEN - 1);
		hex[LEDGER_HEX_LEN - 1] = '\0';
		if (ledger_unhex(hex, key, LEDGER_KEY_LEN) < 0)
			continue;
		while (isspace((unsigned char)*name))
			name++;
		end = name + strlen(name);
		while (end > name && isspace((unsigned char)end[-1]))
			end--;
		/* a name is shown in a terminal: no control characters */
		bool clean = end > name;
		for (char *c = name; c < end; c++)
			clean &= !iscntrl((unsigned char)*c);
		if (clean)
			err = names_add(t, key, name, (size_t)(end - name));
	}
	if (f)
		fclose(f);
	return err;
}

int fs_names_load(const char *home, struct fs_names **out)
{
	struct fs_names *t = calloc(1, sizeof *t);
	int err = 0;

	if (!t)
		return -ENOMEM;
	if (home && (err = names_from_keys(t, home)) == 0)
		err = names_from_book(t, home);
	if (err < 0) {
		fs_names_free(t);
		return err;
	}
	*out = t;
	return 0;
}

const char *fs_names_get(const struct fs_names *t, const uint8_t key[LEDGER_KEY_LEN])
{
	for (size_t i = 0; t && i < t->n; i++)
		if (!memcmp(t->v[i].key, key, LEDGER_KEY_LEN))
			return t->v[i].name;
	return NULL;
}

void fs_names_free(struct fs_names *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	free(t);
}

/* ---- transport ---- */

int fs_history_line(const struct ledger_log_entry *e, char *buf, size_t len)
{
	char author[LEDGER_HEX_LEN], rec[LEDGER_HEX_LEN];

	ledger_hex(e->author, LEDGER_KEY_LEN, author);
	ledger_hex(e->record_id, LEDGER_ID_LEN, rec);
	return snprintf(buf, len, "%s\t%lld\t%lld\t%s\t%s\t%s\t%s\n",
	                ledger_rec_type_name(e->type) ? ledger_rec_type_name(e->type) : "?",
	                (long long)e->height, (long long)e->time, author, rec, e->path, e->dest);
}

static int type_of(const char *name, size_t len, enum ledger_rec_type *out)
{
	for (int t = 1; t < 64; t++) {
		const char *n = ledger_rec_type_name((enum ledger_rec_type)t);

		if (n && strlen(n) == len && !memcmp(n, name, len)) {
			*out = (enum ledger_rec_type)t;
			return 0;
		}
	}
	return -EBADMSG;
}

static int parse_line(const char *line, size_t len, struct ledger_log_entry *e)
{
	const char *f[7];
	size_t fl[7];
	const char *p = line, *end = line + len;
	char num[24], hex[LEDGER_HEX_LEN];
	char *stop;

	for (int i = 0; i < 7; i++) {
		const char *tab = i < 6 ? memchr(p, '\t', (size_t)(end - p)) : end;

		if (!tab)
			return -EBADMSG;
		f[i] = p;
		fl[i] = (size_t)(tab - p);
		p = tab + 1;
	}
	memset(e, 0, sizeof *e);
	if (type_of(f[0], fl[0], &e->type) < 0)
		return -EBADMSG;
	for (int i = 1; i <= 2; i++) {
		if (fl[i] == 0 || fl[i] >= sizeof num)
			return -EBADMSG;
		memcpy(num, f[i], fl[i]);
		num[fl[i]] = '\0';
		long long v = strtoll(num, &stop, 10);
		if (*stop)
			return -EBADMSG;
		if (i == 1)
			e->height = v;
		else
			e->time = v;
	}
	for (int i = 3; i <= 4; i++) {
		if (fl[i] != LEDGER_HEX_LEN - 1)
			return -EBADMSG;
		memcpy(hex, f[i], fl[i]);
		hex[fl[i]] = '\0';
		if (ledger_unhex(hex, i == 3 ? e->author : e->record_id, 32) < 0)
			return -EBADMSG;
	}
	if (fl[5] > LEDGER_PATH_MAX || fl[6] > LEDGER_PATH_MAX)
		return -EBADMSG;
	memcpy(e->path, f[5], fl[5]);
	memcpy(e->dest, f[6], fl[6]);
	return 0;
}

int fs_history_parse(const char *text, ledger_log_entry_fn fn, void *ctx)
{
	struct ledger_log_entry *e = malloc(sizeof *e);
	int rc = 0;

	if (!e)
		return -ENOMEM;
	while (*text && rc == 0) {
		const char *nl = strchr(text, '\n');

		if (!nl || parse_line(text, (size_t)(nl - text), e) < 0) {
			rc = -EBADMSG;
			break;
		}
		rc = fn(e, ctx);
		text = nl + 1;
	}
	free(e);
	return rc;
}

/* ---- printing ---- */

void fs_time_iso8601(int64_t unix_s, bool utc, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char off[8];
	size_t n;

	if (utc) {
		gmtime_r(&t, &tm);
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return;
	}
	localtime_r(&t, &tm);
	/* strftime's %z is +hhmm; ISO 8601's extended form, like the date, has a colon */
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(off, sizeof off, "%z", &tm);
	if (n && strlen(off) == 5)
		snprintf(buf + n, len - n, "%.3s:%s", off, off + 3);
}

void fs_history_begin(struct fs_history_out *o, const char *drive_id, const char *path)
{
	o->n = 0;
	if (o->json) {
		fs_json_init(&o->j);
		fs_json_object_begin(&o->j, NULL);
		fs_json_str(&o->j, "drive", drive_id);
		fs_json_str(&o->j, "path", path);
		fs_json_array_begin(&o->j, "records");
		return;
	}
	fprintf(o->f, "%6s  %-25s  %-8s  %-*s  %s\n", "HEIGHT", o->utc ? "TIME (UTC)" : "TIME",
	        "TYPE", o->long_keys ? 64 : 20, "AUTHOR", "WHAT");
}

/* A key as the table shows it: "name (1a2b3c4d)", or the short or full hex. */
static void key_text(const struct fs_history_out *o, const uint8_t key[LEDGER_KEY_LEN], char *buf,
                     size_t len)
{
	char hex[LEDGER_HEX_LEN];
	const char *name = fs_names_get(o->names, key);

	ledger_hex(key, LEDGER_KEY_LEN, hex);
	if (!o->long_keys)
		hex[SHORT_ID] = '\0';
	if (name)
		snprintf(buf, len, "%s (%s)", name, hex);
	else
		snprintf(buf, len, "%s", hex);
}

static void json_key(struct fs_history_out *o, const char *field, const char *hex)
{
	uint8_t key[LEDGER_KEY_LEN];
	char name_field[32];

	fs_json_str(&o->j, field, hex);
	snprintf(name_field, sizeof name_field, "%s_name", field);
	if (ledger_unhex(hex, key, LEDGER_KEY_LEN) == 0)
		fs_json_str(&o->j, name_field, fs_names_get(o->names, key));
}

int fs_history_print(const struct ledger_log_entry *e, void *ctx)
{
	struct fs_history_out *o = ctx;
	const char *type = ledger_rec_type_name(e->type) ? ledger_rec_type_name(e->type) : "?";
	char when[40], author[300], rec[LEDGER_HEX_LEN], other[300];

	fs_time_iso8601(e->time, o->utc, when, sizeof when);
	ledger_hex(e->record_id, LEDGER_ID_LEN, rec);
	o->n++;
	if (o->json) {
		fs_json_object_begin(&o->j, NULL);
		fs_json_int(&o->j, "height", e->height);
		fs_json_str(&o->j, "time", when);
		fs_json_int(&o->j, "unix_time", e->time);
		fs_json_str(&o->j, "type", type);
		fs_json_hex(&o->j, "author", e->author, LEDGER_KEY_LEN);
		fs_json_str(&o->j, "author_name", fs_names_get(o->names, e->author));
		fs_json_str(&o->j, "path", e->path[0] ? e->path : NULL);
		if (e->type == LEDGER_REC_MOVE)
			fs_json_str(&o->j, "dest", e->dest);
		else if (e->type == LEDGER_REC_TRANSFER)
			json_key(o, "to", e->dest);
		else if (e->type == LEDGER_REC_MEMBER || e->type == LEDGER_REC_KEYWRAP)
			json_key(o, "member", e->dest);
		else if (e->type == LEDGER_REC_INVITE || e->type == LEDGER_REC_REDEEM)
			fs_json_str(&o->j, "invite", e->dest);
		else if (e->type == LEDGER_REC_KEYS)
			fs_json_str(&o->j, "epoch", e->dest);
		else if (e->type == LEDGER_REC_HOST && strlen(e->dest) > 65) {
			fs_json_bool(&o->j, "held", !strncmp(e->dest, "add ", 4));
			fs_json_str(&o->j, "content", strchr(e->dest, ' ') + 1);
		} else if (e->type == LEDGER_REC_SETTING)
			fs_json_str(&o->j, "setting", e->dest);
		fs_json_str(&o->j, "record", rec);
		fs_json_object_end(&o->j);
		return 0;
	}
	key_text(o, e->author, author, sizeof author);
	fprintf(o->f, "%6lld  %-25s  %-8s  %-*s  ", (long long)e->height, when, type,
	        o->long_keys ? 64 : 20, author);
	if (e->type == LEDGER_REC_MEMBER || e->type == LEDGER_REC_TRANSFER ||
	    e->type == LEDGER_REC_KEYWRAP) {
		uint8_t key[LEDGER_KEY_LEN];

		if (ledger_unhex(e->dest, key, LEDGER_KEY_LEN) == 0)
			key_text(o, key, other, sizeof other);
		else
			snprintf(other, sizeof other, "%.64s", e->dest);
		if (e->type == LEDGER_REC_TRANSFER)
			fprintf(o->f, "%s to %s", e->path, other);
		else
			fprintf(o->f, "key %s", other);
	} else if (e->type == LEDGER_REC_INVITE || e->type == LEDGER_REC_REDEEM)
		fprintf(o->f, "invite %.*s", o->long_keys ? 64 : SHORT_ID, e->dest);
	else if (e->type == LEDGER_REC_KEYS || e->type == LEDGER_REC_SETTING)
		fprintf(o->f, "%s", e->dest);
	else if (e->type == LEDGER_REC_HOST && strlen(e->dest) > 65)
		fprintf(o->f, "%s content %.*s",
		        !strncmp(e->dest, "add ", 4) ? "holds" : "lets go of",
		        o->long_keys ? 64 : SHORT_ID, strchr(e->dest, ' ') + 1);
	else if (e->type == LEDGER_REC_MOVE)
		fprintf(o->f, "%s -> %s", e->path, e->dest);
	else
		fprintf(o->f, "%s", e->path);
	fprintf(o->f, "  record %.*s\n", o->long_keys ? 64 : SHORT_ID, rec);
	return 0;
}

int fs_history_end(struct fs_history_out *o)
{
	char *text;
	int n;

	if (!o->json)
		return 0;
	fs_json_array_end(&o->j);
	fs_json_object_end(&o->j);
	if ((n = fs_json_finish(&o->j, &text)) < 0)
		return n;
	fwrite(text, 1, (size_t)n, o->f);
	free(text);
	return 0;
}
