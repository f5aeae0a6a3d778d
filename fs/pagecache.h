/*
 * The kernel's page cache of a file (private to fs/): how much of a range it holds
 * (cachestat(2), Linux 6.5), and asking it to read a range in ahead of use.
 *
 * Threads: any; no state. Errors: -errno of the system call (-ENOSYS: a kernel without
 * cachestat; the caller decides what not knowing means).
 */
#ifndef SWARMFS_FS_PAGECACHE_H
#define SWARMFS_FS_PAGECACHE_H

#include <stdint.h>

/* The bytes of [off, off + len) of fd in the page cache (len 0: to the end of the
 * file), counted in whole pages; or -errno. */
int64_t fs_pagecache_held(int fd, uint64_t off, uint64_t len);

/* Have the kernel read [0, len) of the file at path into the page cache, in the
 * background: the reads are started (POSIX_FADV_WILLNEED, a span at a time, since the
 * kernel reads at most its read-ahead window per call) and not waited for. 0, or
 * -errno of the open. */
int fs_pagecache_warm(const char *path, uint64_t len);

#endif
