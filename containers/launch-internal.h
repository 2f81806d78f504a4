/* launch-internal.h: what container_start prepares before the clone (the
 * launch plan) and the pieces that use it: seccomp, capabilities, cgroups,
 * the rootfs steps and PID 1. Everything the child needs is computed here
 * in the parent, so the privileged part after the clone is only system
 * calls, in a fixed order. */
#pragma once
#include <linux/filter.h>
#include <stdbool.h>
#include <sys/capability.h>
#include <sys/types.h>

#include "container.h"
#include "scmutil.h"

/* What a child that failed before exec sends on its error pipe, in one
 * write (under PIPE_BUF, so it arrives whole): where it failed and what.
 * It runs after clone, where only a fixed record will do; the parent turns
 * it into an observation (container_record_error). */
struct launch_record {
	char where[64];
	char msg[CONTAINER_RECORD_SIZE - 64];
};
void launch_report_at(int fd, const char *where, const char *msg);
#define launch_report(fd, msg) launch_report_at((fd), SCM_HERE, (msg))
/* Sends a record a setup step filled (launch_note). */
void launch_report_record(int fd, const struct launch_record *rec);
/* Fills rec: the step's where and its message; returns -err (err > 0:
 * ": strerror(err)" is appended) for the step to return. */
#define launch_note(rec, err, ...) launch_note_at((rec), SCM_HERE, (err), __VA_ARGS__)
int launch_note_at(struct launch_record *rec, const char *where, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A compiled seccomp filter (shared, cached; never freed by users). */
typedef struct sc_filter {
	struct sock_fprog prog;
} sc_filter;

/* CG_DEVICES is the v1 devices controller, set up by devices.c (only for
 * a spec whose device rules allow something), after cgroup_setup.
 * CG_FREEZER is where pause freezes the container (freeze.c): the v1
 * freezer hierarchy, or a v2 cgroup (cgroup.freeze); set up last. */
enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_DEVICES, CG_FREEZER, CG_COUNT };

typedef struct cgroup_set {
	char *dirs[CG_COUNT]; /* per controller (v1) or the same v2 dir; NULL = none */
	bool v2[CG_COUNT];
	int procs_fd[CG_COUNT]; /* cgroup.procs, opened before the clone; -1 = none */
	int v2_dir_fd;          /* for CLONE_INTO_CGROUP when everything is v2 */
	bool all_v2;
	/* Rootless without a writable cgroup: rlimits stand in. */
	int64_t rlimit_nproc, rlimit_as;
	bool frozen; /* pause asked for, resume not yet */
} cgroup_set;

typedef struct launch_plan {
	const container_spec *spec;
	const container_opts *opts;
	const sc_filter *filter;
	cap_t caps;
	bool rootless;     /* user namespace mapping the caller to 0 */
	bool userns;       /* any user namespace */
	bool set_groups;   /* setgroups(2) is allowed (not in a rootless userns) */
	int clone_flags;
	bool late_cgroupns; /* unshare(CLONE_NEWCGROUP) after joining v1 cgroups */
	bool late_netns;    /* unshare(CLONE_NEWNET) in the child, not in clone3 */
	const char *stage; /* where the new root is assembled */
	char **etc_masks;  /* quick path: /etc entries left out (rootfs-plan.c) */
	char *self_tree;   /* quick path: the runtime's own tree, bound read-only; or NULL */
	bool endpoint_dir; /* opts->endpoint is a directory (bound at /run/scm) */
	cgroup_set *cg;
	int err_pipe[2];   /* child -> parent: a launch record (below); EOF = exec'd */
	int sync_pipe[2];  /* parent -> child: id maps written */
	int status_pipe[2];/* PID 1 -> parent: wait status of the main process */
	int console_sock[2]; /* opts->pty: main process -> parent, the pty's master */
} launch_plan;

struct container {
	char *id;
	pid_t pid;
	int pidfd;
	int status_fd;
	/* While launching: the read end of the error pipe (non-blocking) and
	 * what came through it so far. */
	int launch_fd;
	bool launching;
	char launch_rec[CONTAINER_RECORD_SIZE];
	size_t launch_got;
	/* opts->pty: while launching, the socket the master comes on; then
	 * the master until container_pty_take (console.c) */
	int console_fd, pty_master;
	/* Rootless: the namespaces, opened while PID 1 is still readable by
	 * us (it turns non-dumpable, and its memory belongs to the host's
	 * user namespace, so later only a privileged caller could setns). */
	int ns_fds[7];
	bool reaped;
	int status;
	cgroup_set cg;
	container_spec *spec; /* a copy of what exec needs */
	cap_t caps;
	const sc_filter *filter;
	/* the filter of the narrowest sandbox an update gave it (freeze.c):
	 * it denies all filter does and more, and later execs load it
	 * instead; NULL = none */
	const sc_filter *narrowed;
	/* filters an adopted container brought (adopt.c), freed with it */
	sc_filter *owned_filter, *owned_narrowed;
	unsigned namespaces;
	bool userns, rootless;
};

/* seccomp.c */
int seccomp_prepare(const container_spec *spec, const container_sandbox *sb, const char *cache_dir,
		    const sc_filter **ret, scm_error **ret_err);
int sc_filter_load(const sc_filter *f);
const char *const *container_default_denied_syscalls(void);

/* caps.c */
int caps_prepare(const container_caps *caps, cap_t *ret);
int caps_apply(const launch_plan *p, const char **step);

/* cgroup.c */
int cgroup_setup(cgroup_set *cg, const char *parent, const char *id,
		 const container_resources *res, bool rootless, scm_error **ret_err);
void cgroup_enter_child(const cgroup_set *cg); /* child: join (v1) */
void cgroup_close_fds(cgroup_set *cg);
/* devices.c: a spec's device rules, when one allows: a v1 devices cgroup
 * that denies all but those rules and the runtime's own nodes; refused
 * (CONTAINER_E_DENIED) under a sandbox, rootless, or without one. */
bool devices_allowed(const container_spec *s);
int devices_setup(cgroup_set *cg, const container_spec *s, const container_sandbox *sb,
		  const char *parent, const char *id, bool rootless, scm_error **ret_err);
int cgroup_remove(cgroup_set *cg);
/* freeze.c: the container's freezer cgroup, best effort (none: pause is
 * refused, saying why). After cgroup_setup and devices_setup. */
void freezer_setup(cgroup_set *cg, const char *parent, const char *id);

/* rootfs-resolve.c: paths beneath the root fd (RESOLVE_IN_ROOT, or an
 * O_NOFOLLOW walk without openat2); each returns an O_PATH fd. _open
 * follows links inside the root; _mkdirs and _mkfile create what is
 * missing one component at a time and never through a link (-ELOOP). */
/* nsjoin.c: the spec's namespaces to join by path, opened and checked
 * (ret_fds -1 where none; given: fds handed over for those paths, or
 * NULL). */
int launch_join_open(const container_spec *s, bool rootless, const int *given, int ret_fds[3], scm_error **err);
/* A sandbox's container joins only other containers' ipc and uts
 * namespaces (owned by a user namespace other than the runtime's). */
int launch_join_check_sandbox(const container_spec *s, const int fds[3], scm_error **err);
/* clone3(ca): from this thread when fds is NULL, else from a thread made
 * for it, which joins fds first and ends after. The pid, or -errno
 * (*ret_entered false: joining failed, not the clone). In the child,
 * child(arg), which never returns. */
struct clone_args;
pid_t launch_clone(const int *fds, struct clone_args *ca, void (*child)(void *), void *arg, bool *ret_entered);

int rootfs_open(int rootfd, const char *path, int *ret_fd);
int rootfs_mkdirs(int rootfd, const char *path, int *ret_fd);
int rootfs_mkfile(int rootfd, const char *path, int *ret_fd);
/* The fallback walk alone (for the unit test). */
int rootfs_open_walk(int rootfd, const char *path, int *ret_fd);

/* rootfs.c: runs in the child, in its new mount namespace. */
int rootfs_setup(const launch_plan *p, struct launch_record *rec);

/* init.c: the container's PID 1. Never returns. */
_Noreturn void init_run(const launch_plan *p);
/* Exec the main process (after the drop); on failure reports and exits. */
_Noreturn void payload_exec(const launch_plan *p);
/* The spec's rlimits set on pid (0: self) from outside the container's
 * user namespace, before sandbox_enter sets them again inside. */
void rlimits_preset(pid_t pid, const container_spec *s);
/* Drop privileges (rlimits, caps, nnp, seccomp); shared with exec. */
int sandbox_enter(const launch_plan *p, struct launch_record *rec);

const char *const *container_default_masked_paths(void);
const char *const *container_default_readonly_paths(void);

/* rootfs-plan.c: what the quick path's root needs (parent side). */
int rootfs_quick_plan(launch_plan *p);
void rootfs_quick_plan_done(launch_plan *p);
char *rootfs_self_tree(void);

/* console.c: the main process's terminal, made in the container (the
 * slave, or -errno with rec filled); the runtime's side of it. */
int console_make(const launch_plan *p, struct launch_record *rec);
int console_receive(container *c, scm_error **ret_err);

/* Closes every fd but those listed (-1 entries ignored): a raw clone
 * shares nothing by exec, so PID 1 would otherwise keep every fd of the
 * runtime (scmd's sockets, other containers' pipes) for its whole life. */
void close_all_but(const int *keep, size_t n);

/* util */
int write_file(const char *path, const char *text);
