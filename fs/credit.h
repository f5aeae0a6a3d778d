/*
 * fs/credit — credit for those who seed (DESIGN §11), private to fs/.
 *
 * As a downloader, this node signs receipts for the payload bytes its libtorrent
 * received from each member (swarm_session_peer_bytes: per torrent, per peer), at least
 * every FS_CREDIT_RECEIPT_BYTES or FS_CREDIT_RECEIPT_S, or once the bytes from that peer
 * stopped for FS_CREDIT_IDLE_S (a read that ended is credited at once), and sends each to its
 * uploader on the drive's sealed channel. It never signs more than libtorrent counted: a receipt is
 * for the bytes counted since the last one. A peer is known as a member by its address and listen
 * port on the channel; bytes from a peer that is not (yet) on the channel wait. As an uploader, it
 * rolls the receipts it was given into credit records.
 *
 * Threads: fs_credit_tick on the drive's sync thread only (it owns the ledger_sync);
 * fs_credit_text, fs_credit_print from any thread.
 * Errors: -errno.
 */
#ifndef SWARMFS_FS_CREDIT_H
#define SWARMFS_FS_CREDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct ledger;
struct ledger_sync;

#define FS_CREDIT_RECEIPT_BYTES (16ll << 20) /* a receipt at least this often ... */
#define FS_CREDIT_RECEIPT_S     60           /* ... or after this many seconds */
#define FS_CREDIT_IDLE_S        4            /* ... or once the bytes stopped this long */
#define FS_CREDIT_ROLL_BATCH    8            /* receipts that make a credit record now */
#define FS_CREDIT_ROLL_AGE_S    5            /* ... or the age of the oldest kept */

/* A member on the drive's channel: its sync peer id and where it listens. */
struct fs_credit_peer {
	uint64_t peer;
	char host[64];
	uint16_t port;
};

struct fs_credit;

int fs_credit_new(struct fs_credit **out);
void fs_credit_free(struct fs_credit *c); /* NULL is a no-op */

/* Send the receipts due, and roll the receipts kept into credit records. peers: the
 * members on the channel now. */
void fs_credit_tick(struct fs_credit *c, struct fs_drive *d, struct ledger_sync *ls,
                    const struct fs_credit_peer *peers, size_t n);

/* Lines "MEMBERHEX UPLOADED DOWNLOADED\n" for every member, from the ledger l (the
 * user.swarmfs.credit attribute, and `swarmfs credit` on a drive not mounted). *out
 * malloc'd; returns its length or -errno. */
int fs_credit_text(struct ledger *l, char **out);
/* Print such text as a table (member, uploaded, downloaded, ratio) or, json, as a JSON
 * list of {member, uploaded, downloaded, ratio}. */
void fs_credit_print(const char *text, bool json);

#endif
