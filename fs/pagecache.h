/*
 * The kernel's page cache of a file (private to fs/): how much of a range it holds
 * (cachestat(2), Linux 6.5).
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

#endif
