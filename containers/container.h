/* container.h: the scm container runtime (libscmcontainers).
 *
 * A container is described by a container_spec: parsed from an OCI bundle's
 * config.json (a documented subset, docs/containers.md) or built in code for
 * the quick path (`-- CMD ARGS`: the host / read-only, private /tmp /dev
 * /proc /run). A container_sandbox (filled by the policy part from the
 * effective profile) bounds what a spec may ask for. container_start()
 * launches it in fresh namespaces with seccomp, dropped capabilities and
 * cgroup limits, under a small PID 1 of ours that reaps and forwards signals.
 *
 * Conventions: 0 on success, a negative errno when something broke, a
 * positive CONTAINER_E_* for an expected refusal; *ret_errmsg (when asked)
 * gets a malloc'd message naming the field or step; ret_* untouched on
 * failure. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Expected refusals (positive). */
enum {
	CONTAINER_E_SPEC = 1,    /* the spec is malformed: error names the JSON pointer */
	CONTAINER_E_DENIED = 2,  /* the spec asks for more than the sandbox allows */
	CONTAINER_E_ROOTFS = 3,  /* root.path missing or not a directory */
	CONTAINER_E_MAPPING = 4, /* uid/gid mappings impossible for this caller */
};

/* Where the container's scmd endpoint appears inside. */
#define CONTAINER_ENDPOINT_PATH "/run/scm/scm.sock"

/* ---- spec ------------------------------------------------------------- */

enum container_ns {
	CONTAINER_NS_MOUNT = 1u << 0,
	CONTAINER_NS_PID = 1u << 1,
	CONTAINER_NS_IPC = 1u << 2,
	CONTAINER_NS_UTS = 1u << 3,
	CONTAINER_NS_NET = 1u << 4,
	CONTAINER_NS_CGROUP = 1u << 5,
	CONTAINER_NS_USER = 1u << 6,
};

typedef struct container_idmap {
	uint32_t container_id, host_id, size;
} container_idmap;

typedef struct container_mount {
	char *destination;
	char *type;         /* "bind", "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup" */
	char *source;
	unsigned long flags;  /* MS_* from options */
	bool recursive;       /* rbind */
	bool readonly;
	char *data;           /* options the kernel parses (mode=, size=, ...) */
} container_mount;

enum container_sc_action {
	CONTAINER_SC_ALLOW = 0,
	CONTAINER_SC_ERRNO = 1, /* with errno_ret */
	CONTAINER_SC_KILL = 2,
	CONTAINER_SC_TRAP = 3,
	CONTAINER_SC_LOG = 4,
};

typedef struct container_sc_rule {
	char *name;
	int action;    /* enum container_sc_action */
	int errno_ret; /* for CONTAINER_SC_ERRNO */
} container_sc_rule;

typedef struct container_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
} container_rlimit;

/* Capability sets as bit masks (bit n = capability n). */
typedef struct container_caps {
	uint64_t bounding, effective, permitted, inheritable, ambient;
} container_caps;

typedef struct container_resources {
	int64_t memory_limit; /* bytes, -1 = none */
	int64_t pids_limit;   /* -1 = none */
	int64_t cpu_shares;   /* -1 = none */
	int64_t cpu_quota;    /* us per period, -1 = none */
	int64_t cpu_period;   /* us, -1 = default */
} container_resources;

typedef struct container_spec {
	/* process */
	char **args; /* NULL-terminated */
	char **env;  /* NULL-terminated */
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *additional_gids;
	size_t n_additional_gids;
	bool terminal;
	bool no_new_privileges;
	container_caps caps;
	container_rlimit *rlimits;
	size_t n_rlimits;
	/* root */
	char *root_path; /* absolute; NULL in the quick path (the host's /) */
	bool root_readonly;
	char *hostname;
	container_mount *mounts;
	size_t n_mounts;
	/* linux */
	unsigned namespaces; /* CONTAINER_NS_* */
	container_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	container_resources resources;
	bool has_seccomp;
	int seccomp_default; /* enum container_sc_action (ALLOW when no seccomp section) */
	int seccomp_default_errno;
	container_sc_rule *seccomp_rules;
	size_t n_seccomp_rules;
	char **masked_paths, **readonly_paths; /* NULL-terminated */
	/* annotations */
	char **profiles; /* "org.scm.profiles", NULL-terminated (may be empty) */
	char **provides; /* "org.scm.provides" */
	bool quick;      /* built by container_spec_quick() */
} container_spec;

/* Reads BUNDLE/config.json. CONTAINER_E_SPEC / _ROOTFS / _MAPPING with a
 * message such as "/process/args/2: expected a string". */
int container_spec_load(const char *bundle, container_spec **ret, char **ret_errmsg);
/* Parses config.json text; bundle (may be NULL) resolves a relative
 * root.path, and when NULL the rootfs is not checked (fuzzing, tests). */
int container_spec_parse(const char *json, size_t len, const char *bundle, container_spec **ret,
			 char **ret_errmsg);
/* The quick path: argv runs as the caller, root = the host / read-only,
 * private /tmp /dev /proc /run, all namespaces, no capabilities. */
int container_spec_quick(char *const *argv, container_spec **ret);
container_spec *container_spec_free(container_spec *s);

/* ---- sandbox ------------------------------------------------------------ */

/* What the effective profile allows; the policy part fills it. A spec that
 * asks for more is refused (CONTAINER_E_DENIED naming the field). */
typedef struct container_sandbox_mount {
	char *source; /* host path (bind) */
	char *destination;
	bool writable;
} container_sandbox_mount;

typedef struct container_sandbox {
	char **syscalls_denied;  /* denied on top of the default list (EPERM) */
	char **syscalls_allowed; /* removed from the default deny list */
	uint64_t caps_keep;      /* the most any capability set may hold */
	container_sandbox_mount *mounts; /* binds a spec may use */
	size_t n_mounts;
	bool network; /* false: a private net namespace with loopback only */
	int64_t memory_limit, pids_limit, cpu_shares, cpu_quota, cpu_period; /* -1 = none */
} container_sandbox;

container_sandbox *container_sandbox_new(void); /* denies everything extra */
container_sandbox *container_sandbox_free(container_sandbox *sb);
/* {"syscalls":{"deny":[..],"allow":[..]},"capabilities":[..],"mounts":[{"source","destination","writable"}],
 *  "network":bool,"memory":N,"pids":N,"cpu":{"shares","quota","period"}} */
int container_sandbox_parse(const char *json, size_t len, container_sandbox **ret, char **ret_errmsg);
/* Fills in what the sandbox gives a spec that does not say: on the quick
 * path (or where the spec sets no limit) the sandbox's memory, pids and cpu
 * limits, its binds, and the network namespace. Call before start. */
int container_sandbox_apply(container_spec *spec, const container_sandbox *sb);
/* CONTAINER_E_DENIED with a message naming the spec field when spec asks
 * for more than sb allows. container_start runs it too. */
int container_sandbox_check(const container_spec *spec, const container_sandbox *sb,
			    char **ret_errmsg);

/* ---- launch ------------------------------------------------------------- */

typedef struct container_opts {
	const char *id;            /* cgroup and state name; NULL = generated */
	const char *endpoint;      /* host socket bound at /run/scm/scm.sock, or NULL */
	int stdin_fd, stdout_fd, stderr_fd; /* -1 = inherit */
	const char *cgroup_parent; /* NULL = "scm" */
	const char *state_dir;     /* NULL = /run/scm or $XDG_RUNTIME_DIR/scm */
	const char *cache_dir;     /* compiled seccomp; NULL = state_dir/cache */
	const container_sandbox *sandbox; /* NULL: the spec alone decides */
} container_opts;
#define CONTAINER_OPTS_INIT                                                      \
	{ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 }

typedef struct container container;

/* Launches and waits until the main process exec'd (or setup failed). */
int container_start(const container_spec *spec, const container_opts *opts, container **ret,
		    char **ret_errmsg);
/* The same in two steps, for an event loop that must not wait on a child:
 * begin returns right after the clone (the id maps written); watch
 * container_launch_fd() for POLLIN and call container_start_finish(),
 * which is -EAGAIN while setup runs, 0 once the main process exec'd, and
 * -EIO with the setup step's message when it failed (the child then exits:
 * watch the pidfd, reap, free). A launch that never finishes is the
 * caller's to time out: container_signal(SIGKILL), reap, free. */
int container_start_begin(const container_spec *spec, const container_opts *opts, container **ret,
			  char **ret_errmsg);
int container_launch_fd(const container *c); /* -1 once finished */
int container_start_finish(container *c, char **ret_errmsg);
/* True once the container's PID 1 was reaped (container_free then never
 * waits). */
bool container_reaped(const container *c);
const char *container_id(const container *c);
/* PID 1 of the container as the host sees it. */
pid_t container_pid(const container *c);
int container_pidfd(const container *c);
/* Signals the main process (through PID 1, which forwards it). */
int container_signal(container *c, int sig);
/* Blocks until the container ends; *ret_status is a wait(2) status of the
 * main process (WIFEXITED/WIFSIGNALED). */
int container_wait(container *c, int *ret_status);
/* Non-blocking: 0 and the status when it ended, -EAGAIN while it runs. */
int container_try_wait(container *c, int *ret_status);
/* SIGTERM, then SIGKILL after timeout_ms; waits. */
int container_stop(container *c, int timeout_ms, int *ret_status);
/* Runs argv inside a running container (its namespaces, cgroups, seccomp
 * and capabilities); returns the new process's host pid (a child of the
 * caller, reap it with waitpid). */
int container_exec(container *c, char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd,
		   pid_t *ret_pid, char **ret_errmsg);
/* container_exec without the wait: *ret_errfd (non-blocking, the caller
 * closes it) reads EOF once argv was exec'd, or the failing step's text.
 * The process (a child of the caller) is killed with SIGKILL to give up on
 * an exec that never gets to execve; the one in the container goes too. */
int container_exec_begin(container *c, char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd,
			 pid_t *ret_pid, int *ret_errfd);
/* Kills what is left, reaps (blocking unless container_reaped), removes
 * cgroups and state. Returns NULL. */
container *container_free(container *c);

/* Exported for tests and the bench. */
int container_wait_status_to_exit(int status); /* 128+sig for signals */

#ifdef __cplusplus
}
#endif
