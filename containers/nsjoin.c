/* nsjoin.c: a pod's namespaces, joined by path (linux.namespaces[].path).
 *
 * The container's user namespace comes with its clone, and from inside it
 * a namespace owned elsewhere can no longer be entered (setns needs
 * CAP_SYS_ADMIN over the target's owner). So a short-lived thread of the
 * runtime steps into the network, ipc and uts namespaces to join and
 * calls clone3, which inherits them (the clone leaves those types out of
 * its flags), then ends: the runtime's own threads never change
 * namespaces, so none can be left in a container's (a failed step back
 * is impossible by construction). The child's parent is the runtime
 * process all the same (a thread's children pass to its group when it
 * ends; nothing in the child uses a parent-death signal). The thread
 * costs some tens of microseconds, for a pod's containers only. Each
 * path is opened once and
 * checked by that fd (nsfs, NS_GET_NSTYPE) before anything moves, so a
 * path that is not a namespace of its type is refused, not followed. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"
#include "scm-internal/error.h"

static const int join_types[3] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS};
static const char *const join_names[3] = {"network", "ipc", "uts"};

static const char *type_name(int t)
{
	switch (t) {
	case CLONE_NEWNET: return "network";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWCGROUP: return "cgroup";
	default: return "unknown";
	}
}

int launch_join_open(const container_spec *s, bool rootless, const int *given, int ret_fds[3], scm_error **err)
{
	int fds[3] = {-1, -1, -1};
	int r = 0;
	for (int i = 0; i < 3 && r == 0; i++) {
		const char *path = s->ns_join[i];
		size_t idx = s->ns_join_idx[i];
		if (given && given[i] >= 0 && !path) {
			r = ctr_fail(err, CONTAINER_E_SPEC, "a %s namespace was handed over to join, but the spec's "
				     "linux.namespaces joins none by path", join_names[i]);
			break;
		}
		if (!path)
			continue;
		if (rootless) {
			r = ctr_fail(err, CONTAINER_E_DENIED,
				     "/linux/namespaces/%zu/path: joining a %s namespace needs a runtime running as root",
				     idx, join_names[i]);
			break;
		}
		/* Looked at before it is opened: opened as root, a FIFO would
		 * hang the runtime and a device (a watchdog, a tape) act. The
		 * nsfs file found is then reopened, the same one, for setns.
		 * A namespace handed over (pinned when the container was
		 * created) stands for the path: the path may name another
		 * process by now. */
		_cleanup_close_ int pfd = given && given[i] >= 0 ? fcntl(given[i], F_DUPFD_CLOEXEC, 3)
								 : open(path, O_PATH | O_CLOEXEC);
		if (pfd < 0) {
			r = ctr_fail(err, CONTAINER_E_SPEC, "/linux/namespaces/%zu/path: %s: %m", idx, path);
			break;
		}
		struct statfs sf;
		char self[64];
		int t;
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		if (fstatfs(pfd, &sf) < 0 || sf.f_type != NSFS_MAGIC)
			r = ctr_fail(err, CONTAINER_E_SPEC, "/linux/namespaces/%zu/path: %s is not a namespace", idx,
				     path);
		else if ((fds[i] = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
			r = ctr_fail(err, CONTAINER_E_SPEC, "/linux/namespaces/%zu/path: %s: %m", idx, path);
		else if ((t = ioctl(fds[i], NS_GET_NSTYPE)) != join_types[i])
			r = ctr_fail(err, CONTAINER_E_SPEC, "/linux/namespaces/%zu/path: %s is a %s namespace, not %s",
				     idx, path, t < 0 ? "unknown" : type_name(t), join_names[i]);
	}
	if (r != 0) {
		for (int i = 0; i < 3; i++)
			safe_close(fds[i]);
		return r;
	}
	for (int i = 0; i < 3; i++)
		ret_fds[i] = fds[i];
	return 0;
}

int launch_join_check_sandbox(const container_spec *s, const int fds[3], scm_error **err)
{
	struct stat own, st;
	if (stat("/proc/self/ns/user", &own) < 0)
		return ctr_fail(err, -errno, "/proc/self/ns/user: %m");
	/* The sandbox gives a container ipc and uts namespaces of its own:
	 * one joined must be another container's (owned by its user
	 * namespace), never the host's nor one made beside the runtime. */
	for (int i = CONTAINER_JOIN_IPC; i <= CONTAINER_JOIN_UTS; i++) {
		if (fds[i] < 0)
			continue;
		_cleanup_close_ int ufd = ioctl(fds[i], NS_GET_USERNS);
		if (ufd < 0 && errno != EPERM)
			return ctr_fail(err, -errno, "/linux/namespaces/%zu/path: %s: its owner: %m",
					s->ns_join_idx[i], s->ns_join[i]);
		if (ufd < 0 || (fstat(ufd, &st) == 0 && st.st_dev == own.st_dev && st.st_ino == own.st_ino))
			return ctr_fail(err, CONTAINER_E_DENIED,
					"/linux/namespaces/%zu/path: %s is not a container's %s namespace (it belongs to "
					"the host's user namespace), and a sandbox requires one apart from the host's",
					s->ns_join_idx[i], s->ns_join[i], join_names[i]);
	}
	return 0;
}

struct join_clone {
	const int *fds;
	struct clone_args *ca;
	void (*child)(void *);
	void *arg;
	pid_t pid; /* or -errno */
	bool entered;
};

static void *join_clone_thread(void *arg)
{
	struct join_clone *j = arg;
	for (int i = 0; i < 3; i++)
		if (j->fds[i] >= 0 && setns(j->fds[i], join_types[i]) < 0) {
			j->pid = -errno;
			return NULL;
		}
	j->entered = true;
	pid_t pid = (pid_t)syscall(SYS_clone3, j->ca, sizeof(*j->ca));
	if (pid == 0)
		j->child(j->arg); /* does not return */
	j->pid = pid < 0 ? -errno : pid;
	/* The thread ends here, and its namespaces with it. */
	return NULL;
}

pid_t launch_clone(const int *fds, struct clone_args *ca, void (*child)(void *), void *arg, bool *ret_entered)
{
	struct join_clone j = {.fds = fds, .ca = ca, .child = child, .arg = arg, .pid = -EIO};
	*ret_entered = true;
	if (!fds) {
		pid_t pid = (pid_t)syscall(SYS_clone3, ca, sizeof(*ca));
		if (pid == 0)
			child(arg);
		return pid < 0 ? -errno : pid;
	}
	pthread_t t;
	/* The thread takes the caller's signal mask (all blocked, for the
	 * child) and the caller waits for it: the launch stays synchronous. */
	int e = pthread_create(&t, NULL, join_clone_thread, &j);
	if (e != 0) {
		*ret_entered = false;
		return -e;
	}
	pthread_join(t, NULL);
	*ret_entered = j.entered;
	return j.pid;
}

int container_spec_open_joins(const container_spec *s, int ret_fds[3], scm_error **ret_err)
{
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	int r = launch_join_open(s, geteuid() != 0, NULL, ret_fds, &err);
	if (r != 0)
		scm_error_push(ret_err, TAKE_PTR(err));
	return r;
}

int container_spec_check_joins(const container_spec *s, scm_error **ret_err)
{
	int fds[3];
	int r = container_spec_open_joins(s, fds, ret_err);
	for (int i = 0; r == 0 && i < 3; i++)
		safe_close(fds[i]);
	return r;
}
