/*
 * fs/rank — credit matters (DESIGN §11), private to fs/: when this node's upload is
 * contended, members with more credit are served first.
 *
 * From the ledger's credit (ledger_credit_list: bytes each member uploaded and
 * downloaded, as receipts in the chain prove them) each member on the drive's sealed
 * channel gets a rank:
 *   3  it uploaded more than it downloaded,
 *   2  even (a new member: nothing either way),
 *   1  it downloaded more than it uploaded,
 *   0  not a member on the channel (anyone else: a standard client, a stranger).
 * The sealed channel says which address each member is at; swarm/ gives each address
 * its rank as a libtorrent peer class (swarm_session_set_ranks): a higher rank is
 * unchoked first and gets 4 times the share of the rank below of a contended upload.
 * Members behind one address share the lowest of their ranks: no one rides on
 * another's credit. A connection keeps the rank it started with until it reconnects.
 *
 * Threads: fs_rank_update on the drive's sync thread only; fs_rank_of pure; the status
 * renderings from any thread (not a swarm callback: they ask libtorrent).
 * Errors: -errno.
 */
#ifndef SWARMFS_FS_RANK_H
#define SWARMFS_FS_RANK_H

#include <ledger.h>

#include <stddef.h>
#include <stdint.h>

struct fs_drive;
struct fs_json;

/* A member on the channel: its key and where it listens. */
struct fs_rank_member {
	uint8_t key[LEDGER_KEY_LEN];
	char host[64];
	uint16_t port;
};

struct fs_rank;

int fs_rank_new(struct fs_rank **out);
void fs_rank_free(struct fs_rank *r); /* NULL is a no-op */

/* The rank (1..3) of a member whose credit is uploaded and downloaded bytes. */
int fs_rank_of(uint64_t uploaded, uint64_t downloaded);

/* Rank the members on the channel now (v, n) from d's ledger and give the ranks to d's
 * session. A failure is logged and the ranks given before stay. */
void fs_rank_update(struct fs_rank *r, struct fs_drive *d, const struct fs_rank_member *v,
                    size_t n);

/* Per peer of d's session (address, member key and name if it is one on the channel,
 * its credit rank now and the highest its live connections got, rates, payload totals): lines
 * appended to *buf (fs_text_add), a "peer_list" array in the JSON object being written, or the rows
 * of the --watch screen. r may be NULL (no sync): no peer is then known as a member. */
void fs_rank_status_text(struct fs_rank *r, struct fs_drive *d, char **buf, size_t *len);
void fs_rank_status_json(struct fs_rank *r, struct fs_drive *d, struct fs_json *j);
void fs_rank_status_watch(struct fs_rank *r, struct fs_drive *d, char **buf, size_t *len);

#endif
