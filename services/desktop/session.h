/* session.h: scm-desktop-session, the desktop session manager
 * (stubs/idl/desktop.json). One process per scmd; it keeps every running
 * desktop in memory and builds each from scm objects through scmd's
 * control socket, as the host identity: the service gfx-NAME (the
 * desktop's graphics proxy), one container NAME-APP per app (or, without
 * containers, an endpoint desktop-NAME-APP and a host process), and
 * optionally a noVNC page server. */
#pragma once
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "scm/scm.h"
#include "spec.h"

#define SESSION_APPS_MAX 32

struct session_app {
	desktop_app spec;
	char label[80]; /* the caller the proxy sees: NAME-APP or desktop-NAME-APP */
	pid_t pid;      /* without containers: scm-desktop-app on the host */
	int x, y;
	char border[16], display[16];
};

/* What a desktop is doing: only a running one answers show, viewers and
 * screenshot; the others are listed by name and state alone, because a
 * worker is filling them in (starting) or taking them apart (stopping). */
enum desktop_state { DESKTOP_STARTING, DESKTOP_RUNNING, DESKTOP_STOPPING };

struct op;

struct desktop {
	struct desktop *next;
	char *name, *service, *dir; /* dir: RUNTIME/desktops/NAME.d, 0700 */
	uint32_t width, height;
	bool containers;
	enum desktop_state state;
	uid_t owner;        /* the launching caller's uid (SO_PEERCRED, as scmd saw it) */
	struct op *ops;     /* the operation running (the head) and those queued behind it */
	bool stop_queued;   /* a stop is on its way: later calls find no desktop */
	scm_channel *watch; /* kept open to gfx-NAME: it breaks when the proxy ends */
	unsigned restarts;  /* proxy restarts noticed */
	struct session_app apps[SESSION_APPS_MAX];
	size_t n_apps;
	unsigned rfb_port, ws_port, novnc_port;
	char password[16], viewonly[16], token[80];
	/* The proxy's RFB security types ("X509Vnc,TLSVnc,VncAuth"), and its
	 * X509Vnc certificate (PEM, written to RUNTIME/desktops/NAME.pem) and
	 * that certificate's SHA-256. */
	char security[64], tls_fingerprint[65], tls_cert[8192];
	pid_t novnc_pid;
};

struct session {
	char *runtime_dir, *libexec;
	unsigned long user; /* the apps' uid inside their containers */
	struct desktop *desktops;
	scm_provider *provider;
	int epfd;                /* the provider's fd and every desktop's watch channel */
	atomic_bool quitting;    /* workers give up their waits */
};

/* session-scmd.c: scmd's control socket, one request a connection. */
int scmd_request(const struct session *s, const char *op, json_object *args, json_object **ret,
		 int *ret_fds, size_t max_fds, scm_error **ret_err);
/* A channel to SERVICE as the host identity. */
int scmd_channel(const struct session *s, const char *service, scm_channel **ret, scm_error **ret_err);
/* Best effort: stop (with a timeout), wait for and remove a container. */
void scmd_container_remove(const struct session *s, const char *name);
/* The container's logs (or a host file) until a line starts with
 * "agent "; copies that line. 0, or -ENOENT while there is none. */
int scmd_container_agent_line(const struct session *s, const char *name, char *line, size_t n);

/* session.c: desktops. Errors carry the interface's codes.
 *
 * Who touches what: the loop owns the list and every desktop's fields.
 * One operation at a time runs per desktop (session-ops.c), its blocking
 * part on a worker thread that only reads the desktop (it is not changed
 * while the operation runs: the loop changes a desktop only when an
 * operation ends, and starting or stopping ones only by name) and writes
 * the operation's own fields, or the desktop itself while it is starting
 * or stopping, when the loop reads nothing but its name. */
struct desktop *session_find(struct session *s, const char *name);
/* The loop's part of a launch: checks and a desktop (starting, not listed yet). */
int session_desktop_new(struct session *s, const desktop_spec *spec, bool containers, unsigned rfb_port,
			unsigned ws_port, unsigned novnc_port, struct desktop **ret, scm_error **ret_err);
/* A worker's part: the proxy, the apps, the page server; *watch: the
 * channel to the proxy, kept. On failure the desktop is torn down. */
int session_launch_work(struct session *s, struct desktop *d, const desktop_spec *spec, unsigned rfb_port,
			unsigned ws_port, scm_channel **watch, scm_error **ret_err);
/* The loop's check before an app add (the name is free, there is room). */
int session_app_check(struct session *s, struct desktop *d, struct session_app *a, scm_error **ret_err);
/* A worker's: tells the proxy, starts the app into a (not d's yet). */
int session_app_add_work(struct session *s, struct desktop *d, struct session_app *a, scm_error **ret_err);
/* A worker's: stops a copy of app i; the loop then forgets it. */
void session_app_remove_work(struct session *s, struct desktop *d, struct session_app *a);
/* A worker's, after the channel to the proxy broke: its secrets again
 * (into fresh), set_apps, and every app started afresh into apps (copies
 * of d's); 1: the proxy is the one it was (only the channel went). */
int session_resync_work(struct session *s, struct desktop *d, struct desktop *fresh, struct session_app *apps,
			scm_channel **watch, scm_error **ret_err);
void session_write_state(const struct session *s, const struct desktop *d);
/* Unlists and frees; teardown done by the caller. */
void session_unlist(struct session *s, struct desktop *d);
/* Everything at once, on the loop: for the manager's end. */
void session_stop(struct session *s, struct desktop *d);
/* The desktop as JSON; secrets only when asked. */
json_object *session_desktop_json(const struct desktop *d, bool secrets);
json_object *session_app_json(const struct session_app *a);
/* Reaps host apps and page servers of desktops no operation is using. */
void session_reap(struct session *s);
/* Undoes what a desktop consists of (registered: gfx-NAME was), best
 * effort; and frees it. */
void session_teardown(struct session *s, struct desktop *d, bool registered);
void session_desktop_free(struct desktop *d);
/* session.c's parts for session-launch.c and the workers. */
void session_nap(int ms);
int session_make_dirs(const struct session *s, struct desktop *d);
pid_t session_spawn(char *const argv[], char *const env[], const char *out, const char *err);
void session_kill_wait(pid_t pid);
int session_set_label(const struct desktop *d, struct session_app *a, const char *where, scm_error **ret_err);
int session_start_app(struct session *s, const struct desktop *d, struct session_app *a, scm_error **ret_err);
void session_stop_app_procs(struct session *s, const struct desktop *d, struct session_app *a);
int session_tell_proxy_apps(const struct session *s, const struct desktop *d, const char *extra, const char *skip,
			    scm_error **ret_err);
/* The noVNC page server on 127.0.0.1:d->novnc_port. */
int session_novnc_start(struct desktop *d, scm_error **ret_err);

/* session-ops.c: the operations, one at a time per desktop, their
 * blocking part on a worker thread; the reply is deferred and sent when
 * the worker's task comes back to the loop. */
enum op_kind { OP_LAUNCH, OP_APP_ADD, OP_APP_REMOVE, OP_STOP, OP_RESYNC };
/* Each defers the call (or answers it at once when it cannot be done)
 * and queues the operation on its desktop. launch takes spec; app_add
 * takes app. */
int session_op_launch(struct session *s, scm_call *call, desktop_spec *spec, bool containers, unsigned rfb_port,
		      unsigned ws_port, unsigned novnc_port, uid_t owner);
void session_op_app_add(struct session *s, scm_call *call, struct desktop *d, desktop_app *app);
void session_op_app_remove(struct session *s, scm_call *call, struct desktop *d, const char *app);
void session_op_stop(struct session *s, scm_call *call, struct desktop *d);
/* The loop saw d's watch channel break: the proxy ended. */
void session_op_proxy_gone(struct session *s, struct desktop *d);
/* At the end: workers give up and are joined (their tasks run from
 * scm_provider_free()). */
void session_ops_quit(struct session *s);

/* session-leftovers.c: what a manager that died (SIGKILL, a crash) left:
 * the desktops its state files name are torn down at start. */
void session_leftovers(struct session *s);
