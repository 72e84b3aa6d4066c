#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "clock.h"

static enum log_level current_level = LOG_LEVEL_INFO;
static int to_syslog;
static const char *log_ident = "credfs";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_open(const char *ident, int use_syslog, enum log_level level)
{
	log_ident = ident;
	current_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void log_close(void)
{
	if (to_syslog)
		closelog();
	to_syslog = 0;
}

enum log_level log_get_level(void)
{
	return current_level;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
					LOG_DEBUG};

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	if (to_syslog) {
		syslog(syslog_priorities[level], "%s", line);
		return;
	}

	char stamp[21];

	clock_format_rfc3339(clock_wall(), stamp);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s %s[%s] %s\n", stamp, log_ident, level_names[level],
		line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
