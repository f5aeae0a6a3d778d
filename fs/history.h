/*
 * fs/history — a drive's history as people and scripts read it (swarmfs log), private
 * to fs/: ISO 8601 times (local, or UTC), short key ids (full with --long), display
 * names where this node knows them, or one JSON document (schema in swarmfs(1)).
 *
 * The history comes from ledger_history() directly, or from a mount, which sends it
 * through the attribute user.swarmfs.log as one line a record, tab-separated
 * (fs_history_line / fs_history_parse): paths never hold control characters.
 *
 * Threads: a printer or a name table belongs to the thread that made it.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_FS_HISTORY_H
#define SWARMFS_FS_HISTORY_H

#include "json.h"

#include <ledger.h>

#include <stdbool.h>
#include <stdio.h>

/* ---- display names of keys ---- */

struct fs_names;

/* The names this node knows in home (may be NULL: none): each key file
 * keys/NAME.key names its public key NAME, and the address book <home>/names (lines
 * "KEY NAME", KEY 64 hex digits, '#' starts a comment) names the others. Never fails
 * for a missing or unreadable file (the table is then smaller); -ENOMEM. */
int fs_names_load(const char *home, struct fs_names **out);
/* The name of key, or NULL. Valid until fs_names_free. */
const char *fs_names_get(const struct fs_names *n, const uint8_t key[LEDGER_KEY_LEN]);
void fs_names_free(struct fs_names *n); /* NULL: no-op */

/* ---- the transport from a mount ---- */

/* One record as a line: type, height, time, author, record id, path, dest; tab-
 * separated, newline-terminated. Returns the length (snprintf's rules). */
int fs_history_line(const struct ledger_log_entry *e, char *buf, size_t len);
/* Call fn for each line of text made by fs_history_line; -EBADMSG for a malformed
 * line (nothing after it is read), else fn's first non-zero return, or 0. */
int fs_history_parse(const char *text, ledger_log_entry_fn fn, void *ctx);

/* ---- printing ---- */

struct fs_history_out {
	FILE *f;
	bool json;                    /* one JSON document instead of the table */
	bool utc;                     /* times in UTC, not local time */
	bool long_keys;               /* full 64-hex keys and record ids */
	const struct fs_names *names; /* borrowed, may be NULL */
	struct fs_json j;
	int n;
};

/* Start the table (its header) or the document; path is the history's path, NULL for
 * the whole drive; drive_id (hex) may be NULL when not known. */
void fs_history_begin(struct fs_history_out *o, const char *drive_id, const char *path);
/* A ledger_log_entry_fn: ctx is the struct fs_history_out. */
int fs_history_print(const struct ledger_log_entry *e, void *ctx);
/* End the document and write it (JSON), or nothing more (text). -ENOMEM. */
int fs_history_end(struct fs_history_out *o);

/* "2026-01-31T14:05:09+01:00" (local) or "2026-01-31T13:05:09Z" (utc) into buf. */
void fs_time_iso8601(int64_t unix_s, bool utc, char *buf, size_t len);

#endif
