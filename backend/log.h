/*
 * Logging: one line per event, to stderr in the foreground or syslog when
 * daemonized.  Callers never pass secrets (keys, session tokens, JWTs) to
 * these functions; the log module cannot tell them apart from other text.
 */
#ifndef CREDFS_LOG_H
#define CREDFS_LOG_H

#include "compiler.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Where log lines go.  Default before log_open(): stderr, level INFO. */
void log_open(const char *ident, int use_syslog, enum log_level level);
void log_close(void);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
