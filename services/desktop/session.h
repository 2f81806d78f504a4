/* session.h: scm-desktop-session, the desktop session manager
 * (stubs/idl/desktop.json). One process per scmd; it keeps every running
 * desktop in memory and builds each from scm objects through scmd's
 * control socket, as the host identity: the service gfx-NAME (the
 * desktop's graphics proxy), one container NAME-APP per app (or, without
 * containers, an endpoint desktop-NAME-APP and a host process), and
 * optionally a noVNC page server. */
#pragma once
#include <json-c/json.h>
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

struct desktop {
	struct desktop *next;
	char *name, *service, *dir; /* dir: RUNTIME/desktops/NAME.d, 0700 */
	uint32_t width, height;
	bool containers;
	struct session_app apps[SESSION_APPS_MAX];
	size_t n_apps;
	unsigned rfb_port, ws_port, novnc_port;
	char password[16], viewonly[16], token[80];
	pid_t novnc_pid;
};

struct session {
	char *runtime_dir, *libexec;
	unsigned long user; /* the apps' uid inside their containers */
	struct desktop *desktops;
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

/* session.c: desktops. Errors carry the interface's codes. */
struct desktop *session_find(struct session *s, const char *name);
int session_launch(struct session *s, const desktop_spec *spec, bool containers, unsigned rfb_port,
		   unsigned ws_port, unsigned novnc_port, struct desktop **ret, scm_error **ret_err);
/* Takes app (cleared either way). */
int session_app_add(struct session *s, struct desktop *d, desktop_app *app, struct session_app **ret,
		    scm_error **ret_err);
int session_app_remove(struct session *s, struct desktop *d, const char *app, scm_error **ret_err);
void session_stop(struct session *s, struct desktop *d);
/* The desktop as JSON; secrets only when asked. */
json_object *session_desktop_json(const struct desktop *d, bool secrets);
json_object *session_app_json(const struct session_app *a);
void session_reap(struct session *s);
/* Undoes what a desktop consists of (registered: gfx-NAME was), best
 * effort; and frees it. */
void session_teardown(struct session *s, struct desktop *d, bool registered);
void session_desktop_free(struct desktop *d);
/* session-leftovers.c: what a manager that died (SIGKILL, a crash) left:
 * the desktops its state files name are torn down at start. */
void session_leftovers(struct session *s);
