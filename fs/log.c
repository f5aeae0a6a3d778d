#include "fs.h"

#include <fuse_log.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int log_level = LOG_NOTICE;

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG: return "emerg";
	case LOG_ALERT: return "alert";
	case LOG_CRIT: return "crit";
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

static void syslog_func(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

void fs_log_use_syslog(bool on)
{
	if (on) {
		openlog("swarmfs", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(syslog_func);
	} else {
		fuse_set_log_func(NULL); /* libfuse's default: stderr */
	}
}

static void journal_func(enum fuse_log_level level, const char *fmt, va_list ap)
{
	sd_journal_printv((int)level, fmt, ap);
}

bool fs_log_use_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd names the stream it gave us as stderr; a redirected stderr (a test's
	 * log file) keeps plain lines */
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0 ||
	    (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
		return false;
	fuse_set_log_func(journal_func);
	return true;
}

void fs_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

bool fs_log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

/* One line per message, written by a single fuse_log() call so that lines from
 * different threads never interleave. The tests grep this format: "swarmfs: <level>:
 * <module>: <message>". */
void fs_log_sink(int level, const char *module, const char *msg, void *ctx)
{
	(void)ctx;
	if (!fs_log_enabled(level))
		return;
	fuse_log((enum fuse_log_level)level, "swarmfs: %s: %s: %s\n", level_name(level), module,
	         msg);
}

void fs_log_at(int level, const char *module, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n = 0;

	if (!fs_log_enabled(level))
		return;
	if (fs_log_enabled(LOG_DEBUG))
		n = snprintf(msg, sizeof msg, "(%s:%d) ",
		             strrchr(file, '/') ? strrchr(file, '/') + 1 : file, line);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	fs_log_sink(level, module, msg, NULL);
}
