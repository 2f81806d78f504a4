/* restart-load.c: a successor scmd rebuilds its tables from the state its
 * predecessor left (restart-save.c), after restart-state.c checked its
 * structure. No fd is believed before it is checked: it must be one the
 * state lists (once: no object may take another's), and of the kind its
 * use wants (a listening AF_UNIX seqpacket socket for an endpoint, a
 * connected one for a connection or a channel, a pipe, a file). Services
 * register again from their manifests (their interfaces read afresh) and
 * adopt the providers that still run as our children; endpoints get their
 * effective profiles from the policy as it is now, and the live channels
 * are re-checked against it after the restore (restart.c), as a policy
 * reload does. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "policy.h"
#include "restart.h"

static const char *jstr(json_object *o, const char *k)
{
	json_object *v = json_object_object_get(o, k);
	return v ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static long fdmap_find(struct fdmap *m, int old_fd)
{
	if (!m)
		return -1;
	if (m->sorted) {
		size_t lo = 0, hi = m->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (m->old_fd[mid] == old_fd) {
				while (mid > 0 && m->old_fd[mid - 1] == old_fd)
					mid--;
				return (long)mid;
			}
			if (m->old_fd[mid] < old_fd)
				lo = mid + 1;
			else
				hi = mid;
		}
		return -1;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->old_fd[i] == old_fd)
			return (long)i;
	return -1;
}

int fdmap_peek(struct fdmap *m, int old_fd)
{
	long i = fdmap_find(m, old_fd);
	return i < 0 ? -1 : m->new_fd[i];
}

int fdmap_get(void *userdata, int old_fd)
{
	struct fdmap *m = userdata;
	long i = fdmap_find(m, old_fd);
	if (i < 0 || m->used[i])
		return -1; /* absent, or a second object naming one fd: refused */
	m->used[i] = true;
	return m->new_fd[i];
}

int fd_check(int fd, enum fd_kind kind, const char *what, scm_error **ret_err)
{
	static const char *const names[] = { "a listening AF_UNIX seqpacket socket",
					     "a connected AF_UNIX seqpacket socket", "a pipe", "a regular file",
					     "a pipe or a terminal" };
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: fd %d is not open", what, fd);
	bool ok;
	switch (kind) {
	case FD_LISTEN:
	case FD_SEQPACKET: {
		int dom = -1, type = -1, acc = -1;
		socklen_t l = sizeof(int);
		ok = S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 &&
		     (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0) &&
		     (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0) && dom == AF_UNIX &&
		     type == SOCK_SEQPACKET && (acc == 1) == (kind == FD_LISTEN);
		break;
	}
	case FD_PIPE: ok = S_ISFIFO(st.st_mode); break;
	case FD_REG: ok = S_ISREG(st.st_mode); break;
	default: ok = S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode); break;
	}
	if (!ok)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: fd %d is not %s", what, fd, names[kind]);
	return 0;
}

/* Connected seqpacket sockets (connections, channels: a thousand and
 * more) that came from our own copy. The copy is a fork of this scmd, the
 * socketpair was made by scmd before the fork, close-on-exec, and handed
 * to nobody else: what arrives on it is what scmd itself held, under the
 * numbers its own tables gave them. The checks guard against a bug that
 * puts a number in the wrong place, not against a peer lying: one
 * getsockopt(SO_TYPE) says the fd is a socket (ENOTSOCK otherwise) and a
 * seqpacket one, which is all the code that uses it relies on (frames
 * whole, EPOLLRDHUP). The domain (scmd makes AF_UNIX sockets only) and
 * SO_ACCEPTCONN (a listening socket among channels would be scmd's own
 * endpoint, also held under its own number) would cost two more system
 * calls per fd in the blackout. Listening sockets, and every fd inherited
 * across execve (--restore) or from systemd's store, have the full check.
 * A channel's provider end from the copy has this check when its watch is
 * added, after the successor serves (channel_watch_queued; a control call
 * has them all added and checked first): a bug's wrong fd there drops the
 * channel then instead of refusing the state. */
static int fd_check_from_copy(int fd, const char *what, scm_error **ret_err)
{
	int type = -1;
	socklen_t l = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_SEQPACKET)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: fd %d is not a seqpacket socket", what, fd);
	return 0;
}

/* The fd the state recorded as old, checked; -1 with an error. */
static int take_fd(struct fdmap *map, int64_t old, enum fd_kind kind, const char *what, scm_error **ret_err)
{
	int fd = old >= 0 && old <= INT32_MAX ? fdmap_get(map, (int)old) : -1;
	if (fd < 0) {
		scm_fail(ret_err, SCM_E_INVALID, "%s: fd %lld was not handed over (or twice)", what, (long long)old);
		return -1;
	}
	if (map->from_copy && kind == FD_SEQPACKET)
		return fd_check_from_copy(fd, what, ret_err) == 0 ? fd : -1;
	return fd_check(fd, kind, what, ret_err) == 0 ? fd : -1;
}

void fdmap_done(struct fdmap *map)
{
	free(map->old_fd);
	free(map->new_fd);
	free(map->used);
	state_chans_free(&map->chans);
	json_object_put(map->ctrs);
	*map = (struct fdmap){ 0 };
}

void restart_restore_early(struct scmd *d, json_object *st, struct fdmap *map)
{
	json_object *sc = json_object_object_get(st, "scmd");
	const char *inst = jstr(sc, "instance");
	if (inst && name_valid(inst, 47, NAME_FILE)) {
		snprintf(d->instance, sizeof(d->instance), "%s", inst);
		free(d->cgroup_parent);
		if (asprintf(&d->cgroup_parent, "scm/%s", d->instance) < 0)
			d->cgroup_parent = NULL;
	}
	int64_t lock = jint(sc, "lock_fd");
	if (lock >= 0) {
		int fd = fdmap_get(map, (int)lock);
		if (fd >= 0 && fd_check(fd, FD_REG, "the runtime directory's lock", NULL) == 0)
			d->lock_fd = fd;
	}
	d->generation = (uint64_t)jint(sc, "generation") + 1;
	d->sd.control_activated = json_object_get_boolean(json_object_object_get(sc, "control_activated"));
	d->started = (uint64_t)jint(sc, "started");
	d->next_container = (uint64_t)jint(sc, "next_container");
	d->ctr_serial = (uint64_t)jint(sc, "ctr_serial");
}

static int load_services(struct scmd *d, json_object *arr, struct fdmap *map, struct service **svcs,
			 scm_error **ret_err)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *m = NULL;
		const char *text = jstr(o, "manifest");
		struct service *s = NULL;
		int r = scm_json_parse(text, strlen(text), &m, ret_err);
		if (r == 0) {
			r = service_register(d, m, jstr(o, "origin"), &s, ret_err);
			json_object_put(m);
		}
		if (r != 0)
			return scm_fail(ret_err, r, "state /services/%zu: registering it again", i);
		svcs[i] = s;
		json_object *c = json_object_object_get(o, "counters");
		uint64_t *cv[] = { &s->n_connects, &s->n_denied, &s->n_activations, &s->n_failures,
				   &s->n_restarts }; /* (a state without the last one: 0) */
		for (size_t k = 0; k < ELEMENTSOF(cv) && k < json_object_array_length(c); k++)
			*cv[k] = (uint64_t)json_object_get_int64(json_object_array_get_idx(c, k));
		s->backoff_ms = (unsigned)jint(o, "backoff_ms");
		s->started_at = (uint64_t)jint(o, "started_at");
		s->last_status = (int)jint(o, "last_status");
		if (jstr(o, "container_name"))
			s->container_name = strdup(jstr(o, "container_name"));
		int64_t state = jint(o, "state"), pid = jint(o, "pid"), ctl = jint(o, "ctl_fd");
		if (state < P_STOPPED || state > P_STOPPING || pid < 0 || pid > INT32_MAX)
			return scm_fail(ret_err, SCM_E_INVALID, "state /services/%zu: state %lld, pid %lld", i,
					(long long)state, (long long)pid);
		int fd = -1;
		char what[128];
		snprintf(what, sizeof(what), "the control socket of '%s''s provider", s->name);
		if (ctl >= 0 && (fd = take_fd(map, ctl, FD_SEQPACKET, what, ret_err)) < 0)
			return SCM_E_INVALID;
		if ((r = service_adopt_provider(d, s, (enum pstate)state, (pid_t)pid, fd,
						(uint64_t)jint(o, "timer_ms"))) < 0)
			return scm_fail(ret_err, r, "%s: epoll: %s", what, strerror(-r));
		json_object *ck = json_object_object_get(o, "checkpoint");
		if (ck && (r = svc_recover_load(s, ck, map, ret_err)) != 0)
			return scm_fail(ret_err, r, "state /services/%zu/checkpoint", i);
	}
	return 0;
}

static int load_endpoints(struct scmd *d, json_object *arr, struct fdmap *map, struct endpoint **eps,
			  scm_error **ret_err)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *l = json_object_object_get(o, "limit");
		const char *name = jstr(o, "name"), *prov = jstr(o, "provider_of");
		char what[128];
		snprintf(what, sizeof(what), "endpoint '%s'", name);
		if (!name_valid(name, 64, NAME_FILE) || endpoint_find(d, name))
			return scm_fail(ret_err, SCM_E_INVALID, "state /endpoints/%zu: name '%s' invalid or twice", i, name);
		int fd = take_fd(map, jint(o, "fd"), FD_LISTEN, what, ret_err);
		if (fd < 0)
			return SCM_E_INVALID;
		char **profiles = strv_from_json(json_object_object_get(o, "profiles"), 1024, false, NULL);
		if (profiles && !profiles[0]) {
			strv_free(profiles);
			profiles = NULL;
		}
		struct policy_effective *eff = NULL;
		int r = scmd_policy_effective(d, profiles, &eff, ret_err);
		if (r != 0) {
			strv_free(profiles);
			return scm_fail(ret_err, r, "%s: its profiles", what);
		}
		struct quota lim = { (unsigned)jint(l, "channels"), (unsigned)jint(l, "pending"), (unsigned)jint(l, "conns"),
				     (size_t)jint(l, "queued") };
		struct endpoint *ep = endpoint_restore(d, name, jstr(o, "path"), jstr(o, "dir"), (uid_t)jint(o, "owner"),
						     profiles, &lim, fd);
		if (!ep) {
			policy_effective_unref(eff);
			strv_free(profiles);
			return scm_fail(ret_err, -ENOMEM, "%s: cannot watch it", what);
		}
		ep->eff = eff;
		eps[i] = ep;
		ep->container = json_object_get_boolean(json_object_object_get(o, "container"));
		ep->activated = json_object_get_boolean(json_object_object_get(o, "activated"));
		ep->peer_uid_min = (uid_t)jint(o, "peer_uid_min");
		ep->peer_uid_count = (uint32_t)jint(o, "peer_uid_count");
		if (prov && !(ep->provider_of = service_find(d, prov)))
			return scm_fail(ret_err, SCM_E_INVALID, "%s: no service '%s' in the state", what, prov);
	}
	return 0;
}

static int load_conns(struct scmd *d, json_object *arr, struct fdmap *map, scm_error **ret_err)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		const char *epn = jstr(o, "endpoint");
		struct endpoint *ep = epn ? endpoint_find(d, epn) : &d->host;
		if (!ep)
			return scm_fail(ret_err, SCM_E_INVALID, "state /conns/%zu: no endpoint '%s'", i, epn);
		int fd = take_fd(map, jint(o, "fd"), FD_SEQPACKET, "a client connection", ret_err);
		if (fd < 0)
			return SCM_E_INVALID;
		if (!conn_new(d, fd, epn ? CONN_ENDPOINT : CONN_CONTROL, ep))
			return scm_fail(ret_err, -ENOMEM, "state /conns/%zu: cannot watch it", i);
	}
	return 0;
}

static int load_pending(struct scmd *d, json_object *svcs, scm_error **ret_err)
{
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *so = json_object_array_get_idx(svcs, i), *arr = json_object_object_get(so, "pending");
		/* the service by its manifest's name (validated already) */
		struct service *s = NULL;
		json_object *m = NULL;
		const char *text = jstr(so, "manifest");
		if (scm_json_parse(text, strlen(text), &m, NULL) == 0) {
			s = service_find(d, jstr(m, "name") ? jstr(m, "name") : "");
			json_object_put(m);
		}
		for (size_t k = 0; s && k < json_object_array_length(arr); k++) {
			json_object *o = json_object_array_get_idx(arr, k);
			struct conn *c = restart_conn_by_fd(d, (int)jint(o, "conn"));
			if (!c)
				return scm_fail(ret_err, SCM_E_INVALID, "state /services/%zu/pending/%zu: no such connection",
						i, k);
			if (!pending_add(s, c, (uint32_t)jint(o, "call_id"), (uint64_t)jint(o, "t_start"),
					 (uint64_t)jint(o, "t_decided"), json_object_get(json_object_object_get(o, "grant")),
					 jstr(o, "origin")))
				return -ENOMEM;
		}
	}
	return 0;
}

static int load_channels(struct scmd *d, json_object *arr, struct fdmap *map, scm_error **ret_err)
{
	uint64_t next = d->next_channel;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		const char *sn = jstr(o, "service"), *en = jstr(o, "endpoint");
		struct service *s = service_find(d, sn);
		struct endpoint *ep = strcmp(en, "host") == 0 ? &d->host : endpoint_find(d, en);
		if (!s || !ep)
			return scm_fail(ret_err, SCM_E_INVALID, "state /channels/%zu: no %s '%s'", i,
					s ? "endpoint" : "service", s ? en : sn);
		int fd = take_fd(map, jint(o, "fd"), FD_SEQPACKET, "a channel's provider end", ret_err);
		if (fd < 0)
			return SCM_E_INVALID;
		struct ucred cred = { (pid_t)jint(o, "pid"), (uid_t)jint(o, "uid"), (gid_t)jint(o, "gid") };
		struct channel *ch = channel_new(d, s, ep, &cred, fd, jstr(o, "origin"));
		if (!ch)
			return -ENOMEM;
		ch->id = (uint64_t)jint(o, "id");
		ch->created = (uint64_t)jint(o, "created");
		if (jstr(o, "grant"))
			ch->grant_json = strdup(jstr(o, "grant"));
		channel_link(d, ch);
	}
	d->next_channel = next;
	return 0;
}

/* Version 2: the channel table (restart-chans.c checked its indexes and
 * strings); services and endpoints by their index in the state. */
static int load_chans(struct scmd *d, const struct state_chans *t, struct service **svcs, struct endpoint **eps,
		      struct fdmap *map, scm_error **ret_err)
{
	uint64_t next = d->next_channel;
	for (size_t i = 0; i < t->n; i++) {
		const struct state_chan *c = &t->c[i];
		struct endpoint *ep = c->endpoint == SCMD_CHAN_NONE ? &d->host : eps[c->endpoint];
		/* from our own copy: its check (fd_check_from_copy's, one
		 * getsockopt) is made when its watch is added, after we serve
		 * (channel_watch_queued); taken once, as any */
		int fd = map->from_copy ? fdmap_get(map, c->fd) : take_fd(map, c->fd, FD_SEQPACKET, "a channel's provider end", ret_err);
		if (fd < 0 && map->from_copy)
			scm_fail(ret_err, SCM_E_INVALID, "a channel's provider end: fd %d was not handed over (or twice)", c->fd);
		if (fd < 0)
			return scm_fail(ret_err, SCM_E_INVALID, "state channel table, record %zu", i);
		struct ucred cred = { (pid_t)c->pid, (uid_t)c->uid, (gid_t)c->gid };
		struct channel *ch = channel_new(d, svcs[c->service], ep, &cred, fd, c->origin);
		if (!ch || (c->grant && !(ch->grant_json = strdup(c->grant)))) {
			if (ch)
				channel_free(d, ch);
			else
				close(fd);
			return -ENOMEM;
		}
		ch->id = c->id;
		ch->created = c->created;
		channel_link_unwatched(d, ch);
	}
	d->next_channel = next;
	return 0;
}

static int restore_tables(struct scmd *d, json_object *st, struct fdmap *map, scm_error **ret_err)
{
	int r;
	json_object *sc = json_object_object_get(st, "scmd");
	json_object *sa = json_object_object_get(st, "services"), *ea = json_object_object_get(st, "endpoints");
	d->next_channel = (uint64_t)jint(sc, "next_channel");
	/* by index, for the channel table */
	_cleanup_free_ struct service **svcs = calloc(json_object_array_length(sa) + 1, sizeof(*svcs));
	_cleanup_free_ struct endpoint **eps = calloc(json_object_array_length(ea) + 1, sizeof(*eps));
	if (!svcs || !eps)
		return -ENOMEM;
	if ((r = load_services(d, sa, map, svcs, ret_err)) != 0 || (r = load_endpoints(d, ea, map, eps, ret_err)) != 0)
		return r;
	int64_t cfd = jint(st, "control_fd");
	if (cfd >= 0) {
		int fd = take_fd(map, cfd, FD_LISTEN, "the control socket", ret_err);
		if (fd < 0)
			return SCM_E_INVALID;
		if (control_adopt(d, fd) < 0)
			return scm_fail(ret_err, -errno, "the control socket: epoll: %m");
	} else if ((r = control_listen(d, ret_err)) != 0)
		return r;
	if ((r = load_conns(d, json_object_object_get(st, "conns"), map, ret_err)) != 0 ||
	    (r = load_pending(d, json_object_object_get(st, "services"), ret_err)) != 0)
		return r;
	/* the two parts that grow with the state, timed for the log line */
	uint64_t t0 = now_usec();
	if ((r = json_object_object_get_ex(st, "channels", NULL)
			 ? load_channels(d, json_object_object_get(st, "channels"), map, ret_err)
			 : load_chans(d, &map->chans, svcs, eps, map, ret_err)) != 0)
		return r;
	uint64_t t1 = now_usec();
	json_object *ca = map && map->ctrs ? map->ctrs : json_object_object_get(st, "containers");
	if ((r = restart_load_containers(d, ca, map, ret_err)) != 0 ||
	    (r = restart_load_execs(d, json_object_object_get(st, "execs"), map, ret_err)) != 0)
		return r;
	d->restart_clock.chans_us = t1 - t0;
	d->restart_clock.ctrs_us = now_usec() - t1;
	/* what the state listed and nothing took: not ours to keep */
	for (size_t i = 0; map && i < map->n; i++)
		if (!map->used[i] && map->new_fd[i] != d->lock_fd) {
			close(map->new_fd[i]);
			map->used[i] = true;
		}
	return 0;
}

int restart_restore(struct scmd *d, json_object *st, struct fdmap *map, scm_error **ret_err)
{
	/* connections are named by the predecessor's fd numbers (pending
	 * connects, waiters, execs): restart_conn_by_fd maps them meanwhile */
	d->restore_map = map;
	int r = restore_tables(d, st, map, ret_err);
	d->restore_map = NULL;
	return r;
}
