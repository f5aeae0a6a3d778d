/* Lookups that walk a directory (ledger_priv.h): `ls -l` lists a directory, then stats
 * every name in the order the listing gave them (ours: by name), and each stat the
 * kernel has no entry for is a lookup here. One query a name cost ~50 us of a
 * mount's CPU (a read transaction, an index probe and a seek into the table each); a
 * page of the siblings from the one looked up, read once by the same index the
 * listing uses, answers the next SIB_PAGE of them.
 *
 * A lone lookup (a stat of a random path, an open) reads no page, nor do random
 * lookups in one directory: a walk does, the SIB_WALK-th lookup in a row under one
 * directory with each name after the last. The page holds rows of the paths table only, and
 * is used only while this connection has written nothing since it was read
 * (sqlite3_total_changes64: every record, block, mempool and queue write goes through
 * it; the query-only twins of reader.c, whose count that is not, have no page): what
 * it answers is what ledger_lookup_locked would. A name the page does not hold is the
 * database's to answer (a pending record of the mempool, say). */
#include "ledger_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIB_PAGE  256
#define SIB_FIRST 32 /* a walk's first page; each next one twice the last, to SIB_PAGE */
/* lookups in a row under one directory, each of a name after the last, before a page
 * is read: a walk (ls -l). Random lookups in one big directory seldom rise this long
 * (1 in 24), and a page read for each of them cost ~150 us (ledger.sh's lookup row) */
#define SIB_WALK 4

struct siblings {
	char parent[LEDGER_PATH_MAX + 1]; /* of the last lookup */
	char last[LEDGER_NAME_MAX + 1];   /* its name */
	unsigned rising;                  /* lookups in a row under parent, names rising */
	size_t want;                      /* rows the next page reads */
	sqlite3_int64 changes;            /* the connection's writes when the page was read */
	size_t n;                         /* rows in page, by name; 0: no page */
	bool full;                        /* n == the rows asked: more may follow */
	struct ledger_entry page[SIB_PAGE];
};

/* The index of name in the page, or -1; *outside: name sorts before its first row or
 * after its last (when the page is full: more may follow it in the directory). */
static long find(const struct siblings *s, const char *name, bool *outside)
{
	size_t lo = 0, hi = s->n;

	*outside = !s->n || strcmp(name, s->page[0].name) < 0 ||
	           (s->full && strcmp(name, s->page[s->n - 1].name) > 0);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->page[mid].name, name);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The page: the rows of parent from name on, by name. 0 or -EIO (no page then). */
static int read_page(struct ledger *l, struct siblings *s, const char *name)
{
	static const char q[] = "SELECT " ENTRY_COLS " FROM paths WHERE parent = ? AND"
	                        " spent IS NULL AND name >= ? ORDER BY name LIMIT ?";
	sqlite3_stmt *st = store_stmt(l, q);
	int rc = SQLITE_DONE;

	s->n = 0;
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, s->parent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)s->want);
	while (s->n < s->want && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ledger_entry_from_row(st, &s->page[s->n++]);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		s->n = 0;
		return store_err(l, rc, "siblings");
	}
	s->full = s->n == s->want;
	s->changes = sqlite3_total_changes64(l->db);
	return 0;
}

int siblings_lookup(struct ledger *l, const char *norm, struct ledger_entry *out)
{
	const char *slash = strrchr(norm, '/'), *name;
	struct siblings *s = l->sib;
	size_t pl;
	bool outside;
	long i;

	/* a query-only twin sees the writer's changes, which its own count does not */
	if (l->reader || !slash || !slash[1])
		return -ENOENT; /* nor the root: the database's */
	name = slash + 1;
	pl = slash == norm ? 1 : (size_t)(slash - norm); /* "/x": its parent is "/" */
	if (!s && !(s = l->sib = calloc(1, sizeof *s)))
		return -ENOENT;
	if (strlen(s->parent) != pl || strncmp(s->parent, norm, pl)) {
		memcpy(s->parent, norm, pl);
		s->parent[pl] = '\0';
		s->rising = 0;
		s->n = 0;
	}
	s->rising = s->rising && strcmp(name, s->last) > 0 ? s->rising + 1 : 1;
	snprintf(s->last, sizeof s->last, "%s", name);
	if (s->rising == 1)
		s->want = SIB_FIRST;
	if (s->n && s->changes != sqlite3_total_changes64(l->db))
		s->n = 0; /* written since: the page may be stale */
	i = find(s, name, &outside);
	if (i < 0 && outside && s->rising >= SIB_WALK) {
		if (s->n && s->full && s->want < SIB_PAGE)
			s->want *= 2; /* walked past a whole page: a longer one */
		if (read_page(l, s, name) < 0)
			return -ENOENT;
		i = find(s, name, &outside);
	}
	if (i < 0)
		return -ENOENT;
	*out = s->page[i];
	return 0;
}

void siblings_free(struct ledger *l)
{
	free(l->sib);
	l->sib = NULL;
}
