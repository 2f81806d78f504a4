/* init.c: the container's PID 1 and the last steps before exec.
 *
 * PID 1 drops its own privileges first (so nothing privileged runs in the
 * container after setup), forks the main process, then waits on a
 * signalfd: SIGCHLD reaps every child (orphans re-parent to PID 1), any
 * other signal is forwarded to the main process. When the main process
 * ends, its wait status goes to the runtime through the status pipe and
 * PID 1 exits, which makes the kernel kill whatever is left. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

/* Setup errors travel to the runtime as a record on the error pipe. */
static _Noreturn void report_record(const launch_plan *p, int code, const struct launch_record *rec)
{
	launch_report_record(p->err_pipe[1], rec);
	_exit(code);
}

/* The spec's rlimits on pid (0: ourselves), set by the runtime while it
 * is still the host's root. A hard limit above the runtime's own is then
 * granted as runc grants it: in the container's user namespace the
 * setrlimit below could not raise it (CAP_SYS_RESOURCE counts only in the
 * initial one), and podman asks for nofile 1048576 whatever the host's
 * session allows. Failures are left to that setrlimit, which says which. */
void rlimits_preset(pid_t pid, const container_spec *s)
{
	for (size_t i = 0; i < s->n_rlimits; i++) {
		struct rlimit rl = {s->rlimits[i].soft, s->rlimits[i].hard};
		(void)prlimit(pid, s->rlimits[i].resource, &rl, NULL);
	}
}

int sandbox_enter(const launch_plan *p, struct launch_record *e)
{
	const container_spec *s = p->spec;
	const char *step = NULL;
	int r;
	for (size_t i = 0; i < s->n_rlimits; i++) {
		struct rlimit rl = {s->rlimits[i].soft, s->rlimits[i].hard};
		if (setrlimit(s->rlimits[i].resource, &rl) < 0) {
			return launch_note(e, errno, "setrlimit %d", s->rlimits[i].resource);
		}
	}
	if (p->cg && p->cg->rlimit_nproc > 0) {
		struct rlimit rl = {(rlim_t)p->cg->rlimit_nproc, (rlim_t)p->cg->rlimit_nproc};
		(void)setrlimit(RLIMIT_NPROC, &rl);
	}
	if (p->cg && p->cg->rlimit_as > 0) {
		struct rlimit rl = {(rlim_t)p->cg->rlimit_as, (rlim_t)p->cg->rlimit_as};
		(void)setrlimit(RLIMIT_AS, &rl);
	}
	/* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which
	 * the drop below removes: load it first (it denies none of them). */
	if (!s->no_new_privileges && (r = sc_filter_load(p->filter)) < 0)
		return launch_note(e, -r, "seccomp");
	if ((r = caps_apply(p, &step)) < 0)
		return launch_note(e, -r, "capabilities: %s", step);
	if (s->no_new_privileges) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return launch_note(e, errno, "no_new_privs");
		if ((r = sc_filter_load(p->filter)) < 0)
			return launch_note(e, -r, "seccomp");
	}
	return 0;
}

/* execvpe searching the spec's PATH, not ours. */
static void exec_in_path(char *const *argv, char *const *env)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, env);
		return;
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			path = env[i] + 5;
	int saved = ENOENT;
	for (const char *c = path;; c++) {
		const char *end = strchrnul(c, ':');
		char buf[4096];
		size_t n = (size_t)(end - c);
		size_t fl = strlen(file);
		if (n + fl + 2 <= sizeof(buf)) { /* dir, '/', file, NUL */
			char *q = mempcpy(buf, c, n);
			if (n)
				*q++ = '/';
			memcpy(q, file, fl + 1);
			execve(buf, argv, env);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		if (!*end)
			break;
		c = end;
	}
	errno = saved;
}

_Noreturn void payload_exec(const launch_plan *p)
{
	const container_spec *s = p->spec;
	const container_opts *o = p->opts;
	struct launch_record rec;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	if (!s->terminal || o->pty)
		(void)setsid();
	int fds[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
	if (o->pty) {
		/* after setsid: the slave becomes the controlling terminal below */
		int slave = console_make(p, &rec);
		if (slave < 0)
			report_record(p, 126, &rec);
		fds[0] = fds[1] = fds[2] = slave;
	}
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && dup2(fds[i], i) < 0) {
			launch_note(&rec, errno, "stdio");
			report_record(p, 126, &rec);
		}
	/* Its own pty, as its controlling terminal: ^C and job control work,
	 * and the caller's terminal is never reachable from here. */
	if (o->pty && ioctl(0, TIOCSCTTY, 0) < 0) {
		launch_note(&rec, errno, "controlling terminal");
		report_record(p, 126, &rec);
	}
	if (chdir(s->cwd ? s->cwd : "/") < 0) {
		launch_note(&rec, errno, "/process/cwd: %s", s->cwd);
		report_record(p, 126, &rec);
	}
	/* No host fd may reach the program: everything above 2 closes on exec
	 * (the error pipe too, which tells the runtime the exec worked). */
	(void)syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);
	exec_in_path(s->args, s->env ? s->env : (char *[]){NULL});
	int err = errno;
	launch_note(&rec, err, "exec %s", s->args[0]);
	report_record(p, err == ENOENT ? 127 : 126, &rec);
}

void close_all_but(const int *keep, size_t n)
{
	int sorted[16];
	size_t k = 0;
	for (size_t i = 0; i < n && k < ELEMENTSOF(sorted); i++)
		if (keep[i] >= 0)
			sorted[k++] = keep[i];
	/* insertion sort: a handful of fds */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
			int t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	unsigned from = 0;
	for (size_t i = 0; i < k; i++) {
		if ((unsigned)sorted[i] > from)
			(void)syscall(SYS_close_range, from, (unsigned)sorted[i] - 1, 0);
		from = (unsigned)sorted[i] + 1;
	}
	(void)syscall(SYS_close_range, from, ~0u, 0);
}

int container_wait_status_to_exit(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

_Noreturn void init_run(const launch_plan *p)
{
	struct launch_record rec;
	sigset_t all;
	sigfillset(&all);
	/* Signals from the runtime queue up until the signalfd reads them. */
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0) {
		launch_note(&rec, errno, "signalfd");
		report_record(p, 126, &rec);
	}
	/* PID 1 is not exec'd: its memory is a copy of the runtime's (in
	 * scmd: other containers' state). Not dumpable, so the container's
	 * processes cannot read it through /proc/1/mem or /proc/1/fd. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (sandbox_enter(p, &rec) < 0)
		report_record(p, 126, &rec);
	/* A raw fork: glibc's runs atfork handlers and takes locks that a
	 * thread of the runtime may have held when we were cloned. */
	pid_t main_pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (main_pid < 0) {
		launch_note(&rec, errno, "fork");
		report_record(p, 126, &rec);
	}
	if (main_pid == 0) {
		close(sfd);
		payload_exec(p);
	}
	/* PID 1 never execs, so it still holds every fd the runtime had when
	 * it cloned us (in scmd: sockets, other containers' output pipes). Keep
	 * only the signalfd and the status pipe: no host fd lives on inside,
	 * and no other container's pipe is held open by this one. */
	int keep_lo = sfd < p->status_pipe[1] ? sfd : p->status_pipe[1];
	int keep_hi = sfd < p->status_pipe[1] ? p->status_pipe[1] : sfd;
	if (keep_lo > 0)
		(void)syscall(SYS_close_range, 0, keep_lo - 1, 0);
	if (keep_hi > keep_lo + 1)
		(void)syscall(SYS_close_range, keep_lo + 1, keep_hi - 1, 0);
	(void)syscall(SYS_close_range, keep_hi + 1, ~0u, 0);
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n != sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(255);
		}
		if (si.ssi_signo != SIGCHLD) {
			(void)kill(main_pid, (int)si.ssi_signo);
			continue;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			if (pid == main_pid) {
				(void)!write(p->status_pipe[1], &status, sizeof(status));
				_exit(container_wait_status_to_exit(status));
			}
		}
	}
}
