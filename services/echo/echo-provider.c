/* echo-provider: the example service (stubs/idl/echo.json).
 *
 * Small on purpose: it shows a provider built on the generated skeleton and
 * gives the tests a way to see what scmd told the provider (whoami), to
 * pass fds (read_fd), and to misbehave on request (crash, sleep, and the
 * --hang / --fail-start / --ready-after MS options for activation tests;
 * --trace logs each call). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scm/echo-provider.h"
#include "scm/macro.h"

/* --trace: a line on stderr (the service's log) for every call a handler
 * runs, so a test can count what reached the provider */
static bool trace;
#define TRACE(call, m)                                                                                        \
	do {                                                                                                  \
		if (trace)                                                                                    \
			fprintf(stderr, "echo-provider: call %s from %s\n", m, scm_call_grant(call)->caller); \
	} while (0)

static int do_ping(scm_call *call, void *ud)
{
	TRACE(call, "ping");
	return scm_echo_ping_reply(call);
}

static int do_echo(scm_call *call, const void *data, size_t len, void *ud)
{
	TRACE(call, "echo");
	return scm_echo_echo_reply(call, data, len);
}

static int do_greet(scm_call *call, const char *name, void *ud)
{
	TRACE(call, "greet");
	_cleanup_free_ char *s = NULL;
	if (asprintf(&s, "hello, %s", name) < 0)
		return -ENOMEM;
	return scm_echo_greet_reply(call, s);
}

static int do_whoami(scm_call *call, void *ud)
{
	TRACE(call, "whoami");
	const scm_grant *g = scm_call_grant(call);
	return scm_echo_whoami_reply(call, g->caller, g->uid, g->pid, g->channel);
}

static int do_sleep(scm_call *call, uint64_t ms, void *ud)
{
	TRACE(call, "sleep");
	if (ms > 60000)
		return scm_call_reply_error(call, SCM_ECHO_E_TOOLONG, "%llu ms is over 60000",
					    (unsigned long long)ms);
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return scm_echo_sleep_reply(call);
}

static int do_read_fd(scm_call *call, int fd, uint64_t max, void *ud)
{
	TRACE(call, "read_fd");
	char buf[4096];
	if (max > sizeof(buf))
		max = sizeof(buf);
	ssize_t n = pread(fd, buf, max, 0);
	if (n < 0)
		return scm_call_reply_error(call, -errno, "reading the passed fd: %m");
	return scm_echo_read_fd_reply(call, buf, (size_t)n);
}

static int do_crash(scm_call *call, void *ud)
{
	TRACE(call, "crash");
	signal(SIGABRT, SIG_DFL);
	abort();
}

static const scm_echo_handlers handlers = {
	.ping = do_ping,
	.echo = do_echo,
	.greet = do_greet,
	.whoami = do_whoami,
	.sleep = do_sleep,
	.read_fd = do_read_fd,
	.crash = do_crash,
};

int main(int argc, char **argv)
{
	scm_echo_skeleton sk = { &handlers, NULL };
	scm_provider *p = NULL;
	scm_error *err = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hang") == 0)
			for (;;)
				pause(); /* never says ready: activation must time out */
		if (strcmp(argv[i], "--ready-after") == 0 && i + 1 < argc) {
			/* a slow start: connects wait (pending) meanwhile */
			long ms = atol(argv[++i]);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		if (strcmp(argv[i], "--trace") == 0)
			trace = true;
		if (strcmp(argv[i], "--fail-start") == 0) {
			fprintf(stderr, "echo-provider: failing at start, as asked\n");
			return 3;
		}
	}
	if (scm_echo_provider_new(&sk, &p, &err) != 0 || scm_provider_run(p, &err) != 0) {
		fprintf(stderr, "echo-provider: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		scm_provider_free(p);
		return 1;
	}
	scm_provider_free(p);
	return 0;
}
