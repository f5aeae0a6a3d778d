/*
 * cache — the on-disk piece store of a drive: a size cap, least-recently-used eviction,
 * pins for pieces being read and for content this node published, persistence across
 * restarts. Only verified data is served.
 *
 * Depends on libc only; never on swarm/, ledger/ or fs/. Events (a piece evicted) go
 * upward through callbacks that fs/ registers.
 *
 * Threads: thread-safe unless a function says otherwise.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_CACHE_H
#define SWARMFS_CACHE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default size cap of a drive's cache: 10 GiB (DESIGN.md §6). */
#define CACHE_DEFAULT_SIZE (10ULL << 30)

/* Parse a human size ("512M", "10G", "4096") into bytes in *out_bytes.
 * Returns 0, or -EINVAL for a malformed or zero size, -ERANGE on overflow.
 * Any thread. */
int cache_size_parse(const char *text, uint64_t *out_bytes);

#ifdef __cplusplus
}
#endif
#endif
