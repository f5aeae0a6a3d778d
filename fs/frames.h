/*
 * fs/frames — ledger messages reassembled from the extension channel's fragments
 * (private to fs/). libtorrent drops a peer that sends a packet over 1 MiB and a ledger
 * message may be 8 MiB, so messages travel in fragments: one flag byte each (1: more
 * follows, 0: the last) and at most FS_FRAG_MAX bytes of the message.
 *
 * What a peer may hold here is bounded: one unfinished message a peer, at most
 * LEDGER_SYNC_MAX_MSG bytes, all peers together FS_FRAMES_TOTAL bytes, and an unfinished
 * message expires after FS_FRAMES_TIMEOUT_MS.
 *
 * Threads: caller serialises (the sync thread). Errors: -EBADMSG for a bad fragment or
 * a message over the cap, -ENOSPC when the total would pass its cap, -ENOMEM.
 */
#ifndef SWARMFS_FS_FRAMES_H
#define SWARMFS_FS_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define FS_FRAG_MAX          (900u * 1000u)
#define FS_FRAMES_TOTAL      (32u << 20)
#define FS_FRAMES_TIMEOUT_MS 30000

struct fs_frames;

int fs_frames_new(struct fs_frames **out);
void fs_frames_free(struct fs_frames *f); /* NULL is a no-op */
/* Add peer's fragment at time now_ms: 1 and the whole message in *out (caller frees)
 * when it was the last, 0 when more is to come, -errno (the peer's partial message is
 * forgotten: drop the peer). */
int fs_frames_add(struct fs_frames *f, uint64_t peer, const uint8_t *frag, size_t len,
                  int64_t now_ms, uint8_t **out, size_t *out_len);
/* Forget peer's unfinished message. */
void fs_frames_forget(struct fs_frames *f, uint64_t peer);
/* Forget the unfinished messages started before now_ms - FS_FRAMES_TIMEOUT_MS; the peer
 * of each to *out_peer, one a call: 1 while one was expired, 0 when none is left. */
int fs_frames_expire(struct fs_frames *f, int64_t now_ms, uint64_t *out_peer);
/* Bytes held in unfinished messages. */
size_t fs_frames_held(const struct fs_frames *f);

#endif
