/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for the programs (library modules never log). One line per event on
 * stderr, "n2pd: message"; under journald (JOURNAL_STREAM names our stderr) the
 * entry goes to the journal with its priority and extra FIELD=value pairs.
 */

#include <stdarg.h>
#include <syslog.h>

void n2p_log_init(const char *program);

/* Logs and returns error as a negative errno (-EINVAL when error is 0), so that
 * `return n2p_log_error(...)` always returns a failure. %m prints strerror(error). */
int n2p_log_full(int priority, int error, const char *format, ...) __attribute__((format(printf, 3, 4)));

#define n2p_log_error(...) n2p_log_full(LOG_ERR, 0, __VA_ARGS__)
#define n2p_log_warning(...) n2p_log_full(LOG_WARNING, 0, __VA_ARGS__)
#define n2p_log_info(...) n2p_log_full(LOG_INFO, 0, __VA_ARGS__)
#define n2p_log_debug(...) n2p_log_full(LOG_DEBUG, 0, __VA_ARGS__)
#define n2p_log_error_errno(e, ...) n2p_log_full(LOG_ERR, (e), __VA_ARGS__)
#define n2p_log_warning_errno(e, ...) n2p_log_full(LOG_WARNING, (e), __VA_ARGS__)

/* An info line with structured journal fields: fields is a NULL-terminated list of
 * "NAME=value" strings, sent only to the journal. */
void n2p_log_fields(const char *const *fields, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Set by --verbose / $N2P_DEBUG: enables LOG_DEBUG lines. */
void n2p_log_set_debug(int on);
