/* lifecycle.c: a running container: signal, wait, stop (SIGTERM then
 * SIGKILL), exec into it, and free, which kills what is left, reaps it and
 * removes the cgroups so nothing outlives the container object. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"
#include "scm-internal/error.h"

const char *container_id(const container *c)
{
	return c->id;
}

pid_t container_pid(const container *c)
{
	return c->pid;
}

int container_pidfd(const container *c)
{
	return c->pidfd;
}

int container_signal(container *c, int sig)
{
	if (c->reaped)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0)
		return -errno;
	/* a paused container takes the signal once it runs again (as runc
	 * and podman do for stop and kill of a paused one) */
	if (c->cg.frozen)
		(void)container_freeze(c, false, NULL);
	return 0;
}

/* PID 1 reports the main process's status; if PID 1 itself was killed
 * (SIGKILL from stop), its own status is the answer. */
static int reap(container *c, bool block)
{
	siginfo_t si = {0};
	if (c->reaped)
		return 0;
	int init_status;
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | (block ? 0 : WNOHANG)) < 0) {
		if (errno != ECHILD)
			return -errno;
		/* Not our child: adopted by a runtime process that came after
		 * the one that started it crashed (adopt.c); its parent reaps
		 * it. The pidfd polls readable once it ended; what PID 1 said
		 * on the status pipe is the answer, else it was killed. */
		struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
		if (poll(&p, 1, block ? -1 : 0) <= 0)
			return -EAGAIN;
		init_status = W_EXITCODE(0, SIGKILL);
	} else {
		if (si.si_pid == 0)
			return -EAGAIN;
		init_status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : W_EXITCODE(0, si.si_status);
	}
	int main_status;
	ssize_t n = read(c->status_fd, &main_status, sizeof(main_status));
	c->status = n == sizeof(main_status) ? main_status : init_status;
	c->reaped = true;
	c->status_fd = safe_close(c->status_fd);
	/* Every process of the pid namespace is gone once PID 1 is reaped. */
	(void)cgroup_remove(&c->cg);
	return 0;
}

int container_wait(container *c, int *ret_status)
{
	int r;
	while ((r = reap(c, true)) == -EINTR)
		;
	if (r < 0)
		return r;
	if (ret_status)
		*ret_status = c->status;
	return 0;
}

int container_try_wait(container *c, int *ret_status)
{
	int r = reap(c, false);
	if (r < 0)
		return r;
	if (ret_status)
		*ret_status = c->status;
	return 0;
}

bool container_reaped(const container *c)
{
	return c->reaped;
}

int container_stop(container *c, int timeout_ms, int *ret_status)
{
	if (!c->reaped) {
		(void)container_signal(c, SIGTERM);
		struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
		int r;
		/* A pidfd polls readable when the process exits. */
		while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		if (r == 0)
			(void)container_signal(c, SIGKILL);
	}
	return container_wait(c, ret_status);
}

static int exec_ns_flags(const container *c)
{
	int f = CLONE_NEWNS | CLONE_NEWPID;
	if (c->namespaces & CONTAINER_NS_IPC) f |= CLONE_NEWIPC;
	if (c->namespaces & CONTAINER_NS_UTS) f |= CLONE_NEWUTS;
	if (c->namespaces & CONTAINER_NS_NET) f |= CLONE_NEWNET;
	if (c->namespaces & CONTAINER_NS_CGROUP) f |= CLONE_NEWCGROUP;
	if (c->userns) f |= CLONE_NEWUSER;
	return f;
}

/* Root enters through the pidfd, all at once. Rootless uses the fds opened
 * at start (PID 1 is not dumpable, so its pidfd no longer lets us in),
 * user namespace first: it gives the capabilities for the others. */
static int enter_namespaces(const container *c)
{
	if (!c->rootless || c->ns_fds[0] < 0)
		return setns(c->pidfd, exec_ns_flags(c));
	static const int types[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC,
				    CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWCGROUP};
	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if ((exec_ns_flags(c) & types[i]) && setns(c->ns_fds[i], types[i]) < 0)
			return -1;
	return 0;
}

int container_exec_begin(container *c, char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd,
			 pid_t *ret_pid, int *ret_errfd)
{
	if (c->reaped || c->launching)
		return -ESRCH;
	if (!argv || !argv[0])
		return -EINVAL;
	container_spec spec = *c->spec;
	spec.args = (char **)argv;
	spec.cwd = (char *)"/";
	container_opts o = {.stdin_fd = stdin_fd, .stdout_fd = stdout_fd, .stderr_fd = stderr_fd};
	launch_plan p = {.spec = &spec, .opts = &o, .filter = c->narrowed ? c->narrowed : c->filter, .caps = c->caps,
			 .userns = c->userns, .rootless = c->rootless, .set_groups = !c->rootless,
			 .cg = &c->cg, .err_pipe = {-1, -1}, .sync_pipe = {-1, -1},
			 .status_pipe = {-1, -1}};
	/* Cgroup files are opened here, in the host's mount namespace. */
	int procs[CG_COUNT];
	for (int k = 0; k < CG_COUNT; k++) {
		char path[4200];
		procs[k] = -1;
		if (!c->cg.dirs[k])
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.procs", c->cg.dirs[k]);
		procs[k] = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (pipe2(p.err_pipe, O_CLOEXEC) < 0) {
		int r = -errno;
		for (int k = 0; k < CG_COUNT; k++)
			safe_close(procs[k]);
		return r;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p.err_pipe[0]);
		close(p.err_pipe[1]);
		for (int k = 0; k < CG_COUNT; k++)
			safe_close(procs[k]);
		return r;
	}
	if (pid == 0) {
		struct launch_record rec;
		for (int k = 0; k < CG_COUNT; k++)
			if (procs[k] >= 0)
				(void)!write(procs[k], "0", 1);
		/* Keep nothing of the runtime's but what the command needs, and
		 * let no one in the container read this copy of it. */
		const int keep[] = {0, 1, 2, p.err_pipe[1], stdin_fd, stdout_fd, stderr_fd, c->pidfd,
				    c->ns_fds[0], c->ns_fds[1], c->ns_fds[2], c->ns_fds[3],
				    c->ns_fds[4], c->ns_fds[5], c->ns_fds[6]};
		close_all_but(keep, ELEMENTSOF(keep));
		(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (!c->rootless)
			rlimits_preset(0, &spec);
		if (enter_namespaces(c) < 0) {
			launch_note(&rec, errno, "setns");
			launch_report_record(p.err_pipe[1], &rec);
			_exit(126);
		}
		/* The pid namespace applies to children: fork once more and
		 * pass the status up. */
		pid_t inner = fork();
		if (inner == 0) {
			/* The runtime gives up on an exec that never gets to
			 * execve (stopped by the container, stuck on a dead
			 * mount) by killing our parent: we go with it. */
			pid_t parent = getppid(); /* 0: it is outside our pid namespace */
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (sandbox_enter(&p, &rec) < 0) {
				launch_report_record(p.err_pipe[1], &rec);
				_exit(126);
			}
			/* Taking the container's ids (a user namespace mapped
			 * onto a subordinate range) cleared the setting: again,
			 * and gone already if the parent died meanwhile. */
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (getppid() != parent)
				_exit(126);
			payload_exec(&p);
		}
		close(p.err_pipe[1]);
		int status = 0;
		while (inner > 0 && waitpid(inner, &status, 0) < 0 && errno == EINTR)
			;
		_exit(inner < 0 ? 126 : container_wait_status_to_exit(status));
	}
	for (int k = 0; k < CG_COUNT; k++)
		safe_close(procs[k]);
	close(p.err_pipe[1]);
	(void)fcntl(p.err_pipe[0], F_SETFL, O_NONBLOCK);
	*ret_pid = pid;
	*ret_errfd = p.err_pipe[0];
	return 0;
}

int container_exec(container *c, char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd,
		   pid_t *ret_pid, scm_error **ret_err)
{
	pid_t pid;
	int fd, r = container_exec_begin(c, argv, stdin_fd, stdout_fd, stderr_fd, &pid, &fd);
	if (r < 0)
		return r;
	char rec[CONTAINER_RECORD_SIZE];
	ssize_t n;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		(void)poll(&pfd, 1, -1);
		n = read(fd, rec, sizeof(rec));
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	close(fd);
	if (n > 0) {
		(void)waitpid(pid, NULL, 0);
		scm_error *e = container_record_error(rec, (size_t)n, -EIO);
		scm_error_push(ret_err, scm_error_wrap(e, -EIO, SCM_HERE, "exec"));
		return -EIO;
	}
	*ret_pid = pid;
	return 0;
}

container *container_free(container *c)
{
	if (!c)
		return NULL;
	if (c->pidfd >= 0 && !c->reaped) {
		(void)container_signal(c, SIGKILL);
		(void)container_wait(c, NULL);
	}
	/* exec'd processes die with the pid namespace; reaping them is the
	 * caller's (their pids are its children, and only it knows whether it
	 * already has). */
	(void)cgroup_remove(&c->cg);
	safe_close(c->pidfd);
	safe_close(c->status_fd);
	safe_close(c->launch_fd);
	safe_close(c->console_fd);
	safe_close(c->pty_master);
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
		safe_close(c->ns_fds[i]);
	if (c->caps)
		cap_free(c->caps);
	container_spec_free(c->spec);
	free(c->owned_filter);
	free(c->owned_narrowed);
	free(c->id);
	free(c);
	return NULL;
}
