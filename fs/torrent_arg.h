/* A FILE.torrent|MAGNET argument of swarmfs add and swarmfs mount (private to fs/),
 * checked before anything waits on a swarm, and the exit codes of those commands.
 * Main thread. */
#ifndef SWARMFS_FS_TORRENT_ARG_H
#define SWARMFS_FS_TORRENT_ARG_H

#include <stdbool.h>
#include <stddef.h>

/* Exit codes of the commands that take a torrent (0 done, 1 other failures,
 * FS_EXIT_USAGE bad arguments); FS_TORRENT_EXIT_HELP documents them for --help. */
#define FS_EXIT_NOT_TORRENT 3 /* the file is not a torrent (bad bencode at byte N, ...) */
#define FS_EXIT_BAD_MAGNET  4 /* the magnet's btih/btmh is malformed */
#define FS_EXIT_NO_METADATA 5 /* no peer gave a magnet's metadata in time */
#define FS_EXIT_NO_DEST     6 /* the destination directory does not exist */
#define FS_TORRENT_EXIT_HELP                                                                       \
	"exit codes:\n"                                                                            \
	"  0  done\n"                                                                              \
	"  1  failed (the message says why)\n"                                                     \
	"  2  bad arguments\n"                                                                     \
	"  3  not a torrent file (bad bencode at byte N, or not a valid torrent)\n"                \
	"  4  a magnet whose btih is not 40 hex or 32 base32 digits (or btmh not 1220+64 hex)\n"   \
	"  5  no metadata for a magnet after 30 s (is anyone seeding it?)\n"                       \
	"  6  the destination directory does not exist\n"

/* Whether arg is a magnet link (else a path to a .torrent file). */
bool fs_torrent_arg_is_magnet(const char *arg);
/* Check arg: a magnet's exact topics (every xt= is urn:btih: with 40 hex or 32 base32
 * digits, or urn:btmh:1220 with 64 hex digits; at least one), or a .torrent file that
 * parses. Prints "swarmfs CMD: ..." to stderr and returns the exit code on a problem,
 * 0 if fine. A file's absolute path goes to abs (abs_len bytes; the magnet itself for
 * a magnet); its bytes to *out_bytes and *out_len when not NULL (free with free()). */
int fs_torrent_arg_check(const char *cmd, const char *arg, char *abs, size_t abs_len,
                         void **out_bytes, size_t *out_len);

#endif
