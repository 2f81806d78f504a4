/* provider-spawn.c: a provider process, forked and exec'd the one way
 * scmd starts them, at an activation (registry.c) and beside a running one
 * for a restart with its channels (service-restart.c): fd 3 is its control
 * socket, its output goes to the service's log, it inherits nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scm-internal/error.h"
#include "scmd.h"

/* Forks and execs a provider: fd 3 its end of a new control socketpair;
 * *ret_ctl is scmd's end. handover: it is to take over from a running one
 * ($SCM_PROVIDER_HANDOVER, docs/handover.md). An exec that fails is
 * reported by the child on a pipe (the caller still reaps it). */
int provider_spawn(struct scmd *d, struct service *s, const char *prog, bool handover, pid_t *ret_pid,
		   int *ret_ctl, scm_error **ret_err)
{
	int sp[2], ep[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return scm_fail(ret_err, -errno, "socketpair: %m");
	if (pipe2(ep, O_CLOEXEC) < 0) {
		int r = -errno;
		close(sp[0]);
		close(sp[1]);
		return scm_fail(ret_err, r, "pipe: %s", strerror(-r));
	}
	_cleanup_free_ char *logpath = NULL;
	if (asprintf(&logpath, "%s/logs/%s.log", d->runtime_dir, s->name) < 0)
		logpath = NULL;

	pid_t pid = fork();
	if (pid == 0) {
		/* Child: fd 3 is the control socket, stdout/stderr go to the
		 * service's log, nothing else is inherited. */
		int logfd = logpath ? open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640) : -1;
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		if (dup2(sp[1], 3) < 0)
			_exit(127);
		int errfd = fcntl(ep[1], F_DUPFD_CLOEXEC, 10);
		close_range(4, errfd - 1, 0);
		close_range(errfd + 1, ~0U, 0);
		setsid();
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL); /* scmd ignores it; its providers need not */
		setenv("SCM_PROVIDER_FD", "3", 1);
		setenv("SCM_SERVICE", s->name, 1);
		if (handover)
			setenv("SCM_PROVIDER_HANDOVER", "1", 1);
		else
			unsetenv("SCM_PROVIDER_HANDOVER");
		if (s->recover) /* scmd holds its checkpoints (service-recover.c) */
			setenv("SCM_PROVIDER_RECOVER", "1", 1);
		else
			unsetenv("SCM_PROVIDER_RECOVER");
		execvp(prog, s->exec);
		int e = errno;
		(void)!write(errfd, &e, sizeof(e));
		_exit(127);
	}
	close(sp[1]);
	close(ep[1]);
	if (pid < 0) {
		int e = errno;
		close(sp[0]);
		close(ep[0]);
		return scm_fail(ret_err, -e, "fork: %s", strerror(e));
	}
	/* The pipe closes on a successful exec; an errno on it means exec failed. */
	int err = 0;
	ssize_t n = read(ep[0], &err, sizeof(err));
	close(ep[0]);
	*ret_pid = pid;
	*ret_ctl = sp[0];
	if (n == sizeof(err))
		return scm_fail(ret_err, -err, "cannot run provider '%s': %s", prog, strerror(err));
	return 0;
}
