/* provider-container.c: a provider that scmd runs in a container of its
 * own ("container" in its manifest), started the one way at an activation
 * (registry.c) and beside the running one for a restart with its channels
 * (service-restart.c): the manifest's command on the quick path with the
 * service's profiles, an endpoint that is its control socket
 * ($SCM_PROVIDER_ENDPOINT), and $SCM_PROVIDER_HANDOVER=1 for a successor.
 * Each container is named provider-NAME-N, N counting the service's
 * activations and restarts (1 for the first), or the first number past it
 * that no container or endpoint has (a successor given up may still be
 * exiting, a provider that ended is kept as an exited record). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "scm-internal/error.h"
#include "scmd.h"

#define NAME_TRIES 64

int provider_ctr_start(struct scmd *d, struct service *s, const char *prog, bool handover, char **ret_name,
		       pid_t *ret_pid, scm_error **ret_err)
{
	size_t n = 0;
	while (s->exec[n])
		n++;
	_cleanup_free_ char **argv = calloc(n + 1, sizeof(char *));
	if (!argv)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	argv[0] = (char *)prog;
	for (size_t i = 1; i < n; i++)
		argv[i] = s->exec[i];
	json_object *env = NULL;
	if (handover) {
		env = json_object_new_array();
		json_object_array_add(env, json_object_new_string("SCM_PROVIDER_HANDOVER=1"));
	}
	int r = SCM_E_EXISTS;
	for (unsigned k = 0; r == SCM_E_EXISTS && k < NAME_TRIES; k++) {
		char *name = NULL;
		unsigned long long nr = s->n_activations + s->n_restarts + 1 + k;
		if (asprintf(&name, "provider-%s-%llu", s->name, nr) < 0) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
		struct container_req req = { .name = name, .argv = argv, .profiles = s->container_profiles,
					     .env = env, .stdin_fd = -1, .provider = s, .uid = -1, .gid = -1 };
		struct container_started st;
		scm_error *e = NULL;
		r = scmd_ctr_start(d, &req, &st, &e);
		if (r == 0) {
			*ret_name = name;
			*ret_pid = st.pid;
		} else {
			free(name);
			if (r == SCM_E_EXISTS && k + 1 < NAME_TRIES)
				scm_error_free(e); /* the next number */
			else
				scm_error_push(ret_err, e);
		}
	}
	json_object_put(env);
	return r;
}

/* The end of a container's log (what a successor that died said), its
 * last lines on one line ('|' between them). */
void provider_ctr_log_tail(struct scmd *d, const char *name, char *buf, size_t len)
{
	int fds[CONTAINERS_LOG_FDS_MAX];
	size_t n = 0, k = 0;
	scm_error *e = NULL;
	buf[0] = 0;
	if (scmd_ctr_log_fds(d, name, fds, &n, &e) != 0) {
		scm_error_free(e);
		return;
	}
	if (n) {
		off_t end = lseek(fds[n - 1], 0, SEEK_END);
		ssize_t r = end > 0 ? pread(fds[n - 1], buf, len - 1, end > (off_t)len - 1 ? end - (off_t)len + 1 : 0) : 0;
		k = r > 0 ? (size_t)r : 0;
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	while (k && (buf[k - 1] == '\n' || buf[k - 1] == ' '))
		k--;
	buf[k] = 0;
	for (size_t i = 0; i < k; i++)
		if (buf[i] == '\n' || (unsigned char)buf[i] < ' ')
			buf[i] = buf[i] == '\n' ? '|' : ' ';
}
