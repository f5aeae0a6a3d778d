/*
 * ledger — the ownership ledger of a drive: canonical bencode, Ed25519 keys, signed
 * records, blocks, the hash chain with fork choice, its SQLite store and the sync
 * state machine. It decides which paths a drive exposes and who owns them.
 *
 * Depends on SQLite and OpenSSL (libcrypto) only; never on swarm/, cache/ or fs/.
 * Events go upward through callbacks that fs/ registers.
 *
 * Threads: a ledger handle holds its single SQLite connection behind its own lock and
 * may be called from any thread; it never calls out while holding that lock.
 * Errors: >= 0 on success, -errno on failure.
 */
#ifndef SWARMFS_LEDGER_H
#define SWARMFS_LEDGER_H

#ifdef __cplusplus
extern "C" {
#endif

/* The SQLite library version this build runs against, e.g. "3.40.1".
 * Returns a static string. Any thread. */
const char *ledger_sqlite_version(void);

#ifdef __cplusplus
}
#endif
#endif
