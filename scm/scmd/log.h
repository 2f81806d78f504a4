/* log.h: scmd's log lines, with sd-daemon priority prefixes.
 *
 * Each line starts with "<N>" (N a syslog priority, sd-daemon(3)): journald
 * reads it as the line's priority when scmd runs under systemd, and on a
 * plain terminal it is a short, greppable level. The priorities are
 * syslog's (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG). */
#pragma once
#include <stdbool.h>
#include <syslog.h>

#include "scm/macro.h"
#include "scm/scm.h"

/* Looks once at where stderr goes: a journal stream ($JOURNAL_STREAM
 * names it) already knows the program, so lines drop their "scmd: " tag. */
void log_init(void);
/* Whether stderr is a journal stream (what log_init found). */
bool log_to_journal(void);
void log_at(int prio, const char *fmt, ...) _printf_(2, 3);
/* A headline, then e's chain one line per layer, every line prefixed. */
void log_error_chain(int prio, const scm_error *e, const char *fmt, ...) _printf_(3, 4);
/* The line log_at(prio, ...) writes, into buf (tests, and the one place
 * that formats them). Returns its length, truncated to n - 1. */
size_t log_format(char *buf, size_t n, int prio, bool tagged, const char *msg);

#define log_error(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
