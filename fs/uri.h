/*
 * swarmfs:// URIs (private to fs/): how a drive is named to another machine.
 *
 *   swarmfs://<drive-id>?gl=<genesis-length>&tr=<tracker-url>&peer=<host:port>&dn=<name>
 *   swarmfs://<drive-id>?priv=1&tr=...&dn=<name>            a private drive
 *   swarmfs://<drive-id>?inv=<secret>&tr=...&dn=<name>      an invite to a private drive
 *
 * A private drive's genesis is served only over the members-only channel, so its URI
 * needs no gl=; inv= carries an invite's one-time secret (64 hex digits) and implies
 * priv=1.
 * drive-id is 64 hex digits (SHA-256 of the genesis block); gl is the genesis block's
 * length, which with the id fixes the drive torrent (fs/sync.h) a joiner fetches the
 * genesis from; tr and peer repeat; values
 * are percent-encoded. Unknown parameters are ignored so newer URIs still parse.
 * Threads: pure functions, any thread.
 */
#ifndef SWARMFS_FS_URI_H
#define SWARMFS_FS_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_URI_MAX_LIST    32    /* trackers, peers: more is a hostile or broken URI */
#define FS_URI_GENESIS_MAX 16384 /* a shared genesis fits one 16 KiB BEP 52 block */

struct fs_uri {
	char drive_id[65];    /* lowercase hex, NUL-terminated */
	uint32_t genesis_len; /* gl=, or 0 */
	char *name;           /* dn=, or NULL */
	char *trackers[FS_URI_MAX_LIST];
	size_t n_trackers;
	char *peers[FS_URI_MAX_LIST]; /* "host:port" or "[v6]:port" */
	size_t n_peers;
	bool private_drive; /* priv=1 (or inv=) */
	bool has_invite;
	uint8_t invite[32]; /* inv=: the invite's secret */
};

/* Whether text starts with the swarmfs:// scheme (case-insensitive). */
int fs_uri_is_uri(const char *text);

/* Parse text into *out (caller-owned; release with fs_uri_release). Returns 0, or
 * -EINVAL with a reason in *out_why (a static string) when not NULL. On failure *out
 * is left zeroed. */
int fs_uri_parse(const char *text, struct fs_uri *out, const char **out_why);
void fs_uri_release(struct fs_uri *u);

/* Format u as a URI; caller frees *out_text with free(). -ENOMEM. */
int fs_uri_format(const struct fs_uri *u, char **out_text);

struct ledger;
/* The gl= of a drive's URI: its genesis length, or 0 for a genesis too big to share. */
uint32_t fs_uri_genesis_len(struct ledger *l);

/* Validate "host:port" / "[v6]:port" (port 1..65535, host non-empty, no spaces). */
int fs_uri_peer_valid(const char *peer);

#endif
