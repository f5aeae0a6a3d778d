/* A TCP relay for integration tests: it accepts on 127.0.0.1 and forwards each
 * connection to a target port there, recording every byte both ways, and it can attack
 * the members-only channel of a private drive that runs through it.
 *
 * It reads the BitTorrent framing of what it forwards (the 68-byte handshake, then
 * length-prefixed messages) and, in the BEP 10 extension messages of swarmfs's sync
 * channel ("swarmfs_sync", its id learned from the extension handshakes), counts the
 * sealed messages (first byte 0x01 after the fragment byte). A stream that is not plain
 * BitTorrent (libtorrent tries MSE obfuscation first) is closed before a byte of it is
 * forwarded: libtorrent then dials again in the clear, and the relay reads everything
 * that crosses it, as an eavesdropper on an unobfuscated link would.
 *
 * Threads: one of its own, started by relay_start and joined by relay_stop; the other
 * functions may be called from the test's thread at any time.
 * Errors: -errno. */
#ifndef SWARMFS_TEST_RELAY_H
#define SWARMFS_TEST_RELAY_H

#include <stddef.h>
#include <stdint.h>

enum relay_attack {
	RELAY_FLIP,   /* flip a bit of the 2nd sealed message from the target side */
	RELAY_REPLAY, /* send the 2nd sealed message from the client side twice */
};

struct relay;

/* Listen on a free port of 127.0.0.1 (its number to *out_port), forward to target. */
int relay_start(uint16_t target, struct relay **out, uint16_t *out_port);
/* Stop the thread, close every socket, free. NULL is a no-op. */
void relay_stop(struct relay *r);

/* Make the next connection that reaches its 2nd sealed message (in the attack's
 * direction) suffer attack; more calls queue more attacks, one connection each. */
void relay_arm(struct relay *r, enum relay_attack attack);
/* How many armed attacks were carried out so far. */
int relay_attacks_done(struct relay *r);

struct relay_stats {
	int conns;           /* connections accepted */
	int plain_bt;        /* of them, streams that began with the BitTorrent handshake */
	int obfuscated;      /* of them, streams that did not (closed) */
	int sync_conns;      /* of them, streams with the swarmfs_sync channel */
	size_t sealed;       /* sealed sync messages seen, both ways */
	size_t sealed_bytes; /* their bytes */
	size_t plain_sync;   /* sync messages not sealed (the handshake's hellos) */
};
void relay_stats(struct relay *r, struct relay_stats *out);

/* A copy of every byte forwarded so far, both ways (free it). */
int relay_capture(struct relay *r, uint8_t **out, size_t *out_len);

#endif
