/* launch.c: container_start. Everything that can be done before the clone
 * is done before it (checks, seccomp compile or cache hit, cap_t, cgroup
 * and limits, pipes, paths); the child then runs a short, linear list of
 * privileged steps: join the cgroup, wait for the id maps (rootless),
 * build the rootfs and pivot, drop privileges, become PID 1. */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"
#include "scm-internal/error.h"

static int clone_flags_of(unsigned ns)
{
	int f = 0;
	if (ns & CONTAINER_NS_MOUNT) f |= CLONE_NEWNS;
	if (ns & CONTAINER_NS_PID) f |= CLONE_NEWPID;
	if (ns & CONTAINER_NS_IPC) f |= CLONE_NEWIPC;
	if (ns & CONTAINER_NS_UTS) f |= CLONE_NEWUTS;
	if (ns & CONTAINER_NS_NET) f |= CLONE_NEWNET;
	if (ns & CONTAINER_NS_CGROUP) f |= CLONE_NEWCGROUP;
	if (ns & CONTAINER_NS_USER) f |= CLONE_NEWUSER;
	return f;
}

#define fail_msg ctr_fail

/* Without newuidmap, a non-root caller can map exactly itself. */
static int check_caller_mappings(const container_spec *s, uid_t uid, gid_t gid, scm_error **err)
{
	if (s->n_uid_mappings &&
	    (s->n_uid_mappings != 1 || s->uid_mappings[0].host_id != uid || s->uid_mappings[0].size != 1))
		return fail_msg(err, CONTAINER_E_MAPPING,
				"/linux/uidMappings: a non-root caller can only map its own uid %u (size 1)",
				(unsigned)uid);
	if (s->n_gid_mappings &&
	    (s->n_gid_mappings != 1 || s->gid_mappings[0].host_id != gid || s->gid_mappings[0].size != 1))
		return fail_msg(err, CONTAINER_E_MAPPING,
				"/linux/gidMappings: a non-root caller can only map its own gid %u (size 1)",
				(unsigned)gid);
	if (!s->n_uid_mappings && (s->uid != 0 || s->gid != 0))
		return fail_msg(err, CONTAINER_E_MAPPING,
				"/process/user: a rootless container runs as 0, which maps to the caller");
	return 0;
}

/* A root runtime with a subordinate range: a spec's own mappings must stay
 * inside it (host 0 and every id outside the range stay unmapped), and
 * without mappings the process's ids must fall in 0..count-1. */
static int check_range_mappings(const container_spec *s, const container_idrange *range, scm_error **err)
{
	for (int g = 0; g < 2; g++) {
		const container_idmap *m = g ? s->gid_mappings : s->uid_mappings;
		size_t cnt = g ? s->n_gid_mappings : s->n_uid_mappings;
		uint64_t start = g ? range->gid_start : range->uid_start;
		uint64_t count = g ? range->gid_count : range->uid_count;
		for (size_t i = 0; i < cnt; i++)
			if (m[i].host_id < start || (uint64_t)m[i].host_id + m[i].size > start + count)
				return fail_msg(err, CONTAINER_E_MAPPING,
						"/linux/%s/%zu: host ids %u-%llu are outside the runtime's subordinate range %llu-%llu (/etc/sub%cid, user \"" CONTAINER_SUBID_USER "\")",
						g ? "gidMappings" : "uidMappings", i, m[i].host_id,
						(unsigned long long)m[i].host_id + m[i].size - 1,
						(unsigned long long)start, (unsigned long long)(start + count - 1),
						g ? 'g' : 'u');
	}
	if (!s->n_uid_mappings && s->uid >= range->uid_count)
		return fail_msg(err, CONTAINER_E_MAPPING,
				"/process/user/uid: %u is not mapped (the container's ids are 0-%u)",
				(unsigned)s->uid, range->uid_count - 1);
	if (!s->n_gid_mappings && s->gid >= range->gid_count)
		return fail_msg(err, CONTAINER_E_MAPPING,
				"/process/user/gid: %u is not mapped (the container's ids are 0-%u)",
				(unsigned)s->gid, range->gid_count - 1);
	return 0;
}

/* The child mounts on the stage as the mapped root, an unprivileged host
 * id: the state directory and the stage get o+x (nothing to list), and
 * every directory above must already have it. */
static int reachable_by_others(const char *stage, const char *state, scm_error **err)
{
	char dir[4096];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s", stage);
	for (;;) {
		if (stat(dir, &st) < 0)
			return fail_msg(err, -errno, "state dir %s: %m", dir);
		if (!(st.st_mode & S_IXOTH)) {
			bool ours = strncmp(dir, state, strlen(state)) == 0 && st.st_uid == geteuid();
			if (!ours || chmod(dir, (st.st_mode & 07777) | 0111) < 0)
				return fail_msg(err, CONTAINER_E_DENIED,
						"%s (mode %04o) is not searchable by others: a container's root, an unprivileged host id, must reach %s",
						dir, (unsigned)(st.st_mode & 07777), stage);
		}
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return 0;
		*slash = 0;
	}
}

static int write_maps(pid_t pid, const container_spec *s, bool rootless, const container_idrange *range,
		      uid_t uid, gid_t gid)
{
	char path[64], buf[340 * 40];
	size_t n = 0;
	int r;
	if (rootless && !s->n_uid_mappings) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		if ((r = write_file(path, "deny")) < 0)
			return r;
		snprintf(buf, sizeof(buf), "0 %u 1", (unsigned)uid);
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		if ((r = write_file(path, buf)) < 0)
			return r;
		snprintf(buf, sizeof(buf), "0 %u 1", (unsigned)gid);
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		return write_file(path, buf);
	}
	if (rootless) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		if ((r = write_file(path, "deny")) < 0)
			return r;
	}
	for (int g = 0; g < 2; g++) {
		const container_idmap *m = g ? s->gid_mappings : s->uid_mappings;
		size_t cnt = g ? s->n_gid_mappings : s->n_uid_mappings;
		n = 0;
		for (size_t i = 0; i < cnt && n < sizeof(buf) - 40; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%u %u %u\n", m[i].container_id,
					      m[i].host_id, m[i].size);
		if (!cnt && range)
			snprintf(buf, sizeof(buf), "0 %u %u\n", g ? range->gid_start : range->uid_start,
				 g ? range->gid_count : range->uid_count);
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, g ? "gid_map" : "uid_map");
		if ((r = write_file(path, buf)) < 0)
			return r;
	}
	return 0;
}

/* A new network namespace starts with lo down; up is all it gets. */
static int loopback_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	int r = 0;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		r = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!r && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		r = -errno;
	close(fd);
	return r;
}

static _Noreturn void child_main(launch_plan *p)
{
	struct launch_record rec;
	/* First, drop every fd of the runtime this container does not need. */
	const int keep[] = {0, 1, 2, p->err_pipe[1], p->status_pipe[1], p->sync_pipe[0], p->console_sock[1],
			    p->opts->stdin_fd, p->opts->stdout_fd, p->opts->stderr_fd,
			    p->cg ? p->cg->procs_fd[0] : -1, p->cg ? p->cg->procs_fd[1] : -1,
			    p->cg ? p->cg->procs_fd[2] : -1, p->cg ? p->cg->procs_fd[CG_DEVICES] : -1,
			    p->cg ? p->cg->procs_fd[CG_FREEZER] : -1};
	close_all_but(keep, ELEMENTSOF(keep));
	if (p->cg && !p->cg->all_v2) {
		/* Join first, then the cgroup namespace: its root is where we
		 * stand when it is made, and that must be our own cgroup. */
		cgroup_enter_child(p->cg);
		cgroup_close_fds(p->cg);
		if (p->late_cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
			launch_note(&rec, errno, "cgroup namespace");
			launch_report_record(p->err_pipe[1], &rec);
			_exit(126);
		}
	}
	if (p->userns) {
		char c;
		/* The runtime writes our id maps, then closes its end. */
		if (read(p->sync_pipe[0], &c, 1) != 1) {
			launch_report(p->err_pipe[1], "user namespace: the id maps were not written");
			_exit(126);
		}
		close(p->sync_pipe[0]);
		/* Become the namespace's root for the setup (files we create
		 * must belong to a mapped id), keeping none of the runtime's
		 * host groups (gid 0 among them) as supplementary groups. */
		if ((!p->rootless && syscall(SYS_setgroups, 0, NULL) < 0) ||
		    syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0) {
			launch_note(&rec, errno, "user namespace: id 0 is not mapped");
			launch_report_record(p->err_pipe[1], &rec);
			_exit(126);
		}
	}
	if (p->late_netns && unshare(CLONE_NEWNET) < 0) {
		launch_note(&rec, errno, "network namespace");
		launch_report_record(p->err_pipe[1], &rec);
		_exit(126);
	}
	if ((p->clone_flags & CLONE_NEWNET) && loopback_up() < 0) {
		launch_note(&rec, errno, "loopback up");
		launch_report_record(p->err_pipe[1], &rec);
		_exit(126);
	}
	if (rootfs_setup(p, &rec) < 0) {
		launch_report_record(p->err_pipe[1], &rec);
		_exit(126);
	}
	init_run(p);
}

static void child_thunk(void *p)
{
	child_main(p);
}

/* What container_exec needs later, so the caller may free its spec. */
static container_spec *exec_spec_copy(const container_spec *s)
{
	container_spec *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->uid = s->uid;
	c->gid = s->gid;
	c->caps = s->caps;
	c->no_new_privileges = s->no_new_privileges;
	c->resources = s->resources;
	if (!(c->env = strv_copy(s->env ? s->env : (char *[]){NULL})) ||
	    (s->n_additional_gids &&
	     !(c->additional_gids = malloc(s->n_additional_gids * sizeof(gid_t)))) ||
	    (s->n_rlimits && !(c->rlimits = malloc(s->n_rlimits * sizeof(container_rlimit)))))
		return container_spec_free(c);
	if (s->n_additional_gids)
		memcpy(c->additional_gids, s->additional_gids, s->n_additional_gids * sizeof(gid_t));
	c->n_additional_gids = s->n_additional_gids;
	if (s->n_rlimits)
		memcpy(c->rlimits, s->rlimits, s->n_rlimits * sizeof(container_rlimit));
	c->n_rlimits = s->n_rlimits;
	return c;
}

static char *default_state_dir(void)
{
	char *d = NULL;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() == 0)
		return strdup("/run/scm");
	if (xdg && xdg[0] == '/')
		(void)asprintf(&d, "%s/scm", xdg);
	else
		(void)asprintf(&d, "/tmp/scm-%u", (unsigned)geteuid());
	return d;
}

static char *make_id(void)
{
	static unsigned counter;
	struct timespec ts;
	char *id = NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	(void)asprintf(&id, "c%d-%u-%lx", (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
		       (unsigned long)(ts.tv_nsec ^ ts.tv_sec));
	return id;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64 || id[0] == '.')
		return false;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_' || *c == '.'))
			return false;
	return true;
}

static void close_pipe(int p[2])
{
	p[0] = safe_close(p[0]);
	p[1] = safe_close(p[1]);
}

int container_start_begin(const container_spec *spec_in, const container_opts *opts, container **ret,
			  scm_error **ret_err)
{
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	_cleanup_free_ char *state = NULL, *stage = NULL, *cache = NULL;
	container_opts o = opts ? *opts : (container_opts)CONTAINER_OPTS_INIT;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int r;

	container *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pidfd = c->status_fd = c->launch_fd = c->console_fd = c->pty_master = -1;
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
		c->ns_fds[i] = -1;
	c->pid = -1;
	c->cg = (cgroup_set){.procs_fd = {-1, -1, -1, -1, -1}, .v2_dir_fd = -1};
	launch_plan p = {.opts = &o, .err_pipe = {-1, -1}, .sync_pipe = {-1, -1},
			 .status_pipe = {-1, -1}, .console_sock = {-1, -1}};
	int join[3] = {-1, -1, -1};

	const container_spec *spec = spec_in;
	if (o.sandbox && (r = container_sandbox_check(spec, o.sandbox, &err)) != 0)
		goto fail;
	if (!(c->spec = exec_spec_copy(spec))) {
		r = -ENOMEM;
		goto fail;
	}

	c->id = o.id ? strdup(o.id) : make_id();
	if (!c->id) {
		r = -ENOMEM;
		goto fail;
	}
	if (!valid_id(c->id)) {
		r = fail_msg(&err, CONTAINER_E_SPEC, "container id \"%s\": use [A-Za-z0-9._-], at most 64", c->id);
		goto fail;
	}
	p.spec = spec;
	p.rootless = uid != 0;
	/* Root with a subordinate range: always a user namespace, so the
	 * container's root is an unprivileged host id (docs/containers.md,
	 * "Identity"). */
	const container_idrange *range = !p.rootless && o.idrange && o.idrange->uid_count &&
						 o.idrange->gid_count
					 ? o.idrange
					 : NULL;
	unsigned ns = spec->namespaces | CONTAINER_NS_MOUNT | CONTAINER_NS_PID;
	if (p.rootless || range)
		ns |= CONTAINER_NS_USER;
	if (o.sandbox && !o.sandbox->network)
		ns |= CONTAINER_NS_NET;
	p.userns = ns & CONTAINER_NS_USER;
	/* joined, not made: the clone inherits them from the thread that
	 * makes it (launch_clone) */
	unsigned joined = (spec->ns_join[CONTAINER_JOIN_NET] ? CONTAINER_NS_NET : 0) |
			  (spec->ns_join[CONTAINER_JOIN_IPC] ? CONTAINER_NS_IPC : 0) |
			  (spec->ns_join[CONTAINER_JOIN_UTS] ? CONTAINER_NS_UTS : 0);
	if (joined && ((r = launch_join_open(spec, p.rootless, o.join_fds, join, &err)) != 0 ||
		       (o.sandbox && (r = launch_join_check_sandbox(spec, join, &err)) != 0)))
		goto fail;
	p.clone_flags = clone_flags_of(ns & ~joined);
	p.set_groups = !p.rootless;
	if (p.rootless && (r = check_caller_mappings(spec, uid, gid, &err)) != 0)
		goto fail;
	if (range && (r = check_range_mappings(spec, range, &err)) != 0)
		goto fail;
	if (!p.rootless && !range && p.userns && !spec->n_uid_mappings) {
		r = fail_msg(&err, CONTAINER_E_MAPPING,
			     "/linux/uidMappings: required with a user namespace");
		goto fail;
	}
	struct stat est;
	if (o.endpoint && stat(o.endpoint, &est) < 0) {
		r = fail_msg(&err, -errno, "endpoint %s: %m", o.endpoint);
		goto fail;
	}
	p.endpoint_dir = o.endpoint && S_ISDIR(est.st_mode);

	state = o.state_dir ? strdup(o.state_dir) : default_state_dir();
	if (!state) {
		r = -ENOMEM;
		goto fail;
	}
	if (o.cache_dir)
		cache = strdup(o.cache_dir);
	else
		(void)asprintf(&cache, "%s/cache", state);
	if (!cache) {
		r = -ENOMEM;
		goto fail;
	}
	if (!spec->root_path || strcmp(spec->root_path, "/") == 0) {
		/* One shared, empty anchor: each container mounts its root there
		 * in its own mount namespace (pivot_root cannot pivot "/" onto
		 * itself). */
		if (asprintf(&stage, "%s/stage", state) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		if ((r = mkdir_p(stage, 0700)) < 0) {
			r = fail_msg(&err, r, "state dir %s: %s", stage, strerror(-r));
			goto fail;
		}
		if (range && (r = reachable_by_others(stage, state, &err)) != 0)
			goto fail;
		p.stage = stage;
		if (!spec->root_path && (r = rootfs_quick_plan(&p)) < 0) {
			r = fail_msg(&err, r, "planning the quick path's root: %s", strerror(-r));
			goto fail;
		}
	} else
		p.stage = spec->root_path;

	if ((r = seccomp_prepare(spec, o.sandbox, cache, &p.filter, &err)) < 0)
		goto fail;
	if (!p.rootless) {
		/* capset cannot grant what we do not hold: say which. */
		cap_t own = cap_get_proc();
		uint64_t missing = 0;
		for (int i = 0; own && i <= cap_last_supported(); i++) {
			cap_flag_value_t v = CAP_CLEAR;
			cap_get_flag(own, i, CAP_PERMITTED, &v);
			if (v != CAP_SET)
				missing |= 1ull << i;
		}
		if (own)
			cap_free(own);
		uint64_t asked = spec->caps.permitted | spec->caps.effective | spec->caps.inheritable;
		if (asked & missing) {
			r = fail_msg(&err, CONTAINER_E_DENIED,
				     "/process/capabilities: %s is not held by the runtime",
				     cap_name_from_number(__builtin_ctzll(asked & missing)));
			goto fail;
		}
	}
	if ((r = caps_prepare(&spec->caps, &p.caps)) < 0) {
		r = fail_msg(&err, r, "capabilities: %s", strerror(-r));
		goto fail;
	}
	if ((r = cgroup_setup(&c->cg, o.cgroup_parent ? o.cgroup_parent : "scm", c->id,
			      &spec->resources, p.rootless, &err)) < 0)
		goto fail;
	if ((r = devices_setup(&c->cg, spec, o.sandbox, o.cgroup_parent ? o.cgroup_parent : "scm", c->id,
			       p.rootless, &err)) != 0)
		goto fail;
	freezer_setup(&c->cg, o.cgroup_parent ? o.cgroup_parent : "scm", c->id);
	p.cg = &c->cg;
	if (pipe2(p.err_pipe, O_CLOEXEC) < 0 || pipe2(p.status_pipe, O_CLOEXEC) < 0 ||
	    (p.userns && pipe2(p.sync_pipe, O_CLOEXEC) < 0) ||
	    (o.pty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.console_sock) < 0)) {
		r = fail_msg(&err, -errno, "pipe: %m");
		goto fail;
	}

	/* Signals stay blocked in the child until PID 1's signalfd takes them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pidfd = -1;
	/* v1 cgroups are joined by the child after the clone, so a cgroup
	 * namespace made by the clone would be rooted in our cgroup. */
	bool joins = false;
	for (int k = 0; k < CG_COUNT; k++)
		joins |= c->cg.procs_fd[k] >= 0;
	p.late_cgroupns = (ns & CONTAINER_NS_CGROUP) && !c->cg.all_v2 && joins;
	/* A new network namespace costs milliseconds, and clone3 pays them in
	 * the caller (scmd's event loop): as root the child makes its own,
	 * after taking its mapped ids when it has a user namespace (which
	 * then owns it, as with the clone). Rootless the clone must (the
	 * namespace fds opened below must be the container's). */
	p.late_netns = (ns & ~joined & CONTAINER_NS_NET) && !p.rootless;
	struct clone_args ca = {
		.flags = ((uint64_t)clone_flags_of(ns & ~joined) & ~(p.late_cgroupns ? (uint64_t)CLONE_NEWCGROUP : 0) &
			  ~(p.late_netns ? (uint64_t)CLONE_NEWNET : 0)) |
			 CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
	};
	if (c->cg.all_v2 && c->cg.v2_dir_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)c->cg.v2_dir_fd;
	}
	bool entered;
	pid_t pid = launch_clone(joined ? join : NULL, &ca, child_thunk, &p, &entered);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		r = fail_msg(&err, (int)pid, "%s: %s", entered ? "clone3" : "joining the namespaces of /linux/namespaces",
			     strerror((int)-pid));
		goto fail;
	}
	c->pid = pid;
	c->pidfd = pidfd;
	p.err_pipe[1] = safe_close(p.err_pipe[1]);
	p.status_pipe[1] = safe_close(p.status_pipe[1]);
	p.console_sock[1] = safe_close(p.console_sock[1]);
	cgroup_close_fds(&c->cg);
	if (p.userns) {
		p.sync_pipe[0] = safe_close(p.sync_pipe[0]);
		r = write_maps(pid, spec, p.rootless, range, uid, gid);
		if (r < 0) {
			r = fail_msg(&err, r, "user namespace maps: %s", strerror(-r));
			goto fail;
		}
		/* Rootless, before PID 1 goes on (and turns non-dumpable): its
		 * namespaces, for container_exec. Root enters by the pidfd. */
		static const char *const ns_names[] = {"user", "mnt", "pid", "ipc", "uts", "net", "cgroup"};
		for (size_t i = 0; p.rootless && i < ELEMENTSOF(ns_names); i++) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns_names[i]);
			c->ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		}
		if (!p.rootless)
			rlimits_preset(pid, spec);
		(void)!write(p.sync_pipe[1], "x", 1);
		p.sync_pipe[1] = safe_close(p.sync_pipe[1]);
	}
	/* The rest comes through the error pipe: EOF when the main process
	 * exec'd, text when a setup step failed. Reading it is the caller's,
	 * through container_start_finish, so an event loop never waits on a
	 * child that may hang (a mount source on a dead FUSE or NFS server). */
	(void)fcntl(p.err_pipe[0], F_SETFL, O_NONBLOCK);
	c->launch_fd = p.err_pipe[0];
	rootfs_quick_plan_done(&p);
	c->status_fd = p.status_pipe[0];
	c->console_fd = p.console_sock[0];
	c->caps = p.caps;
	c->filter = p.filter;
	c->namespaces = ns;
	c->userns = p.userns;
	c->rootless = p.rootless;
	c->launching = true;
	for (int i = 0; i < 3; i++)
		safe_close(join[i]);
	*ret = c;
	return 0;
fail:
	for (int i = 0; i < 3; i++)
		safe_close(join[i]);
	rootfs_quick_plan_done(&p);
	close_pipe(p.err_pipe);
	close_pipe(p.sync_pipe);
	close_pipe(p.status_pipe);
	close_pipe(p.console_sock);
	if (p.caps)
		cap_free(p.caps);
	container_free(c);
	scm_error_push(ret_err, TAKE_PTR(err));
	return r;
}

void launch_report_at(int fd, const char *where, const char *msg)
{
	struct launch_record r;
	memset(&r, 0, sizeof(r));
	strncpy(r.where, where, sizeof(r.where) - 1);
	strncpy(r.msg, msg, sizeof(r.msg) - 1);
	(void)!write(fd, &r, sizeof(r));
}

void launch_report_record(int fd, const struct launch_record *rec)
{
	(void)!write(fd, rec, sizeof(*rec));
}

int launch_note_at(struct launch_record *rec, const char *where, int err, const char *fmt, ...)
{
	memset(rec, 0, sizeof(*rec));
	strncpy(rec->where, where, sizeof(rec->where) - 1);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rec->msg, sizeof(rec->msg), fmt, ap);
	va_end(ap);
	/* The reason says what went wrong: when both do not fit, the message
	 * is cut to keep it. */
	const char *why = err > 0 ? strerrordesc_np(err) : NULL;
	size_t wl = why ? strlen(why) : 0, cap = sizeof(rec->msg);
	if (why && n >= 0 && cap >= wl + 3) {
		size_t at = (size_t)n < cap - wl - 3 ? (size_t)n : cap - wl - 3;
		memcpy(rec->msg + at, ": ", 2);
		memcpy(rec->msg + at + 2, why, wl + 1);
	}
	return -err;
}

scm_error *container_record_error(const void *buf, size_t len, int code)
{
	struct launch_record r;
	memset(&r, 0, sizeof(r));
	memcpy(&r, buf, len < sizeof(r) ? len : sizeof(r));
	r.where[sizeof(r.where) - 1] = 0;
	r.msg[sizeof(r.msg) - 1] = 0;
	if (len < sizeof(r.where)) /* not a record: what came, as text */
		return scm_error_new(code, NULL, "%.*s", (int)len, (const char *)buf);
	return scm_error_new(code, r.where[0] ? r.where : NULL, "%s", r.msg);
}

int container_launch_fd(const container *c)
{
	return c->launching ? c->launch_fd : -1;
}

int container_start_finish(container *c, scm_error **ret_err)
{
	if (!c->launching)
		return 0;
	for (;;) {
		ssize_t n = read(c->launch_fd, c->launch_rec + c->launch_got,
				 sizeof(c->launch_rec) - c->launch_got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return -EAGAIN;
		if (n > 0 && (c->launch_got += (size_t)n) < sizeof(c->launch_rec))
			continue;
		break; /* EOF, an error, or the whole record */
	}
	c->launching = false;
	c->launch_fd = safe_close(c->launch_fd);
	if (c->launch_got) {
		scm_error *e = container_record_error(c->launch_rec, c->launch_got, -EIO);
		scm_error_push(ret_err, scm_error_wrap(e, -EIO, SCM_HERE, "container setup"));
		return -EIO;
	}
	return c->console_fd >= 0 ? console_receive(c, ret_err) : 0;
}

int container_start(const container_spec *spec, const container_opts *opts, container **ret,
		    scm_error **ret_err)
{
	container *c = NULL;
	int r = container_start_begin(spec, opts, &c, ret_err);
	if (r != 0)
		return r;
	while ((r = container_start_finish(c, ret_err)) == -EAGAIN) {
		struct pollfd pfd = {.fd = c->launch_fd, .events = POLLIN};
		(void)poll(&pfd, 1, -1);
	}
	if (r != 0) {
		container_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
