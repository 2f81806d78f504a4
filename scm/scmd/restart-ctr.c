/* restart-ctr.c: the containers' part of a restart in place.
 *
 * A running container's record goes into the state with the runtime's
 * object (containers/adopt.c: its pidfd, status pipe, namespace fds,
 * cgroups, what exec needs) and the fds scmd keeps for it: the output
 * pipe, the log file, an attached client's pipe or pty. Exited records go
 * as they are (no fds). Waiters (`container wait`, `stop`) are kept by
 * their connection's fd. A launch in progress or a dying container is not
 * carried: restart.c waits until none is left (restart_ctr_busy). A stop
 * whose SIGKILL timer was running gets the rest of its time again. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>

#include "container-hook.h"
#include "restart.h"

#define J(o, k, v) json_object_object_add((o), (k), (v))
#define JI(i) json_object_new_int64((int64_t)(i))
#define JS(s) ((s) ? json_object_new_string(s) : NULL)

const char *restart_ctr_busy(struct scmd *d)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->launching)
			return "a container is launching";
		if (t->dying)
			return "a failed container is being reaped";
	}
	if (scmd_ctr_execs_starting())
		return "a container exec is starting";
	return NULL;
}

static json_object *ctr_state(struct scmd *d, struct scmd_ctr *t, bool store, int **fds, size_t *n, size_t *cap)
{
	json_object *o = json_object_new_object(), *ws = json_object_new_array();
	J(o, "name", JS(t->name));
	J(o, "serial", JI(t->serial));
	J(o, "exited", json_object_new_boolean(t->exited));
	J(o, "status", JI(t->status));
	J(o, "started", JI(t->started));
	J(o, "ended", JI(t->ended));
	J(o, "log_path", JS(t->log_path));
	J(o, "cmdline", JS(t->cmdline));
	J(o, "state_path", JS(t->state_path));
	J(o, "sandbox", JS(t->sandbox_json));
	J(o, "paused", json_object_new_boolean(t->paused));
	J(o, "endpoint", JS(t->ep ? t->ep->name : NULL));
	J(o, "provider_of", JS(!store && t->provider_of ? t->provider_of->name : NULL));
	J(o, "out_fd", JI(t->outw.fd));
	J(o, "log_fd", JI(t->log_fd));
	J(o, "attach_fd", JI(t->attach_fd));
	J(o, "log_size", JI(t->log_size));
	J(o, "log_file_max", JI(t->log_file_max));
	J(o, "log_files", JI(t->log_files));
	J(o, "fds", JI(t->fds));
	uint64_t now = now_usec();
	J(o, "kill_in_ms", JI(t->kill_at && !t->exited ? (t->kill_at > now ? (t->kill_at - now) / 1000 + 1 : 1) : 0));
	for (struct list *p = t->waiters.next; !store && p != &t->waiters; p = p->next) {
		struct waiter *w = list_entry(p, struct waiter, node);
		json_object *x = json_object_new_array();
		json_object_array_add(x, JI(w->conn->w.fd));
		json_object_array_add(x, JI(w->call_id));
		json_object_array_add(ws, x);
	}
	J(o, "waiters", ws);
	J(o, "container", t->c ? container_serialise(t->c) : NULL);
	int own[3] = { t->outw.fd, t->log_fd, t->attach_fd }, cfd[16];
	for (size_t i = 0; i < ELEMENTSOF(own); i++)
		fd_list_add(fds, n, cap, own[i]);
	size_t k = t->c ? container_fds(t->c, cfd, ELEMENTSOF(cfd)) : 0;
	for (size_t i = 0; i < k; i++)
		fd_list_add(fds, n, cap, cfd[i]);
	(void)d;
	return o;
}

json_object *restart_save_containers(struct scmd *d, bool store, int **fds, size_t *n, size_t *cap)
{
	json_object *arr = json_object_new_array();
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->launching || t->dying)
			continue; /* not while restarting (restart_ctr_busy); a crash loses them */
		json_object_array_add(arr, ctr_state(d, t, store, fds, n, cap));
	}
	return arr;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v = json_object_object_get(o, k);
	return v ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A connection of the state, by its fd. */
static struct conn *conn_by_fd(struct scmd *d, int fd)
{
	for (struct list *p = d->endpoints.next; p != &d->endpoints; p = p->next) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		for (struct list *q = ep->conns.next; q != &ep->conns; q = q->next)
			if (list_entry(q, struct conn, node)->w.fd == fd)
				return list_entry(q, struct conn, node);
	}
	for (struct list *q = d->host.conns.next; q != &d->host.conns; q = q->next)
		if (list_entry(q, struct conn, node)->w.fd == fd)
			return list_entry(q, struct conn, node);
	return NULL;
}

struct conn *restart_conn_by_fd(struct scmd *d, int fd)
{
	/* during the restore, the state's numbers: the predecessor's */
	return conn_by_fd(d, d->restore_map ? fdmap_peek(d->restore_map, fd) : fd);
}

static int own_fd(struct fdmap *map, json_object *o, const char *k, enum fd_kind kind, const char *what,
		  scm_error **ret_err)
{
	int64_t v = jint(o, k);
	if (v < 0)
		return -1;
	int fd = fdmap_get(map, (int)v);
	if (fd < 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: fd %lld was not handed over", what, (long long)v), -2;
	/* from our own copy: what we held under that number (take_fd) */
	if (!map->from_copy && fd_check(fd, kind, what, ret_err) != 0)
		return -2;
	return fd;
}

static int load_one(struct scmd *d, json_object *o, struct fdmap *map, scm_error **ret_err)
{
	const char *name = jstr(o, "name");
	struct scmd_ctr *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->pidw.fd = t->outw.fd = t->launchw.fd = t->launch_timer.fd = -1;
	t->log_fd = t->attach_fd = t->attach_client_fd = -1;
	list_init(&t->waiters);
	t->name = strdup(name);
	t->serial = (uint64_t)jint(o, "serial");
	t->exited = json_object_get_boolean(json_object_object_get(o, "exited"));
	t->status = (int)jint(o, "status");
	t->started = (uint64_t)jint(o, "started");
	t->ended = (uint64_t)jint(o, "ended");
	t->log_path = dup_or_null(jstr(o, "log_path"));
	t->cmdline = dup_or_null(jstr(o, "cmdline"));
	t->state_path = dup_or_null(jstr(o, "state_path"));
	t->sandbox_json = dup_or_null(jstr(o, "sandbox"));
	t->paused = json_object_get_boolean(json_object_object_get(o, "paused"));
	t->log_size = jint(o, "log_size");
	t->log_file_max = jint(o, "log_file_max");
	t->log_files = (int)jint(o, "log_files");
	list_add(d->containers.prev, &t->node); /* freed with the rest if a later step fails */
	if (!t->name)
		return -ENOMEM;
	char what[128];
	snprintf(what, sizeof(what), "container '%s'", name);
	if ((t->outw.fd = own_fd(map, o, "out_fd", FD_PIPE, what, ret_err)) == -2 ||
	    (t->log_fd = own_fd(map, o, "log_fd", FD_REG, what, ret_err)) == -2 ||
	    (t->attach_fd = own_fd(map, o, "attach_fd", FD_PIPE_OR_TTY, what, ret_err)) == -2) {
		t->outw.fd = t->log_fd = t->attach_fd = -1;
		return SCM_E_INVALID;
	}
	t->outw.fn = ctr_on_output;
	const char *ep = jstr(o, "endpoint"), *prov = jstr(o, "provider_of");
	if (ep && !(t->ep = endpoint_find(d, ep)))
		return scm_fail(ret_err, SCM_E_INVALID, "%s: no endpoint '%s' in the state", what, ep);
	if (prov && !(t->provider_of = service_find(d, prov)))
		return scm_fail(ret_err, SCM_E_INVALID, "%s: no service '%s' in the state", what, prov);
	json_object *cj = json_object_object_get(o, "container");
	if (!t->exited) {
		if (!cj)
			return scm_fail(ret_err, SCM_E_INVALID, "%s: running, but no runtime object", what);
		int r = map->from_copy ? container_adopt_own(cj, fdmap_get, map, &t->c, ret_err)
				       : container_adopt(cj, fdmap_get, map, false, &t->c, ret_err);
		if (r != 0)
			return scm_fail(ret_err, r, "%s: cannot adopt it", what);
		t->pidw = (struct watch){ container_pidfd(t->c), ctr_on_pidfd };
		/* level-triggered: one that ended during the switch is seen at once */
		if (watch_add(d, &t->pidw, EPOLLIN) < 0)
			return scm_fail(ret_err, -errno, "%s: epoll: %m", what);
		t->fds = (unsigned)jint(o, "fds");
		d->ctr_fds_used += t->fds;
	}
	if (t->outw.fd >= 0 && watch_add(d, &t->outw, EPOLLIN) < 0)
		return scm_fail(ret_err, -errno, "%s: epoll: %m", what);
	json_object *ws = json_object_object_get(o, "waiters");
	for (size_t i = 0; i < json_object_array_length(ws); i++) {
		json_object *x = json_object_array_get_idx(ws, i);
		struct conn *c = restart_conn_by_fd(d, (int)json_object_get_int64(json_object_array_get_idx(x, 0)));
		struct waiter *w = c ? calloc(1, sizeof(*w)) : NULL;
		if (!w)
			continue; /* its client is gone */
		w->conn = c;
		w->call_id = (uint32_t)json_object_get_int64(json_object_array_get_idx(x, 1));
		list_add(&t->waiters, &w->node);
	}
	int64_t kill_ms = jint(o, "kill_in_ms");
	if (kill_ms > 0 && !t->exited)
		ctr_kill_timer(d, t, (unsigned)kill_ms);
	return 0;
}

int restart_load_containers(struct scmd *d, json_object *arr, struct fdmap *map, scm_error **ret_err)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		if (ctr_find(d, jstr(o, "name")))
			return scm_fail(ret_err, SCM_E_INVALID, "state /containers/%zu: container '%s' twice", i,
					jstr(o, "name"));
		int r = load_one(d, o, map, ret_err);
		if (r != 0)
			return scm_fail(ret_err, r, "state /containers/%zu", i);
	}
	return 0;
}
