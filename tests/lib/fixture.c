#include "fixture.h"

#include <check.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Check scales its own timeouts by CK_TIMEOUT_MULTIPLIER (sanitizer builds); the
 * fixtures' internal waits follow the same factor. */
static int scaled_ms(int ms)
{
	return fixture_scaled_ms(ms);
}

int64_t fixture_now_ms(void)
{
	return now_ms();
}

void fixture_sleep_ms(int ms)
{
	sleep_ms(ms);
}

int fixture_scaled_ms(int ms)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = m ? strtod(m, NULL) : 1.0;

	return f > 1.0 ? (int)(ms * f) : ms;
}

void fixture_test_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1); /* the runner died before we could ask to follow it */
}

/* In a forked child before exec: a handler inherited from the test runner (Check's
 * SIGTERM handler signals its whole process group) must never run here. */
static void child_reset_signals(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int fixture_run_suite(struct Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- temporary directories and files ---- */

/* Directories made by this process, removed at exit even when a failed assertion
 * ends the test before its teardown (Check's fork mode exits the test process). */
static char *made_dirs[64];
static int n_made;
static pid_t made_by;

static void remove_made_dirs(void)
{
	if (getpid() != made_by)
		return; /* a forked child exiting: the dirs are its parent's */
	for (int i = 0; i < n_made; i++) {
		if (made_dirs[i])
			fixture_tmpdir_remove(made_dirs[i]);
		free(made_dirs[i]);
	}
	n_made = 0;
}

int fixture_tmpdir_new(const char *tag, char **out_path)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/swarmfs-test-%s-XXXXXX", base, tag) < 0)
		return -ENOMEM;
	if (!mkdtemp(p)) {
		int err = -errno;

		free(p);
		return err;
	}
	if (made_by != getpid()) {
		made_by = getpid();
		n_made = 0;
		atexit(remove_made_dirs);
	}
	if (n_made < 64)
		made_dirs[n_made++] = strdup(p);
	*out_path = p;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP ? rmdir(path) : unlink(path))
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int fixture_tmpdir_remove(const char *path)
{
	const char *last = strrchr(path, '/');
	int rc;

	last = last ? last + 1 : path;
	if (strncmp(last, "swarmfs-test-", 13) != 0)
		return -EPERM;
	if (getenv("SWARMFS_KEEP_TMP")) { /* debugging a failure: logs and homes stay */
		fprintf(stderr, "fixture: kept %s (SWARMFS_KEEP_TMP)\n", path);
		return 0;
	}
	rc = nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (rc == -1)
		return errno == ENOENT ? 0 : -errno;
	return rc;
}

int fixture_file_random(const char *path, uint64_t len, uint32_t seed)
{
	static const size_t chunk = 1 << 20;
	uint64_t x = 0x9E3779B97F4A7C15ULL ^ seed;
	uint64_t *buf = malloc(chunk);
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		free(buf);
		return err;
	}
	while (len > 0) {
		size_t n = len < chunk ? (size_t)len : chunk;

		for (size_t i = 0; i < chunk / 8; i++) { /* xorshift64 */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, n) != (ssize_t)n) {
			err = errno ? -errno : -EIO;
			break;
		}
		len -= n;
	}
	if (close(fd) < 0 && !err)
		err = -errno;
	free(buf);
	return err;
}

int fixture_file_sha256(const char *path, char out_hex[65])
{
	unsigned char buf[65536], md[32];
	EVP_MD_CTX *ctx;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		err = -ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out_hex + 2 * i, "%02x", md[i]);
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return err;
}

/* ---- ports ---- */

static int bind_loopback(int type, uint16_t port, uint16_t *out_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int s = socket(AF_INET, type | SOCK_CLOEXEC, 0), err;

	if (s < 0)
		return -errno;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		err = -errno;
		close(s);
		return err;
	}
	*out_port = ntohs(a.sin_port);
	return s;
}

int fixture_port_free(uint16_t *out_port)
{
	for (int tries = 0; tries < 64; tries++) {
		uint16_t port = 0, same = 0;
		int t = bind_loopback(SOCK_STREAM, 0, &port), u;

		if (t < 0)
			return t;
		u = bind_loopback(SOCK_DGRAM, port, &same);
		close(t);
		if (u >= 0) {
			close(u);
			*out_port = port;
			return 0;
		}
	}
	return -EADDRINUSE;
}

/* ---- commands with a timeout ---- */

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -EIO;
}

int fixture_run(char *const argv[], int timeout_ms, char **out_output)
{
	int pfd[2], st, err = 0;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int64_t deadline = now_ms() + scaled_ms(timeout_ms);
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n <= 0)
			break; /* EOF: every writer (the child and what it forked) is gone */
		len += (size_t)n;
	}
	close(pfd[0]);
	if (err == -ETIMEDOUT)
		kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			st = 0;
			break;
		}
	}
	if (buf)
		buf[len] = '\0';
	if (out_output)
		*out_output = buf ? buf : strdup("");
	else
		free(buf);
	return err ? err : decode_status(st);
}

int fixture_sh(int timeout_ms, char **out_output, const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	rc = fixture_run(argv, timeout_ms, out_output);
	free(cmd);
	return rc;
}

/* ---- long-running children under a guardian ---- */

struct fixture_proc {
	pid_t guardian;
	pid_t child;
	bool done;
	int status;
};

/* The guardian: forks the child, then waits for either the child's exit (and exits
 * with its status) or SIGTERM, which its PR_SET_PDEATHSIG delivers when the test
 * process dies: then it stops the child's process group, politely first. */
static void guardian_main(char *const argv[], const char *log_path, int report_fd)
{
	sigset_t set;
	siginfo_t info;
	pid_t child;
	int st;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	child = fork();
	if (child == 0) {
		int fd = open(log_path ? log_path : "/dev/null",
		              O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		child_reset_signals();
		/* should the guardian itself be SIGKILLed, the child still hears of it
		 * (a program that changes its uid, as opentracker does, loses this) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (child < 0)
		_exit(126);
	setpgid(child, child); /* also here: no race with the child's own call */
	if (write(report_fd, &child, sizeof child) != sizeof child)
		_exit(126);
	close(report_fd);
	for (;;) {
		if (sigwaitinfo(&set, &info) < 0)
			continue;
		if (info.si_signo == SIGCHLD) {
			if (waitpid(child, &st, WNOHANG) == child)
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			continue;
		}
		kill(-child, SIGTERM);
		kill(child, SIGTERM);
		struct timespec ts = { 10, 0 };
		sigset_t chld;

		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		if (sigtimedwait(&chld, &info, &ts) < 0) {
			kill(-child, SIGKILL);
			kill(child, SIGKILL);
		}
		waitpid(child, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

int fixture_proc_start(char *const argv[], const char *log_path, struct fixture_proc **out)
{
	struct fixture_proc *p = calloc(1, sizeof *p);
	pid_t parent = getpid();
	int pfd[2], err;

	if (!p)
		return -ENOMEM;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err = -errno;
		free(p);
		return err;
	}
	p->guardian = fork();
	if (p->guardian < 0) {
		err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		free(p);
		return err;
	}
	if (p->guardian == 0) {
		close(pfd[0]);
		/* Its own process group: Check SIGKILLs the test's whole group after each
		 * test (and on a timeout), which would take the guardian before it could
		 * stop its child. Its parent's death still reaches it, by PDEATHSIG. */
		setpgid(0, 0);
		/* The runner's handlers would act on the test's process group; the
		 * guardian blocks what it waits for and wants defaults for the rest. */
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		guardian_main(argv, log_path, pfd[1]);
		_exit(1);
	}
	close(pfd[1]);
	if (read(pfd[0], &p->child, sizeof p->child) != sizeof p->child) {
		close(pfd[0]);
		fixture_proc_stop(p, 1000);
		return -ECHILD;
	}
	close(pfd[0]);
	*out = p;
	return 0;
}

pid_t fixture_proc_pid(const struct fixture_proc *p)
{
	return p->child;
}

static bool proc_reap(struct fixture_proc *p, bool block)
{
	int st;
	pid_t r;

	if (p->done)
		return true;
	do
		r = waitpid(p->guardian, &st, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == p->guardian) {
		p->done = true;
		p->status = decode_status(st);
	} else if (r < 0) {
		p->done = true;
		p->status = -ECHILD;
	}
	return p->done;
}

bool fixture_proc_alive(struct fixture_proc *p)
{
	return !proc_reap(p, false);
}

int fixture_proc_signal(struct fixture_proc *p, int sig)
{
	if (proc_reap(p, false))
		return -ESRCH;
	return kill(p->child, sig) < 0 ? -errno : 0;
}

int fixture_proc_wait(struct fixture_proc *p, int timeout_ms)
{
	int64_t deadline = now_ms() + scaled_ms(timeout_ms);

	while (!proc_reap(p, false)) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(5);
	}
	return p->status;
}

int fixture_proc_stop(struct fixture_proc *p, int timeout_ms)
{
	int status;

	if (!p)
		return 0;
	if (!proc_reap(p, false)) {
		kill(p->child, SIGTERM);
		if (fixture_proc_wait(p, timeout_ms) == -ETIMEDOUT) {
			kill(-p->child, SIGKILL);
			kill(p->child, SIGKILL);
			proc_reap(p, true);
		}
	}
	status = p->status;
	free(p);
	return status;
}

/* ---- opentracker ---- */

struct fixture_tracker {
	struct fixture_proc *proc;
	char *dir;
	uint16_t port;
	char url[64];
};

/* One HTTP/1.0 GET to 127.0.0.1:port; the response (headers and body) in *out. */
static int http_get(uint16_t port, const char *path, int timeout_ms, char **out)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[512], *buf = NULL;
	size_t len = 0;
	int s, err = 0;
	int64_t deadline = now_ms() + timeout_ms;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		err = -errno;
		close(s);
		return err;
	}
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(s, req, (size_t)n) != n) {
		err = -EIO;
		goto out;
	}
	buf = malloc(8192);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		r = read(s, buf + len, 8191 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == 8191)
			break;
	}
	buf[len] = '\0';
out:
	close(s);
	if (err)
		free(buf);
	else
		*out = buf;
	return err;
}

static int hex_to_urlenc(const char *hex, char out[61])
{
	size_t n = strlen(hex);

	if (n != 40 && n != 64)
		return -EINVAL;
	for (int i = 0; i < 20; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		sprintf(out + 3 * i, "%%%02X", v);
	}
	return 0;
}

bool fixture_tracker_accepts(const struct fixture_tracker *t, const char *hex)
{
	static const char *const q = "&peer_id=-SF0000-fixturecheck&port=1&uploaded=0"
	                             "&downloaded=0&left=0&numwant=0&compact=1";
	char enc[61], path[320], *resp = NULL;
	bool ok;

	if (hex_to_urlenc(hex, enc) < 0)
		return false;
	/* A plain announce: opentracker skips its whitelist for event=stopped, so only
	 * this form tells. Accepted, it adds our placeholder peer 127.0.0.1:1, which
	 * the stopped announce below takes out again. */
	snprintf(path, sizeof path, "/announce?info_hash=%s%s", enc, q);
	if (http_get(t->port, path, 2000, &resp) < 0)
		return false;
	ok = strstr(resp, " 200 ") && !strstr(resp, "failure reason");
	free(resp);
	if (ok) {
		snprintf(path, sizeof path, "/announce?info_hash=%s%s&event=stopped", enc, q);
		if (http_get(t->port, path, 2000, &resp) == 0)
			free(resp);
	}
	return ok;
}

int fixture_tracker_start(const char *dir, struct fixture_tracker **out)
{
	struct fixture_tracker *t = calloc(1, sizeof *t);
	char port[8], log[PATH_MAX], wl[PATH_MAX];
	int err, fd;

	if (!t)
		return -ENOMEM;
	t->dir = strdup(dir);
	if (!t->dir) {
		free(t);
		return -ENOMEM;
	}
	/* opentracker chroots into dir and drops to nobody: the whitelist is named
	 * relative to the chroot, and both must be readable by nobody. */
	snprintf(wl, sizeof wl, "%s/whitelist", dir);
	snprintf(log, sizeof log, "%s/opentracker.log", dir);
	if ((err = mkdir(dir, 0755)) < 0 && errno != EEXIST) {
		err = -errno;
		goto fail;
	}
	chmod(dir, 0755);
	fd = open(wl, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	close(fd);
	for (int attempt = 0; attempt < 5; attempt++) {
		err = fixture_port_free(&t->port);
		if (err < 0)
			goto fail;
		snprintf(port, sizeof port, "%u", t->port);
		char *argv[] = { "opentracker", "-i", "127.0.0.1", "-p", port,        "-P",
			         port,          "-d", t->dir,      "-w", "whitelist", NULL };
		err = fixture_proc_start(argv, log, &t->proc);
		if (err < 0)
			goto fail;
		int64_t deadline = now_ms() + scaled_ms(5000);
		while (now_ms() < deadline && fixture_proc_alive(t->proc)) {
			char *resp = NULL;

			if (http_get(t->port, "/", 500, &resp) == 0) {
				free(resp);
				snprintf(t->url, sizeof t->url, "http://127.0.0.1:%u/announce",
				         t->port);
				*out = t;
				return 0;
			}
			sleep_ms(10);
		}
		/* lost the port to someone else between probe and bind, or no start */
		fixture_proc_stop(t->proc, 2000);
		t->proc = NULL;
	}
	err = -ETIMEDOUT;
	fprintf(stderr, "fixture: opentracker did not answer (log: %s)\n", log);
fail:
	free(t->dir);
	free(t);
	return err;
}

uint16_t fixture_tracker_port(const struct fixture_tracker *t)
{
	return t->port;
}

const char *fixture_tracker_url(const struct fixture_tracker *t)
{
	return t->url;
}

int fixture_tracker_allow(struct fixture_tracker *t, const char *hex)
{
	char wl[PATH_MAX], line[42];
	size_t n = strlen(hex);
	int fd, err;

	if (n != 40 && n != 64)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", hex[i]))
			return -EINVAL;
	snprintf(line, sizeof line, "%.40s\n", hex);
	snprintf(wl, sizeof wl, "%s/whitelist", t->dir);
	fd = open(wl, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, line, 41) != 41) {
		err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	/* SIGHUP makes opentracker re-read the list, asynchronously: ask until it
	 * accepts, re-sending the signal now and then in case one was coalesced. */
	int64_t deadline = now_ms() + scaled_ms(5000);
	for (int i = 0; now_ms() < deadline; i++) {
		if (i % 20 == 0)
			fixture_proc_signal(t->proc, SIGHUP);
		sleep_ms(10);
		if (fixture_tracker_accepts(t, hex))
			return 0;
	}
	return -ETIMEDOUT;
}

void fixture_tracker_stop(struct fixture_tracker *t)
{
	if (!t)
		return;
	fixture_proc_stop(t->proc, 5000);
	free(t->dir);
	free(t);
}

/* ---- mounts ---- */

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else
			*w++ = *s;
	}
	*w = '\0';
}

static int canonical_path(const char *path, char out[PATH_MAX])
{
	char *a = strdup(path), *b = strdup(path), parent[PATH_MAX];
	int err = 0;

	if (!a || !b) {
		err = -ENOMEM;
		goto out;
	}
	/* Resolve the parent only: the mount point itself may be a dead FUSE mount
	 * whose stat fails with ENOTCONN. */
	if (!realpath(dirname(a), parent)) {
		err = -errno;
		goto out;
	}
	const char *base = basename(b);
	if (snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", base) >= PATH_MAX)
		err = -ENAMETOOLONG;
out:
	free(a);
	free(b);
	return err;
}

bool fixture_is_mounted(const char *path)
{
	char want[PATH_MAX], line[8192];
	bool found = false;
	FILE *f;

	if (canonical_path(path, want) < 0)
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		char *save = NULL, *tok = strtok_r(line, " ", &save);

		for (int field = 1; tok && field < 5; field++)
			tok = strtok_r(NULL, " ", &save);
		if (tok) {
			unescape_mountinfo(tok);
			found = !strcmp(tok, want);
		}
	}
	fclose(f);
	return found;
}

struct fixture_mount {
	struct fixture_proc *proc;
	char *mountpoint;
	char *log;
};

int fixture_mount_start(const char *home, const char *drive, const char *mountpoint,
                        const char *const extra_args[], struct fixture_mount **out)
{
	return fixture_mount_start_wrapped(NULL, home, drive, mountpoint, extra_args, out);
}

int fixture_mount_start_wrapped(const char *const wrapper[], const char *home, const char *drive,
                                const char *mountpoint, const char *const extra_args[],
                                struct fixture_mount **out)
{
	static int counter;
	const char *bin = getenv("SWARMFS_BIN");
	struct fixture_mount *m;
	char *argv[72];
	int argc = 0, err;

	if (!bin || !*bin) {
		fprintf(stderr, "fixture: SWARMFS_BIN is not set (run the tests with ctest)\n");
		return -ENOENT;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		err = -errno;
		fprintf(stderr, "fixture: /dev/fuse is not usable (%s): these tests need FUSE\n",
		        strerror(-err));
		return err;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->mountpoint = strdup(mountpoint);
	if (!m->mountpoint ||
	    asprintf(&m->log, "%s/mount-%ld-%d.log", home, (long)getpid(), counter++) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	/* home holds the daemon's log, so it must exist before the daemon does */
	if ((mkdir(home, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(mountpoint, 0755) < 0 && errno != EEXIST)) {
		err = -errno;
		goto fail;
	}
	for (int i = 0; wrapper && wrapper[i] && argc < 8; i++)
		argv[argc++] = (char *)wrapper[i];
	argv[argc++] = (char *)bin;
	argv[argc++] = "mount";
	argv[argc++] = "-f";
	argv[argc++] = "--home";
	argv[argc++] = (char *)home;
	for (int i = 0; extra_args && extra_args[i] && argc < 64; i++)
		argv[argc++] = (char *)extra_args[i];
	argv[argc++] = (char *)drive;
	argv[argc++] = (char *)mountpoint;
	argv[argc] = NULL;
	err = fixture_proc_start(argv, m->log, &m->proc);
	if (err < 0)
		goto fail;
	int64_t deadline = now_ms() + scaled_ms(10000);
	while (!fixture_is_mounted(mountpoint)) {
		if (!fixture_proc_alive(m->proc) || now_ms() >= deadline) {
			err = fixture_proc_alive(m->proc) ? -ETIMEDOUT : -EIO;
			char *cat[] = { "cat", m->log, NULL }, *text = NULL;

			fixture_run(cat, 2000, &text);
			fprintf(stderr, "fixture: swarmfs mount of %s failed; its log:\n%s\n",
			        mountpoint, text ? text : "");
			free(text);
			fixture_proc_stop(m->proc, 5000);
			goto fail;
		}
		sleep_ms(10);
	}
	*out = m;
	return 0;
fail:
	free(m->mountpoint);
	free(m->log);
	free(m);
	return err;
}

pid_t fixture_mount_pid(const struct fixture_mount *m)
{
	return fixture_proc_pid(m->proc);
}

const char *fixture_mount_log(const struct fixture_mount *m)
{
	return m->log;
}

int fixture_mount_unexpected_log(const struct fixture_mount *m, const char *const allowed[],
                                 char **out_lines)
{
	static const char *const bad[] = {
		"swarmfs: emerg:",   "swarmfs: alert:", "swarmfs: crit:", "swarmfs: error:",
		"swarmfs: warning:", "Sanitizer",       "runtime error:", NULL
	};
	char line[4096];
	char *acc = NULL;
	size_t acc_len = 0;
	int count = 0;
	FILE *f = fopen(m->log, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof line, f)) {
		bool is_bad = false, ok = false;

		for (int i = 0; bad[i] && !is_bad; i++)
			is_bad = strstr(line, bad[i]) != NULL;
		for (int i = 0; is_bad && allowed && allowed[i] && !ok; i++)
			ok = strstr(line, allowed[i]) != NULL;
		if (!is_bad || ok)
			continue;
		count++;
		size_t n = strlen(line);
		char *na = realloc(acc, acc_len + n + 1);
		if (na) {
			acc = na;
			memcpy(acc + acc_len, line, n + 1);
			acc_len += n;
		}
	}
	fclose(f);
	if (out_lines)
		*out_lines = acc ? acc : strdup("");
	else
		free(acc);
	return count;
}

int fixture_mount_wait_exit(struct fixture_mount *m, int timeout_ms)
{
	return fixture_proc_wait(m->proc, timeout_ms);
}

int fixture_mount_stop(struct fixture_mount *m)
{
	int status;

	if (!m)
		return 0;
	if (fixture_proc_alive(m->proc)) {
		char *argv[] = { "fusermount3", "-u", m->mountpoint, NULL };

		fixture_run(argv, 10000, NULL);
	}
	status = fixture_proc_wait(m->proc, 10000);
	if (status == -ETIMEDOUT)
		status = fixture_proc_stop(m->proc, 1000);
	else
		fixture_proc_stop(m->proc, 1000);
	if (fixture_is_mounted(m->mountpoint)) {
		char *argv[] = { "fusermount3", "-u", "-z", m->mountpoint, NULL };

		fixture_run(argv, 10000, NULL);
	}
	free(m->mountpoint);
	free(m->log);
	free(m);
	return status;
}
