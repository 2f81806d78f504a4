/* container.h: the scm container runtime (libscmcontainers).
 *
 * A container is described by a container_spec: parsed from an OCI bundle's
 * config.json (a documented subset, docs/containers.md) or built in code for
 * the quick path (`-- CMD ARGS`: the host's /usr and /etc read-only,
 * private /tmp /dev /proc /run). A container_sandbox (filled by the policy part from the
 * effective profile) bounds what a spec may ask for. container_start()
 * launches it in fresh namespaces with seccomp, dropped capabilities and
 * cgroup limits, under a small PID 1 of ours that reaps and forwards signals.
 *
 * Conventions (scm/error.h): 0 on success, a negative errno when something
 * broke, a CONTAINER_E_* for an expected refusal; *ret_err (when asked)
 * gets an observation naming the field or step, with its where; ret_*
 * untouched on failure. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <scm/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Expected refusals: the runtime's range of the code registry
 * (scm/error.h), so they pass through scmd to scmctl unchanged. */
enum {
	CONTAINER_E_SPEC = SCM_E_CONTAINER_SPEC,       /* the spec is malformed: error names the JSON pointer */
	CONTAINER_E_DENIED = SCM_E_CONTAINER_DENIED,   /* the spec asks for more than the sandbox allows */
	CONTAINER_E_ROOTFS = SCM_E_CONTAINER_ROOTFS,   /* root.path missing or not a directory */
	CONTAINER_E_MAPPING = SCM_E_CONTAINER_MAPPING, /* uid/gid mappings impossible for this caller */
	CONTAINER_E_UNSUPPORTED = SCM_E_CONTAINER_UNSUPPORTED, /* a live change that needs a restart */
};

/* ---- identity ----------------------------------------------------------- */

/* The subordinate ids a root runtime maps containers onto (Docker's
 * userns-remap model: one range per runtime). Container id N is host id
 * start + N; host 0 is never in a range. count 0 = none. */
typedef struct container_idrange {
	uint32_t uid_start, uid_count, gid_start, gid_count;
} container_idrange;
#define CONTAINER_SUBID_USER "scm"
#define CONTAINER_SUBID_DEFAULT_START 2147483648u
#define CONTAINER_SUBID_DEFAULT_COUNT 65536u
/* "START:COUNT" (both uid and gid). -EINVAL when malformed, when start is
 * 0 or the range runs past 2^32-2. */
int container_idrange_parse(const char *text, container_idrange *ret);
/* One /etc/subuid-style text: the first "NAME:START:COUNT" line whose
 * NAME is user (or its numeric uid). 0 found, 1 not found, -EINVAL for a
 * matching line that is malformed. */
int container_subid_find(const char *text, size_t len, const char *user, uid_t uid,
			 uint32_t *ret_start, uint32_t *ret_count);
/* Reads /etc/subuid and /etc/subgid (or the given files) for user.
 * 0 found in both, 1 missing from either (ret untouched), <0 error with a
 * message. */
int container_idrange_load(const char *subuid, const char *subgid, const char *user,
			   container_idrange *ret, scm_error **ret_err);

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
/* The namespaces a spec can join by path, as indexes of container_spec's
 * ns_join. */
enum { CONTAINER_JOIN_NET, CONTAINER_JOIN_IPC, CONTAINER_JOIN_UTS };

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

/* linux.resources.devices: applied in order, later rules win. */
typedef struct container_device_rule {
	bool allow;
	char type;             /* 'a' (all), 'c' or 'b' */
	int64_t major, minor;  /* -1 = any */
	char access[4];        /* a subset of "rwm" */
} container_device_rule;
#define CONTAINER_MAX_DEVICE_RULES 32

typedef struct container_resources {
	int64_t memory_limit; /* bytes, -1 = none */
	int64_t pids_limit;   /* -1 = none */
	int64_t cpu_shares;   /* -1 = none */
	int64_t cpu_quota;    /* us per period, -1 = none */
	int64_t cpu_period;   /* us, -1 = default */
	unsigned defaulted;   /* CONTAINER_LIMIT_*: filled in by the default sandbox */
} container_resources;

/* Limits the default sandbox gives where neither the spec nor a profile
 * sets one (container_sandbox_apply()). They are best effort: a host
 * without the controller, or a rootless caller without a writable cgroup,
 * runs the container without them (RLIMIT_AS would break programs that
 * reserve address space, so it stands in only for an explicit memory
 * limit). The quick path's tmpfs sizes (container_spec_quick()) fit in the
 * default memory, which their pages are charged to. */
enum {
	CONTAINER_LIMIT_MEMORY = 1u << 0,
	CONTAINER_LIMIT_PIDS = 1u << 1,
};
#define CONTAINER_DEFAULT_MEMORY (INT64_C(512) << 20) /* bytes, swap counted in */
#define CONTAINER_DEFAULT_PIDS 512
#define CONTAINER_DEFAULT_LOG_BYTES (INT64_C(4) << 20) /* all of a log's files together */
#define CONTAINER_DEFAULT_LOG_FILES 1                  /* rotated files beside the current one */

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
	unsigned namespaces; /* CONTAINER_NS_* (a joined one's flag too) */
	/* linux.namespaces[].path: an existing network, ipc or uts namespace
	 * to join (a pod's), by CONTAINER_JOIN_*; ns_join_idx is its index in
	 * /linux/namespaces, for errors */
	char *ns_join[3];
	size_t ns_join_idx[3];
	container_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	container_resources resources;
	container_device_rule devices[CONTAINER_MAX_DEVICE_RULES]; /* linux.resources.devices */
	size_t n_devices;
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
int container_spec_load(const char *bundle, container_spec **ret, scm_error **ret_err);
/* Parses config.json text; bundle (may be NULL) resolves a relative
 * root.path, and when NULL the rootfs is not checked (fuzzing, tests). */
int container_spec_parse(const char *json, size_t len, const char *bundle, container_spec **ret,
			 scm_error **ret_err);
/* The namespaces the spec joins by path (linux.namespaces[].path) exist
 * and are of their type, checked as start does: CONTAINER_E_SPEC naming
 * /linux/namespaces/N/path otherwise. */
int container_spec_check_joins(const container_spec *s, scm_error **ret_err);
/* The same, keeping the checked namespaces open (ret_fds by
 * CONTAINER_JOIN_*, -1 where none; the caller closes them): a namespace
 * pinned at create, joined at start by container_opts.join_fds whatever
 * its path names by then. */
int container_spec_open_joins(const container_spec *s, int ret_fds[3], scm_error **ret_err);
/* The quick path: argv runs as the caller (root inside), the root holds
 * the host's /usr, /bin, /sbin, /lib* and /etc without its secrets,
 * read-only, and the runtime's own tree; private /tmp /dev /proc /run /sys,
 * all namespaces, no capabilities (docs/containers.md, "Host view"). */
int container_spec_quick(char *const *argv, container_spec **ret);
/* The runtime's own tree that the quick path binds read-only (the
 * directory above bin/, sbin/ or libexec/ holding the running program),
 * malloc'd; NULL when it is under /usr. */
char *container_self_tree(void);
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
	/* The container's log as its launcher keeps it (scmd): the most bytes
	 * on disk, all files together, and how many rotated files beside the
	 * current one. -1 = the default (CONTAINER_DEFAULT_LOG_*). */
	int64_t log_max_bytes, log_files;
} container_sandbox;

container_sandbox *container_sandbox_new(void); /* denies everything extra */
container_sandbox *container_sandbox_free(container_sandbox *sb);
/* {"syscalls":{"deny":[..],"allow":[..]},"capabilities":[..],"mounts":[{"source","destination","writable"}],
 *  "network":bool,"memory":N,"pids":N,"cpu":{"shares","quota","period"},
 *  "log":{"max_bytes":N,"files":N}} */
int container_sandbox_parse(const char *json, size_t len, container_sandbox **ret, scm_error **ret_err);
/* Fills in what the sandbox gives a spec that does not say: on the quick
 * path (or where the spec sets no limit) the sandbox's memory, pids and cpu
 * limits, its binds, and the network namespace; then the default sandbox's
 * memory and pids limits where still none is set (marked in
 * resources.defaulted). sb may be NULL: the defaults alone. Call before
 * start. */
int container_sandbox_apply(container_spec *spec, const container_sandbox *sb);
/* Narrows what a spec asks for to what sb allows, where refusing would
 * only refuse an engine's defaults (scm-oci's bundles: podman asks for 11
 * capabilities and 2048 pids on every container): the capability sets to
 * sb's, memory, pids and cpu limits to sb's, no_new_privileges on, ipc and
 * uts namespaces added. Binds, seccomp rules and devices are not narrowed:
 * those are still refused by the check. */
void container_sandbox_clip(container_spec *spec, const container_sandbox *sb);
/* CONTAINER_E_DENIED with a message naming the spec field when spec asks
 * for more than sb allows. container_start runs it too. */
int container_sandbox_check(const container_spec *spec, const container_sandbox *sb,
			    scm_error **ret_err);
/* Makes PATH (absolute, inside the root ROOTFD) a mount point if it is
 * missing: a directory, or an empty file when file is set; every component
 * resolved beneath ROOTFD (RESOLVE_IN_ROOT), nothing created through a
 * link. For a runtime front end that runs as the rootfs's owner
 * (scm-oci), since the container's mapped root cannot. */
int container_rootfs_mountpoint(int rootfd, const char *path, bool file);

/* ---- launch ------------------------------------------------------------- */

typedef struct container_opts {
	const char *id;            /* cgroup and state name; NULL = generated */
	/* A directory holding scm.sock, bound read-only at /run/scm; or a
	 * socket, bound read-only at /run/scm/scm.sock; or NULL. */
	const char *endpoint;
	int stdin_fd, stdout_fd, stderr_fd; /* -1 = inherit */
	const char *cgroup_parent; /* NULL = "scm" */
	const char *state_dir;     /* NULL = /run/scm or $XDG_RUNTIME_DIR/scm */
	const char *cache_dir;     /* compiled seccomp; NULL = state_dir/cache */
	const container_sandbox *sandbox; /* NULL: the spec alone decides */
	/* Root only: run in a user namespace mapped onto this range (a spec
	 * without mappings gets 0..count-1; its own must lie inside). NULL or
	 * count 0: no user namespace unless the spec asks. */
	const container_idrange *idrange;
	/* A terminal for the main process: a pty of the container's own devpts
	 * (its /dev/pts), made inside it, is its stdio (the stdio fds are
	 * ignored) and controlling terminal; the master is the runtime's once
	 * the launch finished (container_pty_take). rows, cols: its first
	 * window size (0: unset); raw_out: no output processing. */
	bool pty;
	unsigned short pty_rows, pty_cols;
	bool pty_raw_out;
	/* NULL, or 3 fds by CONTAINER_JOIN_* (-1: none): a namespace opened
	 * earlier (container_spec_open_joins), joined in place of what the
	 * spec's path of that type names now. Checked as a path is; a type
	 * the spec joins by no path is refused. */
	const int *join_fds;
} container_opts;
#define CONTAINER_OPTS_INIT                                                      \
	{ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 }

typedef struct container container;

/* Launches and waits until the main process exec'd (or setup failed). */
int container_start(const container_spec *spec, const container_opts *opts, container **ret,
		    scm_error **ret_err);
/* The same in two steps, for an event loop that must not wait on a child:
 * begin returns right after the clone (the id maps written); watch
 * container_launch_fd() for POLLIN and call container_start_finish(),
 * which is -EAGAIN while setup runs, 0 once the main process exec'd, and
 * -EIO with the setup step's message when it failed (the child then exits:
 * watch the pidfd, reap, free). A launch that never finishes is the
 * caller's to time out: container_signal(SIGKILL), reap, free. */
int container_start_begin(const container_spec *spec, const container_opts *opts, container **ret,
			  scm_error **ret_err);
int container_launch_fd(const container *c); /* -1 once finished */
/* opts.pty: the master of the container's terminal, once the launch
 * finished well (the caller's to close; -1 after the first call). */
int container_pty_take(container *c);
/* A child of the runtime that fails before its exec sends one fixed record
 * of at most this size on its error pipe (container_exec_begin's
 * *ret_errfd too). */
#define CONTAINER_RECORD_SIZE 1024
/* The len bytes read from such a pipe as an observation: code, the child's
 * where, its message. */
scm_error *container_record_error(const void *buf, size_t len, int code);
int container_start_finish(container *c, scm_error **ret_err);
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
		   pid_t *ret_pid, scm_error **ret_err);
/* container_exec without the wait: *ret_errfd (non-blocking, the caller
 * closes it) reads EOF once argv was exec'd, or the failing step's record
 * (container_record_error).
 * The process (a child of the caller) is killed with SIGKILL to give up on
 * an exec that never gets to execve; the one in the container goes too. */
int container_exec_begin(container *c, char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd,
			 pid_t *ret_pid, int *ret_errfd);
/* Kills what is left, reaps (blocking unless container_reaped), removes
 * cgroups and state. Returns NULL. */
container *container_free(container *c);

/* Pause and resume (freeze.c): every process of the container stops (or
 * goes on) through the cgroup freezer, v1 freezer.state or v2
 * cgroup.freeze. Freezing takes effect asynchronously: poll
 * container_freeze_state until it says FROZEN. A container with no
 * freezer cgroup (rootless without a delegated one) gets
 * CONTAINER_E_UNSUPPORTED saying why. A signal to a paused container
 * (container_signal) thaws it after sending: stop and kill work. */
enum container_freeze_state { CONTAINER_THAWED, CONTAINER_FREEZING, CONTAINER_FROZEN };
int container_freeze(container *c, bool freeze, scm_error **ret_err);
int container_freeze_state(const container *c); /* an enum value, or -errno */

/* Live limits: each value -1 leaves it as it is. memory and pids in bytes
 * and processes; cpu_weight 1-10000 (v2 cpu.weight; v1 cpu.shares is
 * scaled). A limit whose controller the container was started without
 * (no cgroup made for it) is CONTAINER_E_UNSUPPORTED, naming it: that
 * needs a restart. */
typedef struct container_limits {
	int64_t memory, pids, cpu_weight;
} container_limits;
#define CONTAINER_LIMITS_KEEP ((container_limits){ -1, -1, -1 })
int container_update_limits(container *c, const container_limits *l, scm_error **ret_err);

/* Narrows the seccomp filter from old_sb's to sb's: every process started
 * from now on (container_exec) gets sb's filter, which denies all the old
 * one did and more; processes already running keep the filter they
 * started with (only a process itself can add to its filter). 1 when it
 * narrowed, 0 when sb denies nothing more; CONTAINER_E_DENIED when sb
 * would allow a system call old_sb denies (widening needs a restart),
 * naming it. */
int container_narrow_seccomp(container *c, const container_sandbox *old_sb, const container_sandbox *sb,
			     const char *cache_dir, scm_error **ret_err);

/* Exported for tests and the bench. */
int container_wait_status_to_exit(int status); /* 128+sig for signals */

/* Restart in place (adopt.c): a running container as JSON (its fds by
 * number; the caller keeps them open across exec), the fds it holds, and
 * the object rebuilt in the successor. map turns a recorded fd number into
 * the fd that now holds it (NULL: the same number; -1: missing). Every fd
 * is checked (the pidfd names the recorded pid, a pipe, nsfs); on failure
 * the fds stay the caller's. check_only: the JSON alone is validated. */
struct json_object;
typedef int (*container_fd_map)(void *userdata, int fd);
struct json_object *container_serialise(const container *c);
size_t container_fds(const container *c, int *fds, size_t max);
int container_adopt(struct json_object *state, container_fd_map map, void *userdata, bool check_only,
		    container **ret, scm_error **ret_err);
/* The same for fds that came from the caller's own process (scmd's copy
 * over a socketpair it made, restart-handoff.c): they are what it held
 * under those numbers, so the kind of each is not checked again (nine
 * system calls a container, the pidfd's fdinfo among them); the JSON is
 * checked as by container_adopt. */
int container_adopt_own(struct json_object *state, container_fd_map map, void *userdata, container **ret,
			scm_error **ret_err);

#ifdef __cplusplus
}
#endif
