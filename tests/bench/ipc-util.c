/* ipc-util.c: process, clock and affinity helpers for the IPC benchmark.
 *
 * Every process the bench forks asks to die with its parent, so an
 * interrupted run leaves no servers or bus daemons behind. */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"

static char runtime_dir[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)(flag == FTW_DP ? rmdir(path) : unlink(path));
	return 0;
}

/* Only our own mkdtemp directory, and only from the process that made it. */
static void runtime_dir_remove(void)
{
	if (runtime_dir[0] && nftw(runtime_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "ipc-bench: could not remove %s: %m\n", runtime_dir);
}

static pid_t runtime_owner;

static void on_terminate(int sig)
{
	if (getpid() == runtime_owner)
		runtime_dir_remove();
	_exit(128 + sig);
}

static void runtime_cleanup(void)
{
	if (getpid() == runtime_owner)
		runtime_dir_remove();
}

const char *ipc_runtime_dir(void)
{
	if (!runtime_dir[0]) {
		const char *tmp = getenv("TMPDIR");

		snprintf(runtime_dir, sizeof(runtime_dir), "%s/scm-ipc-bench.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(runtime_dir)) {
			fprintf(stderr, "ipc-bench: mkdtemp: %m\n");
			runtime_dir[0] = 0;
			return NULL;
		}
		runtime_owner = getpid();
		atexit(runtime_cleanup);
		/* Interrupted (^C, timeout): still leave no directory behind;
		 * the children die with us (PR_SET_PDEATHSIG). */
		signal(SIGINT, on_terminate);
		signal(SIGTERM, on_terminate);
	}
	return runtime_dir;
}

pid_t ipc_fork(bool pinned)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The parent may have died between fork() and prctl(). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		if (pinned) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(0, &set);
			if (sched_setaffinity(0, sizeof(set), &set) < 0)
				_exit(1);
		}
	}
	return pid;
}

void ipc_kill_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

char ipc_client_error[160];

void ipc_set_client_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ipc_client_error, sizeof(ipc_client_error), fmt, ap);
	va_end(ap);
}

uint64_t ipc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

ssize_t ipc_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	uint64_t deadline = ipc_now_ns() + (uint64_t)timeout_ms * 1000000u;
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - ipc_now_ns()) / 1000000;
		ssize_t k;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!p.revents)
			continue;
		k = read(fd, buf + n, 1);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EPIPE;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return (ssize_t)n;
}

/* For daemons that give no readiness signal: try to connect, and on
 * failure wait (inotify) for the next change in the socket's directory
 * rather than polling on a timer. */
int ipc_wait_socket(const char *path, int timeout_ms)
{
	uint64_t deadline = ipc_now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int ino = -1;
	char dir[sizeof(sa.sun_path)];
	char *slash;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino < 0)
		return -errno;
	/* Watch first, then try: a socket created in between is not missed. */
	if (inotify_add_watch(ino, dir[0] ? dir : "/", IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0)
		return -errno;
	for (;;) {
		_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct pollfd p = { .fd = ino, .events = POLLIN };
		char ev[4096];
		int64_t left;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (errno == EPROTOTYPE) /* a SEQPACKET listener: it exists */
			return 0;
		left = (int64_t)(deadline - ipc_now_ns()) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(left < 100 ? left : 100)) < 0 && errno != EINTR)
			return -errno;
		while (read(ino, ev, sizeof(ev)) > 0)
			;
	}
}
