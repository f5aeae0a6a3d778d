/* An in-memory transport between ledger_sync state machines: a message queue, links
 * that a drop cuts, and counters the suites assert on. */
#ifndef SYNC_NET_H
#define SYNC_NET_H

#include "ledger_testutil.h"

#define MAX_NODES 5

struct msg {
	int from, to;
	uint8_t *buf;
	size_t len;
};

struct net;

struct node {
	struct net *net;
	int idx;
	struct ledger *l;
	struct ledger_sync *s;
	bool hostile; /* its messages are replaced by the test */
};

struct net {
	struct node nodes[MAX_NODES];
	int n;
	bool link[MAX_NODES][MAX_NODES];   /* connected and not dropped */
	int dropped[MAX_NODES][MAX_NODES]; /* times a dropped b */
	int banned[MAX_NODES][MAX_NODES];  /* ... of which for misbehaving */
	int got[MAX_NODES][MAX_NODES];     /* messages b delivered to a */
	int sent[MAX_NODES][MAX_NODES];    /* messages a queued for b */
	struct msg *q;
	size_t qn, qcap, qhead;
	size_t delivered;
	/* a tap sees every message delivered (may be NULL) */
	void (*tap)(struct net *net, const struct msg *m, void *ctx);
	void *tap_ctx;
};

void enqueue(struct net *net, int from, int to, const uint8_t *buf, size_t len);
void node_add(struct net *net, struct ledger *l);
void connect_nodes(struct net *net, int a, int b);
/* Deliver until quiet. */
void pump(struct net *net);
/* Deliver the next message, if any; true while more wait. */
bool pump_one(struct net *net);
void net_free(struct net *net);

#endif
