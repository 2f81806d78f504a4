/* scmctl.h: what scmctl's subcommand files share. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>

#include "scm/scm.h"

/* Sends {"op": op, ...args} to scmd's control socket and returns the reply
 * object (owned by the caller). Errors come back as the chain scmd sent. */
int scmctl_control_call(const char *op, struct json_object *args, struct json_object **ret_result,
			scm_error **ret_err);
/* The runtime directory scmctl talks to: --runtime-dir, $SCM_RUNTIME_DIR,
 * or scmd's default. */
const char *scmctl_runtime_dir(void);
/* Exit status for an scm code (documented in scmctl(1)). */
int scmctl_exit_code(int code);
/* Prints "scmctl: " and the chain, returns the exit status for it. */
int scmctl_fail(scm_error *e);

/* The same, sending fds along and taking the reply's first fd (or -1). */
int scmctl_control_call_fds(const char *op, struct json_object *args, const int *fds, size_t n_fds,
			    struct json_object **ret_result, int *ret_fd, scm_error **ret_err);
/* The same without fds to send, taking the reply's first max_fds fds into
 * ret_fds (-1 where there were fewer). */
int scmctl_control_call_fdv(const char *op, struct json_object *args, struct json_object **ret_result,
			    int *ret_fds, size_t max_fds, scm_error **ret_err);

/* A connection to scmd's control socket (an fd), or the error saying why
 * there is none. */
int scmctl_control_open(scm_error **ret_err);

int scmctl_policy(int argc, char **argv);
int scmctl_events(int argc, char **argv, bool json);
int scmctl_container(int argc, char **argv, bool json);
int scmctl_desktop(int argc, char **argv, bool json);
int scmctl_call(int argc, char **argv);
/* A channel to service through endpoint (NULL: $SCM_ENDPOINT, else the
 * control socket as "host"). */
int scmctl_connect(const char *endpoint, const char *service, scm_channel **ret, scm_error **ret_err);
int scmctl_dbus(int argc, char **argv);
