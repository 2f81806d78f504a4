/* container-hook.h: what the pieces of scmd's container hook share (internal
 * to scm/scmd; the rest of scmd uses the scmd_ctr_* calls in scmd.h).
 *
 * The hook was one file; it is split along its concepts:
 *   container-hook.c    the record's life once launched (running, exited,
 *                       dying), the control ops on it, startup and shutdown
 *   container-launch.c  from a request to a launched container: the spec,
 *                       the environment, the endpoint, the launch's watches
 *   container-output.c  where a container's output goes: its capped,
 *                       rotated log, an attached client's pipe, or a pty
 *   container-view.c    the JSON of `scmctl container list/show` and of an
 *                       exit status
 *   container-leftovers.c  the state file a crashed scmd leaves, and what
 *                       the next one does with it
 * They share the record below and a few calls; nothing else includes this. */
#ifndef SCMD_CONTAINER_HOOK_H
#define SCMD_CONTAINER_HOOK_H

#include <json-c/json.h>

#include "container.h"
#include "scmd.h"

struct waiter {
	struct list node;
	struct conn *conn;
	uint32_t call_id;
};

/* A container's life in scmd: launching (its setup runs; the error pipe
 * and a timer are watched, the `run` reply waits), running, exited (a
 * record for show/logs). A launch that fails or is abandoned makes it
 * dying: killed, its pidfd watched, and the record freed once reaped. No
 * step waits: every transition comes from a watch. */
struct scmd_ctr {
	struct list node;
	char *name, *log_path, *cmdline, *state_path;
	uint64_t serial; /* unique in this scmd: what timers hold, never the name */
	container *c;
	struct watch pidw, outw, launchw, launch_timer;
	int log_fd, attach_fd;
	int64_t log_size;     /* bytes in the current file */
	int64_t log_file_max; /* what one file may hold */
	int log_files;        /* rotated files kept beside the current one */
	uint64_t log_gen;     /* the generation the current file becomes when rotated */
	struct endpoint *ep;
	struct service *provider_of; /* this container runs that service's provider */
	bool launching, dying, exited;
	/* a provider's container let go of by its service (replaced by a
	 * service restart, or a successor given up): no provider's end when
	 * it ends, and its record goes then */
	bool replaced;
	int status;
	unsigned fds; /* scmd's fds it holds, charged to d->ctr_fds_used */
	/* the `container run` call answered when the launch completes */
	struct conn *run_conn;
	uint32_t run_call;
	int attach_client_fd;
	bool tty; /* attach_client_fd is the container's pty master, at the launch's end */
	uint64_t started, ended;
	struct list waiters;
	/* the sandbox its profiles gave it (policy_sandbox_to_json; NULL: the
	 * default one), what an update narrows from; paused by the user */
	char *sandbox_json;
	bool paused;
	uint64_t kill_at; /* a stop's SIGKILL is due then (0: none) */
};

/* container-hook.c */
struct scmd_ctr *ctr_find(struct scmd *d, const char *name);
void ctr_free_record(struct scmd_ctr *t);
void ctr_on_pidfd(struct scmd *d, struct watch *w, uint32_t events);
/* SIGKILL in ms unless it ended (stop's second step). */
int ctr_kill_timer(struct scmd *d, struct scmd_ctr *t, unsigned ms);
/* container-control.c: an exec whose process has not reached execve yet
 * (restart.c waits for it), and the exec'd processes across a restart. */
bool scmd_ctr_execs_starting(void);

/* container-launch.c: a launch in progress ends (done, or given up). */
void ctr_launch_poll(struct scmd *d, struct scmd_ctr *t);
void ctr_launch_abandon(struct scmd *d, struct scmd_ctr *t, int code, const char *fmt, ...) _printf_(4, 5);

/* container-output.c */
int ctr_log_open(struct scmd *d, struct scmd_ctr *t, const container_sandbox *sb);
void ctr_log_unlink_all(const struct scmd_ctr *t);
void ctr_logs_unlink(const char *dir, const char *name); /* NAME.log and NAME.log.* */
void ctr_drain_output(struct scmd *d, struct scmd_ctr *t);
void ctr_on_output(struct scmd *d, struct watch *w, uint32_t events);

/* container-update.c: pause, resume, update */
bool ctr_update_control(struct scmd *d, struct conn *c, const char *op, uint32_t id, struct scmd_ctr *t,
			json_object *a);
/* "running", "pausing" (the freezer is at work) or "paused" */
const char *ctr_run_state(const struct scmd_ctr *t);

/* container-view.c */
json_object *ctr_status_json(int status);

/* container-leftovers.c: the state file the next scmd reads if this one
 * dies without cleaning up. */
void ctr_state_write(struct scmd *d, struct scmd_ctr *t);
void ctr_state_remove(struct scmd_ctr *t);

#endif
