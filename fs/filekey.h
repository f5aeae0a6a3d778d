/*
 * Private drives' content at the edges of fs/ (private to fs/, DESIGN §9): a file's key
 * from the ledger at open, kept in the open file's handle as a cipher and wiped at
 * release; replies decrypted from the cache's ciphertext; the opaque name the swarm
 * knows a private file's content by.
 *
 * Threads: any thread (FUSE workers, the engine's worker for parked reads).
 */
#ifndef SWARMFS_FS_FILEKEY_H
#define SWARMFS_FS_FILEKEY_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <ledger.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fs_cipher;
struct fs_drive;
struct fs_fh;
struct fs_readwin;

/* The cipher of e's content: *out NULL on a public drive or for empty content, else a
 * malloc'd cipher (free with fs_filekey_free). -EACCES when this node holds no key for
 * it (not a member when it was published), -EIO when its wrap does not open. */
int fs_filekey_cipher(struct fs_drive *d, const struct ledger_entry *e, struct fs_cipher **out);
/* The same, saying nothing when the key is missing (-EACCES): for a waiter that asks
 * again until a member's wrap arrives. */
int fs_filekey_cipher_quiet(struct fs_drive *d, const struct ledger_entry *e,
                            struct fs_cipher **out);
/* Whether a missing key may yet come: this node is a live member of a private drive, or
 * is joining it by invite, so a member's node will seal it the epoch keys (a newcomer's
 * first seconds). */
bool fs_filekey_may_come(struct fs_drive *d);
/* Wipe and free; NULL is a no-op. */
void fs_filekey_free(struct fs_cipher *c);

/* The name the content's torrent carries: the path's last component on a public drive,
 * the record nonce in hex on a private one. Returns 0 or -errno. */
int fs_content_name(struct fs_drive *d, const char *path, const struct ledger_entry *e, char *out,
                    size_t size);

/* Reply with [off, off + size) of h's content decrypted from the cache (read through
 * the cache's checks; no splice: the pages are plaintext only in the reply). 0 replied,
 * or -ENODATA and the like, not replied. Ciphertext not in the page cache is read around
 * it (O_DIRECT); a sequential reader's a 4 MiB tile at a time into the handle's slots
 * (fs_fh.win), checked and decrypted there 128 KiB at a time by the first request or
 * prefetch to need it, and served from there; the next two tiles read on this thread
 * after its reply. Whichever way, the bytes are checked as cache_read checks them
 * (cache_verify) before they are decrypted. FUSE worker threads (the engine's worker
 * for parked reads). */
int fs_reply_decrypted(fuse_req_t req, struct fs_drive *d, struct fs_fh *h, off_t off, size_t size);
/* Wipe and free a handle's tiles (fs_fh.win; NULL is a no-op), at its last put: no
 * request of the handle runs any more. Any thread. */
void fs_readwin_free(struct fs_readwin *w);

#endif
