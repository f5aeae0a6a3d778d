/* The in-memory transport of the sync suites (sync_net.h). */
#include "sync_net.h"

#include <stdlib.h>
#include <string.h>

void enqueue(struct net *net, int from, int to, const uint8_t *buf, size_t len)
{
	if (net->qn == net->qcap) {
		net->qcap = net->qcap ? net->qcap * 2 : 64;
		net->q = realloc(net->q, net->qcap * sizeof *net->q);
		ck_assert_ptr_nonnull(net->q);
	}
	net->q[net->qn].from = from;
	net->q[net->qn].to = to;
	net->q[net->qn].buf = malloc(len ? len : 1);
	memcpy(net->q[net->qn].buf, buf, len);
	net->q[net->qn].len = len;
	net->qn++;
	net->sent[from][to]++;
}

static void op_send(uint64_t peer, const uint8_t *buf, size_t len, void *ctx)
{
	struct node *nd = ctx;

	ck_assert_uint_le(len, LEDGER_SYNC_MAX_MSG);
	enqueue(nd->net, nd->idx, (int)peer, buf, len);
}

static void op_drop(uint64_t peer, const char *why, bool ban, void *ctx)
{
	struct node *nd = ctx;

	(void)why;
	nd->net->dropped[nd->idx][peer]++;
	nd->net->banned[nd->idx][peer] += ban;
	nd->net->link[nd->idx][peer] = nd->net->link[peer][nd->idx] = false;
	if (nd->net->nodes[peer].s)
		ledger_sync_peer_gone(nd->net->nodes[peer].s, (uint64_t)nd->idx);
}

static const struct ledger_sync_ops ops = { op_send, op_drop };

void node_add(struct net *net, struct ledger *l)
{
	struct node *nd = &net->nodes[net->n];

	nd->net = net;
	nd->idx = net->n++;
	nd->l = l;
	ck_assert_int_eq(ledger_sync_new(l, &ops, nd, &nd->s), 0);
}

void connect_nodes(struct net *net, int a, int b)
{
	net->link[a][b] = net->link[b][a] = true;
	ck_assert_int_eq(ledger_sync_peer_connected(net->nodes[a].s, (uint64_t)b), 0);
	ck_assert_int_eq(ledger_sync_peer_connected(net->nodes[b].s, (uint64_t)a), 0);
}

bool pump_one(struct net *net)
{
	if (net->qhead < net->qn) {
		struct msg m = net->q[net->qhead++];

		if (net->link[m.from][m.to] && !net->nodes[m.to].hostile) {
			if (net->tap)
				net->tap(net, &m, net->tap_ctx);
			net->got[m.to][m.from]++;
			ledger_sync_message(net->nodes[m.to].s, (uint64_t)m.from, m.buf, m.len);
			net->delivered++;
		}
		free(m.buf);
		if (net->qhead == net->qn)
			net->qhead = net->qn = 0;
	}
	return net->qhead < net->qn;
}

void pump(struct net *net)
{
	while (pump_one(net))
		;
}

void net_free(struct net *net)
{
	for (size_t i = net->qhead; i < net->qn; i++)
		free(net->q[i].buf);
	free(net->q);
	for (int i = 0; i < net->n; i++) {
		ledger_sync_free(net->nodes[i].s);
		ledger_free(net->nodes[i].l);
	}
}
