/* Making keys and drives for integration tests through the ledger API, the same way
 * `swarmfs init` lays them out (DESIGN.md §3), before a mount opens them. */
#ifndef SWARMFS_TEST_DRIVE_UTIL_H
#define SWARMFS_TEST_DRIVE_UTIL_H

#include <ledger.h>

/* <home>/keys/<name>.key, made if missing; its public key into out_pub. */
int itest_key(const char *home, const char *name, uint8_t out_pub[LEDGER_KEY_LEN]);

/* A new single-producer drive named name, administered by key `key` (made if missing),
 * in <home>/drives/<id>/ledger.db; its id (hex) into out_id. */
int itest_drive_create(const char *home, const char *name, const char *key,
		       char out_id[LEDGER_HEX_LEN]);

/* Open that drive's ledger with key `key` (NULL: read-only) for setting up records;
 * close it with itest_drive_close() before mounting. */
int itest_drive_open(const char *home, const char *id, const char *key, struct ledger **out);
void itest_drive_close(struct ledger *l);

/* Submit a claim of path with made-up content of length bytes (the namespace tests
 * need no swarm) owned by the ledger's key. */
int itest_claim(struct ledger *l, const char *path, uint64_t length, uint32_t mode,
		int64_t mtime_s);

#endif
