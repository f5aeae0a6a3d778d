/*
 * Buffers for bulk I/O (private to fs/): a packer's batches, a reader's tiles, the
 * plaintext of a read's reply. On this VM, whose memory its host backs page by page,
 * every first touch of a 4 KiB page that was handed back is a host fault: a private
 * drive's 512 MiB publish spent 85 ms in the faults of its packer's new buffers, and a
 * private cold read took twice the public one's faults (16-19 k against 7-8 k), from its
 * tile buffers and a buffer for each request read alone.
 *
 * fs_buffer_new: len bytes aligned for O_DIRECT (4096), and a buffer of 2 MiB or more
 * aligned to 2 MiB and advised into transparent huge pages (Debian's mode is madvise):
 * 4 faults for 8 MiB, not 2048. Free it with free(). NULL: out of memory.
 *
 * fs_buffer_thread: the calling thread's own buffer of at least len bytes, kept for the
 * thread's next call and freed when the thread exits; whoever uses it wipes what it put
 * there before it returns. NULL: out of memory. Any thread.
 */
#ifndef SWARMFS_FS_BUFFER_H
#define SWARMFS_FS_BUFFER_H

#include <stddef.h>
#include <stdint.h>

/* O_DIRECT's alignment of buffer, offset and length (a page covers every device's). */
#define FS_DIRECT_ALIGN 4096U

/* n rounded up to FS_DIRECT_ALIGN: what an O_DIRECT read of n bytes needs room for. */
static inline size_t fs_direct_round(size_t n)
{
	return (n + FS_DIRECT_ALIGN - 1) / FS_DIRECT_ALIGN * FS_DIRECT_ALIGN;
}

uint8_t *fs_buffer_new(size_t len);
uint8_t *fs_buffer_thread(size_t len);

#endif
