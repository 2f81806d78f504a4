/* log.c: scmd's log lines on stderr, each with an sd-daemon priority
 * prefix (see log.h). One write(2) per line, so lines from scmd and the
 * providers that share its stderr do not interleave mid-line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"

static bool tagged = true;

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	tagged = !(js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		   st.st_dev == dev && st.st_ino == ino);
}

bool log_to_journal(void)
{
	return !tagged;
}

size_t log_format(char *buf, size_t n, int prio, bool tag, const char *msg)
{
	static const char *const prefix[] = { SD_EMERG, SD_ALERT, SD_CRIT, SD_ERR,
					      SD_WARNING, SD_NOTICE, SD_INFO, SD_DEBUG };
	int r = snprintf(buf, n, "%s%s%s\n", prefix[prio & 7], tag ? "scmd: " : "", msg);
	if (r < 0)
		return 0;
	if ((size_t)r >= n && n > 1) {
		buf[n - 2] = '\n'; /* cut, but still one line */
		return n - 1;
	}
	return (size_t)r;
}

static void emit(int prio, const char *msg)
{
	char line[4096];
	size_t len = log_format(line, sizeof(line), prio, tagged, msg);
	(void)!write(STDERR_FILENO, line, len);
}

void log_at(int prio, const char *fmt, ...)
{
	char msg[4000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(prio, msg);
}

void log_error_chain(int prio, const scm_error *e, const char *fmt, ...)
{
	char msg[4000];
	va_list ap;
	char *text = NULL;
	size_t len = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(prio, msg);
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return;
	scm_error_print(e, f);
	fclose(f);
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (*line)
			emit(prio, line);
	}
	free(text);
}
