/* Shared helpers of the ledger suites: temp drives, deterministic keys, a settable
 * clock, hand-made records and blocks (to feed the validator what submit refuses). */
#ifndef LEDGER_TESTUTIL_H
#define LEDGER_TESTUTIL_H

#include "ledger_priv.h"

#include <check.h>
#include <errno.h>

#define TU_T0 1700000000

extern int64_t tu_clock;
int64_t tu_now(void *ctx);

/* A fresh temp dir (removed by tu_cleanup). */
const char *tu_dir(void);
void tu_cleanup(void);
char *tu_path(const char *name); /* <dir>/<name>, malloc'd */

struct ledger_key *tu_key(uint8_t seed);
void tu_config(struct ledger_config *cfg, const char *file, const struct ledger_key *key,
               bool auto_produce);
/* A drive whose admin is admin and producers the given keys. */
struct ledger *tu_create(const char *file, const struct ledger_key *admin,
                         const struct ledger_key *const *producers, size_t n, bool auto_produce);
struct ledger *tu_create_ex(const char *file, const struct ledger_key *admin,
                            const struct ledger_key *const *producers, size_t n, bool auto_produce,
                            bool private_drive);
struct ledger *tu_join(const char *file, struct ledger *from, const struct ledger_key *key,
                       bool auto_produce);
void tu_content(struct ledger_content *c, uint32_t seed);

/* A record signed by key, as raw bytes (malloc'd) and parsed. */
uint8_t *tu_record(struct ledger *l, const struct ledger_key *key, enum ledger_rec_type t,
                   const char *path, const char *dest, const uint8_t prev[32], const uint8_t to[32],
                   struct rec *out, size_t *out_len);
/* A block on top of the current head of l (or on parent/height given), signed by key,
 * with the records given. time 0: the clock, or (on the head) a second past the head's
 * time when the clock has not moved past it. malloc'd wire bytes. */
uint8_t *tu_block(struct ledger *l, const struct ledger_key *key, const uint8_t *parent,
                  int64_t height, int64_t time, int64_t weight, uint8_t **recs, const size_t *lens,
                  size_t n, size_t *out_len);
/* Put a hand-made record into l's mempool without any check. */
void tu_inject(struct ledger *l, const struct rec *r, const uint8_t *raw, size_t len);
/* Copy every best-chain block of from (height >= 1) into to. */
void tu_copy_blocks(struct ledger *from, struct ledger *to);
void tu_digest(struct ledger *l, uint8_t out[32]);
int64_t tu_height(struct ledger *l);

/* The first column of sql's first row (COUNT(*), MAX(height)) as committed in file,
 * through a connection of its own: what a crash would leave. */
int64_t tu_on_disk(const char *file, const char *sql);

/* Run fn(ctx) on a thread of its own while another thread holds l's lock, and fail
 * the test, naming what, if fn has not returned within 15 s: it waits for the
 * lock. The lock is let go and both threads joined before this returns. */
void tu_without_lock(struct ledger *l, void (*fn)(void *ctx), void *ctx, const char *what);

#endif
