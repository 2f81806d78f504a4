/* oci.h: scm-oci, the OCI runtime front end (runc's command line) that
 * podman, containerd and CRI-O drive. The container itself is scmd's:
 * scm-oci turns the engine's bundle into one scm accepts (translate.c),
 * keeps runc-style state under --root (state.c), and leaves a monitor
 * process behind at `create` (shim.c) that the engine watches as the
 * container's pid: it asks scmd to launch at `start`, relays the output to
 * the engine's stdio and exits with the container's status. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "scm/scm.h"

/* The annotation naming the container's scm profiles (comma list); the
 * singular spelling is accepted and renamed. */
#define OCI_PROFILES_ANNOTATION "org.scm.profiles"

/* The engine's config.json (text) to the subset scm's runtime accepts:
 * ret_config is the config scmd reads (root.path made absolute against
 * bundle), ret_binds the engine's bind mounts as the admin binds of
 * container.run (the engine is root on scmd's control socket). What
 * cannot be honoured safely (hooks, joining namespaces, a terminal,
 * device nodes) is refused with the JSON pointer; what scm decides
 * itself (seccomp, cgroup paths, sysctls, LSM labels) is dropped. */
int oci_translate(const char *json, size_t len, const char *bundle, json_object **ret_config,
		  json_object **ret_binds, scm_error **ret_err);

/* A container id as engines give them (runc's rule: 1-1024 of
 * [A-Za-z0-9_+.-], not "." or ".."). */
bool oci_id_valid(const char *id);
/* The scmd container name for an id: the id itself when it is a valid
 * scmd name of at most 48 characters, else "oci-" and 44 characters of
 * it (podman's 64-hex ids), made unique by --root's state. */
void oci_scm_name(const char *id, char ret[49]);

/* Global options. */
struct oci_globals {
	const char *root;        /* --root: state directory */
	const char *log;         /* --log FILE */
	bool log_json;           /* --log-format json */
	const char *scm_runtime; /* --scm-runtime-dir: scmd's runtime directory */
	bool debug;
};
extern struct oci_globals oci_g;

/* Prints "scm-oci: CHAIN" on stderr and to --log (a JSON line with
 * --log-format json); returns 1. */
int oci_fail(scm_error *e);

/* `exec` (exec.c) */
int oci_cmd_exec(int argc, char **argv);
int oci_cmd_ps(int argc, char **argv);

/* ---- state (state.c) ---------------------------------------------------- */
struct oci_state {
	char *id, *name, *bundle, *created, *scm_runtime;
	pid_t shim_pid;
	unsigned long long shim_start; /* /proc/PID/stat field 22 */
	json_object *annotations, *binds;
};
enum oci_status { OCI_CREATED, OCI_RUNNING, OCI_STOPPED };

/* --root, or its default. */
const char *oci_root_dir(void);
/* ROOT/ID as an open directory fd (O_PATH). */
int oci_state_dir(const char *id, bool create, int *ret_fd, scm_error **ret_err);
int oci_state_load(const char *id, struct oci_state *ret, scm_error **ret_err);
int oci_state_save(int dirfd, const struct oci_state *st, scm_error **ret_err);
void oci_state_done(struct oci_state *st);
enum oci_status oci_status(int dirfd, const struct oci_state *st);
const char *oci_status_name(enum oci_status s);
unsigned long long oci_proc_start(pid_t pid);
int oci_state_remove(const char *id, scm_error **ret_err);
/* Writes a small file under dirfd atomically (rename). */
int oci_write_file(int dirfd, const char *name, const char *text, scm_error **ret_err);
/* Text of a small file under dirfd, NULL if missing. */
char *oci_read_file(int dirfd, const char *name);

/* ---- expose.c ----------------------------------------------------------- */
/* Binds the rootfs and every bind source under the state directory, where
 * the container's mapped ids can reach them, and rewrites cfg and binds
 * to name those. */
int oci_expose(int dirfd, json_object *cfg, json_object *binds, scm_error **ret_err);
/* Undoes it (n_binds: how many binds the state holds). */
void oci_unexpose(int dirfd, size_t n_binds);

/* ---- pod.c --------------------------------------------------------------- */
/* /proc/PID/ns/TYPE paths in cfg's linux.namespaces naming the monitor of
 * one of this root's containers become its scmd container's PID 1's. */
/* pins (may be NULL) records, by CONTAINER_JOIN_*, which container's PID 1
 * a rewritten path names: oci_pod_pins_check, once the namespaces are
 * open, proves that pid was still that PID 1 (not a reused one). */
struct oci_pod_pins {
	char *name[3];
	int pid[3];
};
int oci_fix_ns_paths(json_object *cfg, struct oci_pod_pins *pins, scm_error **ret_err);
int oci_pod_pins_check(const struct oci_pod_pins *pins, scm_error **ret_err);
void oci_pod_pins_done(struct oci_pod_pins *pins);

/* ---- a terminal (console.c) -------------------------------------------- */
/* A pty pair for `terminal: true` (process.consoleSize as its size). */
int oci_console_open(json_object *process, int *ret_master, int *ret_slave, scm_error **ret_err);
/* Hands the master to the engine over --console-socket (SCM_RIGHTS). */
int oci_console_send(const char *path, int master, scm_error **ret_err);
/* process.terminal and --console-socket go together (where: "config.json"
 * or "--process FILE"). */
int oci_console_check(json_object *process, const char *console_socket, const char *where, scm_error **ret_err);
/* Relays between outer (the engine's pty's slave) and inner (the master of
 * the container's pty) until the container's side is closed; signals from
 * sfd go to on_signal. */
void oci_console_relay(int outer, int inner, int sfd, void (*on_signal)(int sig, void *data), void *data);

/* ---- scmd (shim.c) ------------------------------------------------------ */
/* scmd's runtime directory: --scm-runtime-dir, $SCM_RUNTIME_DIR, scmd's
 * default. create keeps it in the state, so later commands (an engine's
 * cleanup calls delete without the flags it gave create) find scmd. */
const char *oci_scm_runtime_dir(void);
/* One request on scmd's control socket (opened for this call). */
int oci_scmd_call(const char *op, json_object *args, const int *fds, size_t n_fds, json_object **ret,
		  int *ret_fd, scm_error **ret_err);
/* The monitor: never returns. sync is written one byte once it listens.
 * tty: the slave of the engine's terminal, or -1. */
_Noreturn void oci_shim_main(int dirfd, const char *id, int sync, int tty, const int join[3]);
/* Asks the monitor of a created container to start it. */
int oci_shim_start(int dirfd, const char *id, scm_error **ret_err);
