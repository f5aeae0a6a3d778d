/* A recording, attacking TCP relay for integration tests (see relay.h). */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_CONNS   32
#define RELAY_ATTACKS 8
#define BT_HANDSHAKE  68 /* 19 "BitTorrent protocol" reserved[8] infohash[20] peer id[20] */
#define SYNC_NAME     "12:swarmfs_synci"
#define SEALED_MARK   0x01

/* One direction of one connection: dir 0 client -> target, 1 target -> client. */
struct way {
	uint8_t *buf; /* received, not yet forwarded (an incomplete message) */
	size_t len, cap;
	int stage;  /* 0 before the handshake, 1 messages */
	int ext_id; /* the id of the sync channel in this direction's messages, 0 unknown */
	bool mid;   /* a sync message's fragments are coming */
	int sealed; /* sealed sync messages this way */
};

struct conn {
	int fd[2]; /* [0] the client, [1] the target; -1 closed */
	struct way w[2];
	bool attacked, counted_bt, counted_sync;
};

struct relay {
	int lfd, wake[2];
	uint16_t target;
	pthread_t thread;
	pthread_mutex_t mu; /* guards what the test reads: capture, stats, attacks */
	bool stop;
	struct conn conns[RELAY_CONNS];
	uint8_t *cap;
	size_t cap_len, cap_cap;
	struct relay_stats st;
	enum relay_attack armed[RELAY_ATTACKS];
	int n_armed, n_done;
};

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Record and forward n bytes the way dir of c (lock not held). */
static int forward(struct relay *r, struct conn *c, int dir, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&r->mu);
	if (r->cap_len + n > r->cap_cap) {
		size_t nc = (r->cap_len + n) * 2;
		uint8_t *nb = realloc(r->cap, nc);

		if (nb) {
			r->cap = nb;
			r->cap_cap = nc;
		}
	}
	if (r->cap_len + n <= r->cap_cap) {
		memcpy(r->cap + r->cap_len, p, n);
		r->cap_len += n;
	}
	pthread_mutex_unlock(&r->mu);
	return send_all(c->fd[1 - dir], p, n);
}

/* The id a peer gives the sync channel in its extension handshake, 0 if none. */
static int sync_id(const uint8_t *d, size_t len)
{
	const uint8_t *p = memmem(d, len, SYNC_NAME, strlen(SYNC_NAME));
	int id = 0;

	if (!p)
		return 0;
	for (p += strlen(SYNC_NAME); p < d + len && *p >= '0' && *p <= '9'; p++)
		id = id * 10 + (*p - '0');
	return p < d + len && *p == 'e' && id > 0 && id < 256 ? id : 0;
}

/* Look at one whole message (length prefix included) going the way dir; carry out an
 * armed attack on it. Returns how many times to forward it (lock not held). */
static int inspect(struct relay *r, struct conn *c, int dir, uint8_t *m, size_t n)
{
	struct way *w = &c->w[dir];

	if (n < 6 || m[4] != 20)
		return 1; /* not an extension message */
	if (m[5] == 0) {  /* an extension handshake: the id messages to its sender carry */
		int id = sync_id(m + 6, n - 6);

		c->w[1 - dir].ext_id = id ? id : c->w[1 - dir].ext_id;
		pthread_mutex_lock(&r->mu);
		if (id && !c->counted_sync) {
			c->counted_sync = true;
			r->st.sync_conns++;
		}
		pthread_mutex_unlock(&r->mu);
		return 1;
	}
	if (!w->ext_id || m[5] != w->ext_id || n < 7)
		return 1;
	bool start = !w->mid, more = m[6] != 0;
	int times = 1;

	w->mid = more;
	if (!start)
		return 1;
	pthread_mutex_lock(&r->mu);
	if (n >= 8 && m[7] == SEALED_MARK) {
		w->sealed++;
		r->st.sealed++;
		r->st.sealed_bytes += n - 7;
		/* the 2nd sealed message: the first after the handshake's auth */
		enum relay_attack a = r->n_done < r->n_armed ? r->armed[r->n_done] : RELAY_FLIP;
		int want_dir = a == RELAY_FLIP ? 1 : 0;

		if (w->sealed == 2 && !more && !c->attacked && r->n_done < r->n_armed &&
		    dir == want_dir) {
			c->attacked = true;
			r->n_done++;
			if (a == RELAY_FLIP)
				m[n - 1] ^= 0x01; /* in the tag, or the last ciphertext byte */
			else
				times = 2;
		}
	} else {
		r->st.plain_sync++;
	}
	pthread_mutex_unlock(&r->mu);
	return times;
}

/* Forward what can be forwarded of the way dir of c. <0 to close the connection. */
static int pump(struct relay *r, struct conn *c, int dir)
{
	struct way *w = &c->w[dir];
	size_t off = 0;
	int rc = 0;

	if (w->stage == 0 && w->len >= 1) {
		if (w->buf[0] != 19 ||
		    (w->len >= 20 && memcmp(w->buf + 1, "BitTorrent protocol", 19))) {
			/* obfuscated (MSE): closed unread, so libtorrent retries in the clear */
			pthread_mutex_lock(&r->mu);
			r->st.obfuscated++;
			pthread_mutex_unlock(&r->mu);
			return -EPROTO;
		}
		if (w->len >= BT_HANDSHAKE) {
			w->stage = 1;
			pthread_mutex_lock(&r->mu);
			if (!c->counted_bt) {
				c->counted_bt = true;
				r->st.plain_bt++;
			}
			pthread_mutex_unlock(&r->mu);
			rc = forward(r, c, dir, w->buf, BT_HANDSHAKE);
			off = BT_HANDSHAKE;
		}
	}
	while (!rc && w->stage == 1 && w->len - off >= 4) {
		uint32_t be;

		memcpy(&be, w->buf + off, 4);
		size_t n = 4 + (size_t)ntohl(be);

		if (w->len - off < n)
			break;
		int times = inspect(r, c, dir, w->buf + off, n);

		for (int i = 0; i < times && !rc; i++)
			rc = forward(r, c, dir, w->buf + off, n);
		off += n;
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return rc;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
		free(c->w[i].buf);
	}
	memset(c, 0, sizeof *c);
	c->fd[0] = c->fd[1] = -1;
}

static void accept_one(struct relay *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(r->target) };
	int cfd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), tfd;
	struct conn *c = NULL;

	if (cfd < 0)
		return;
	for (int i = 0; i < RELAY_CONNS && !c; i++)
		if (r->conns[i].fd[0] < 0)
			c = &r->conns[i];
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c || tfd < 0 || connect(tfd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(cfd);
		if (tfd >= 0)
			close(tfd);
		return;
	}
	c->fd[0] = cfd;
	c->fd[1] = tfd;
	pthread_mutex_lock(&r->mu);
	r->st.conns++;
	pthread_mutex_unlock(&r->mu);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;

	for (;;) {
		struct pollfd pf[2 + 2 * RELAY_CONNS];
		int n = 0;

		pthread_mutex_lock(&r->mu);
		bool stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		pf[n++] = (struct pollfd){ .fd = r->wake[0], .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
		for (int i = 0; i < RELAY_CONNS; i++)
			for (int d = 0; d < 2; d++)
				pf[n++] =
				    (struct pollfd){ .fd = r->conns[i].fd[d], .events = POLLIN };
		if (poll(pf, (nfds_t)n, 200) <= 0)
			continue;
		if (pf[1].revents & POLLIN)
			accept_one(r);
		for (int i = 0; i < RELAY_CONNS; i++) {
			struct conn *c = &r->conns[i];

			for (int d = 0; d < 2 && c->fd[0] >= 0; d++) {
				struct way *w = &c->w[d];

				if (!pf[2 + 2 * i + d].revents)
					continue;
				if (w->cap - w->len < 65536) {
					uint8_t *nb = realloc(w->buf, w->cap + 131072);

					if (!nb) {
						conn_close(c);
						break;
					}
					w->buf = nb;
					w->cap += 131072;
				}
				ssize_t k = recv(c->fd[d], w->buf + w->len, w->cap - w->len, 0);

				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0) {
					conn_close(c);
					break;
				}
				w->len += (size_t)k;
				if (pump(r, c, d) < 0)
					conn_close(c);
			}
		}
	}
	return NULL;
}

int relay_start(uint16_t target, struct relay **out, uint16_t *out_port)
{
	struct relay *r = calloc(1, sizeof *r);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	int err;

	if (!r)
		return -ENOMEM;
	for (int i = 0; i < RELAY_CONNS; i++)
		r->conns[i].fd[0] = r->conns[i].fd[1] = -1;
	r->target = target;
	pthread_mutex_init(&r->mu, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(r->lfd, 16) < 0 || getsockname(r->lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    pipe2(r->wake, O_CLOEXEC) < 0) {
		err = -errno;
		if (r->lfd >= 0)
			close(r->lfd);
		free(r);
		return err;
	}
	if ((err = -pthread_create(&r->thread, NULL, relay_main, r))) {
		close(r->lfd);
		close(r->wake[0]);
		close(r->wake[1]);
		free(r);
		return err;
	}
	*out_port = ntohs(a.sin_port);
	*out = r;
	return 0;
}

void relay_stop(struct relay *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_mutex_unlock(&r->mu);
	if (write(r->wake[1], "x", 1) < 0) {
		/* the poll's timeout wakes it all the same */
	}
	pthread_join(r->thread, NULL);
	for (int i = 0; i < RELAY_CONNS; i++)
		conn_close(&r->conns[i]);
	close(r->lfd);
	close(r->wake[0]);
	close(r->wake[1]);
	pthread_mutex_destroy(&r->mu);
	free(r->cap);
	free(r);
}

void relay_arm(struct relay *r, enum relay_attack attack)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_armed < RELAY_ATTACKS)
		r->armed[r->n_armed++] = attack;
	pthread_mutex_unlock(&r->mu);
}

int relay_attacks_done(struct relay *r)
{
	pthread_mutex_lock(&r->mu);
	int n = r->n_done;
	pthread_mutex_unlock(&r->mu);
	return n;
}

void relay_stats(struct relay *r, struct relay_stats *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->st;
	pthread_mutex_unlock(&r->mu);
}

int relay_capture(struct relay *r, uint8_t **out, size_t *out_len)
{
	pthread_mutex_lock(&r->mu);
	uint8_t *c = malloc(r->cap_len + 1);

	if (c && r->cap_len)
		memcpy(c, r->cap, r->cap_len);
	*out_len = r->cap_len;
	pthread_mutex_unlock(&r->mu);
	if (!c)
		return -ENOMEM;
	*out = c;
	return 0;
}
