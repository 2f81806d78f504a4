/* control.c: the control socket, scmctl's way in.
 *
 * Root only (or scmd's own user, for a rootless scmd): checked with
 * SO_PEERCRED at accept, and the socket is 0600 besides. Requests are CALL
 * frames whose JSON body names an "op" (docs/protocol.md lists them). */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "scm-internal/wire.h"
#include "policy.h"
#include "restart.h"
#include "scmd.h"

#define J(o, k, v) json_object_object_add((o), (k), (v))
#define JS(s) json_object_new_string((s) ? (s) : "")
#define JI(i) json_object_new_int64((int64_t)(i))

static const char *const state_names[] = { "stopped", "starting", "running", "backoff", "stopping", "restarting" };

static const char *arg_str(json_object *a, const char *k)
{
	json_object *v;
	if (a && json_object_object_get_ex(a, k, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static int reply(struct scmd *d, struct conn *c, uint32_t id, json_object *o)
{
	int r = conn_send(d, c, SCM_FRAME_REPLY, id, o, NULL, 0);
	json_object_put(o);
	return r;
}

static json_object *service_json(struct service *s, bool full)
{
	json_object *o = json_object_new_object();
	J(o, "name", JS(s->name));
	J(o, "interface", JS(s->iface_name));
	J(o, "state", JS(state_names[s->state]));
	J(o, "pid", JI(s->pid));
	J(o, "activation", JS(s->activation == ACT_ALWAYS ? "always" : "on-demand"));
	size_t n = 0;
	for (struct list *p = s->channels.next; p != &s->channels; p = p->next)
		n++;
	J(o, "channels", JI(n));
	J(o, "connects", JI(s->n_connects));
	J(o, "denied", JI(s->n_denied));
	J(o, "activations", JI(s->n_activations));
	J(o, "failures", JI(s->n_failures));
	J(o, "restarts", JI(s->n_restarts));
	svc_recover_json(s, o);
	if (full) {
		J(o, "manifest", JS(s->manifest_path));
		J(o, "idl_path", JS(s->idl_path));
		J(o, "idl", JS(s->idl_text));
		json_object *ex = json_object_new_array();
		for (char **a = s->exec; *a; a++)
			json_object_array_add(ex, JS(*a));
		J(o, "exec", ex);
		json_object *al = json_object_new_array();
		for (char **a = s->allow; a && *a; a++)
			json_object_array_add(al, JS(*a));
		J(o, "allow", al);
		J(o, "timeout_ms", JI(s->timeout_ms));
	}
	return o;
}

static json_object *endpoint_json(struct endpoint *ep)
{
	json_object *o = json_object_new_object(), *q = json_object_new_object(), *p;
	J(o, "name", JS(ep->name));
	J(o, "path", JS(ep->path));
	J(o, "owner", JI(ep->owner));
	J(o, "channels", JI(ep->used.channels));
	J(o, "connections", JI(ep->used.conns));
	J(o, "pending", JI(ep->used.pending));
	J(o, "queued_bytes", JI(ep->used.queued));
	J(q, "channels", JI(ep->limit.channels));
	J(q, "pending", JI(ep->limit.pending));
	J(q, "connections", JI(ep->limit.conns));
	J(q, "queued_bytes", JI(ep->limit.queued));
	J(o, "quota", q);
	p = json_object_new_array();
	for (char **s = ep->profiles; s && *s; s++)
		json_object_array_add(p, JS(*s));
	J(o, "profiles", p);
	return o;
}

void scmd_counts(struct scmd *d, size_t *ret_services, size_t *ret_endpoints, size_t *ret_channels,
		 size_t *ret_containers)
{
	size_t ns = 0, ne = 0, nc = 0, nk = 0;
	struct list *p;
	for (p = d->services.next; p != &d->services; p = p->next)
		ns += list_entry(p, struct service, node)->name[0] != 0;
	for (p = d->endpoints.next; p != &d->endpoints; p = p->next)
		ne++;
	for (p = d->channels.next; p != &d->channels; p = p->next)
		nc++;
	for (p = d->containers.next; p && p != &d->containers; p = p->next)
		nk++;
	*ret_services = ns, *ret_endpoints = ne, *ret_channels = nc, *ret_containers = nk;
}

static void op_status(struct scmd *d, struct conn *c, uint32_t id)
{
	json_object *o = json_object_new_object(), *lat = json_object_new_object();
	size_t ns, ne, nc, nk;
	scmd_counts(d, &ns, &ne, &nc, &nk);
	J(o, "pid", JI(getpid()));
	J(o, "uptime_s", JI((now_usec() - d->started) / 1000000));
	J(o, "generation", JI(d->generation)); /* restarts in place (docs/restart.md) */
	J(o, "runtime_dir", JS(d->runtime_dir));
	J(o, "config_dir", JS(d->config_dir));
	J(o, "services", JI(ns));
	J(o, "endpoints", JI(ne));
	J(o, "channels", JI(nc));
	J(o, "event_subscribers", JI(d->events.used.conns));
	J(lat, "decide", latency_json(&d->lat_decide));
	J(lat, "activate", latency_json(&d->lat_activate));
	J(lat, "handoff", latency_json(&d->lat_handoff));
	J(lat, "total", latency_json(&d->lat_total));
	J(o, "connect_latency", lat);
	J(o, "log_compression", logzip_json(d));
	reply(d, c, id, o);
}

static unsigned quota_arg(json_object *q, const char *k, unsigned def)
{
	json_object *v;
	if (q && json_object_object_get_ex(q, k, &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0 && json_object_get_int64(v) <= 1000000)
		return (unsigned)json_object_get_int64(v);
	return def;
}

static void op_endpoint_create(struct scmd *d, struct conn *c, uint32_t id, json_object *a)
{
	const char *name = arg_str(a, "name");
	json_object *v, *q = NULL;
	uid_t owner = geteuid();
	mode_t mode = 0600;
	scm_error *e = NULL;

	if (!name) {
		conn_reply_fail(d, c, id, SCM_E_INVALID, "endpoint.create needs a name");
		return;
	}
	if (json_object_object_get_ex(a, "owner", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) >= 0xffffffffLL) {
			conn_reply_fail(d, c, id, SCM_E_INVALID, "owner must be a uid");
			return;
		}
		owner = (uid_t)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(a, "mode", &v)) {
		int64_t m = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || m < 0 || m > 0777) {
			conn_reply_fail(d, c, id, SCM_E_INVALID, "mode must be octal permissions 0 to 0777");
			return;
		}
		mode = (mode_t)m;
	}
	json_object_object_get_ex(a, "quota", &q);
	struct quota lim = {
		.channels = quota_arg(q, "channels", d->default_limit.channels),
		.pending = quota_arg(q, "pending", d->default_limit.pending),
		.conns = quota_arg(q, "connections", d->default_limit.conns),
		.queued = quota_arg(q, "queued_bytes", (unsigned)d->default_limit.queued),
	};
	char **profiles = NULL;
	if (json_object_object_get_ex(a, "profiles", &v) && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		profiles = calloc(n + 1, sizeof(char *));
		for (size_t i = 0; profiles && i < n; i++) {
			json_object *pn = json_object_array_get_idx(v, i);
			if (!json_object_is_type(pn, json_type_string)) {
				for (size_t k = 0; k < i; k++)
					free(profiles[k]);
				free(profiles);
				conn_reply_fail(d, c, id, SCM_E_INVALID, "/profiles/%zu: expected a profile name", i);
				return;
			}
			profiles[i] = strdup(json_object_get_string(pn));
		}
	}
	struct endpoint *ep;
	struct policy_effective *eff = NULL;
	int r = scmd_policy_effective(d, profiles, &eff, &e);
	if (r == 0)
		r = endpoint_create(d, name, owner, mode, profiles, &lim, &ep, &e);
	if (r == 0)
		ep->eff = eff;
	else
		policy_effective_unref(eff);
	if (r != 0) {
		for (char **s = profiles; s && *s; s++)
			free(*s);
		free(profiles);
		conn_send_error(d, c, id, e);
		scm_error_free(e);
		return;
	}
	audit_event(d->audit, "endpoint-create", "\"endpoint\":\"%s\",\"owner\":%u", name, owner);
	reply(d, c, id, endpoint_json(ep));
}

static void op_list(struct scmd *d, struct conn *c, uint32_t id, const char *what)
{
	json_object *arr = json_object_new_array(), *o = json_object_new_object();
	struct list *p;

	if (strcmp(what, "services") == 0) {
		for (p = d->services.next; p != &d->services; p = p->next) {
			struct service *s = list_entry(p, struct service, node);
			if (!s->unregistering)
				json_object_array_add(arr, service_json(s, false));
		}
	} else if (strcmp(what, "endpoints") == 0) {
		for (p = d->endpoints.next; p != &d->endpoints; p = p->next)
			json_object_array_add(arr, endpoint_json(list_entry(p, struct endpoint, node)));
	} else {
		for (p = d->channels.next; p != &d->channels; p = p->next) {
			struct channel *ch = list_entry(p, struct channel, node);
			json_object *x = json_object_new_object();
			J(x, "id", JI(ch->id));
			J(x, "service", JS(ch->svc->name));
			J(x, "endpoint", JS(ch->ep_name));
			J(x, "uid", JI(ch->cred.uid));
			J(x, "pid", JI(ch->cred.pid));
			J(x, "age_ms", JI((now_usec() - ch->created) / 1000));
			J(x, "origin", JS(ch->origin));
			json_object_array_add(arr, x);
		}
	}
	J(o, what, arr);
	reply(d, c, id, o);
}

void control_dispatch(struct scmd *d, struct conn *c, scm_message *m)
{
	/* after a restart in place: every channel checked and watched first
	 * (channel_watch_queued), so a control call that walks them (list,
	 * revoke, policy reload, service restart) sees them all as before */
	if (d->chan_watch_q.next && !list_empty(&d->chan_watch_q))
		channel_watch_queued(d, SIZE_MAX);
	const char *op = arg_str(m->json, "op");
	uint32_t id = m->call_id;
	json_object *a = m->json;
	scm_error *e = NULL;

	if (!op) {
		conn_reply_fail(d, c, id, SCM_E_INVALID, "control requests need an \"op\"");
		return;
	}
	if (c->sub) {
		conn_reply_fail(d, c, id, SCM_E_INVALID,
				"this connection carries scmd's events (events.subscribe): make requests on another");
		return;
	}
	if (strcmp(op, "status") == 0)
		op_status(d, c, id);
	else if (strcmp(op, "events.subscribe") == 0)
		events_subscribe(d, c, id, a);
	else if (strcmp(op, "service.list") == 0)
		op_list(d, c, id, "services");
	else if (strcmp(op, "endpoint.list") == 0)
		op_list(d, c, id, "endpoints");
	else if (strcmp(op, "channel.list") == 0)
		op_list(d, c, id, "channels");
	else if (strcmp(op, "service.register") == 0) {
		json_object *man = NULL;
		struct service *s;
		const char *origin = arg_str(a, "origin");
		if (!json_object_object_get_ex(a, "manifest", &man)) {
			conn_reply_fail(d, c, id, SCM_E_INVALID, "service.register needs a manifest");
			return;
		}
		if (service_register(d, man, origin ? origin : "(scmctl)", &s, &e) != 0) {
			conn_send_error(d, c, id, e);
			scm_error_free(e);
			return;
		}
		audit_event(d->audit, "service-register", "\"service\":\"%s\"", s->name);
		reply(d, c, id, service_json(s, false));
	} else if (strcmp(op, "service.show") == 0 || strcmp(op, "service.unregister") == 0) {
		const char *name = arg_str(a, "name");
		struct service *s = name ? service_find(d, name) : NULL;
		if (!s || s->unregistering) {
			conn_reply_fail(d, c, id, SCM_E_NO_SERVICE, "no service '%s' is registered", name ? name : "");
			return;
		}
		if (op[8] == 's') {
			reply(d, c, id, service_json(s, true));
			return;
		}
		audit_event(d->audit, "service-unregister", "\"service\":\"%s\"", s->name);
		service_unregister(d, s);
		reply(d, c, id, json_object_new_object());
	} else if (strcmp(op, "endpoint.create") == 0)
		op_endpoint_create(d, c, id, a);
	else if (strcmp(op, "endpoint.remove") == 0) {
		const char *name = arg_str(a, "name");
		struct endpoint *ep = name ? endpoint_find(d, name) : NULL;
		if (!ep) {
			conn_reply_fail(d, c, id, SCM_E_NOT_FOUND, "no endpoint '%s'", name ? name : "");
			return;
		}
		if (ep->container) {
			/* The container record points at it: it goes with the
			 * container. */
			conn_reply_fail(d, c, id, SCM_E_BUSY,
					"endpoint '%s' belongs to a running container; stop the container instead", name);
			return;
		}
		audit_event(d->audit, "endpoint-remove", "\"endpoint\":\"%s\"", name);
		endpoint_remove(d, ep);
		reply(d, c, id, json_object_new_object());
	} else if (strcmp(op, "channel.revoke") == 0) {
		json_object *v;
		struct channel *ch = NULL;
		if (json_object_object_get_ex(a, "id", &v) && json_object_is_type(v, json_type_int))
			ch = channel_find(d, (uint64_t)json_object_get_int64(v));
		if (!ch) {
			conn_reply_fail(d, c, id, SCM_E_NOT_FOUND, "no such channel");
			return;
		}
		channel_revoke(d, ch, SCM_E_REVOKED, "revoked by an administrator (uid %u)", c->cred.uid);
		reply(d, c, id, json_object_new_object());
	} else if (strcmp(op, "daemon.restart") == 0) {
		const char *exe = arg_str(a, "exec");
		json_object *v;
		if (a && json_object_object_get_ex(a, "exec", &v) && !exe) {
			conn_reply_fail(d, c, id, SCM_E_INVALID, "/exec: expected the path of a binary");
			return;
		}
		restart_request(d, c, id, exe); /* the successor answers */
	} else if (strcmp(op, "service.restart") == 0)
		svc_restart_request(d, c, id, a); /* answered once the new provider took over */ else if (strcmp(op, "connect") == 0)
		broker_connect(d, c, id, a); /* as the "host" identity */
	else if (scmd_policy_control(d, c, op, id, a))
		;
	else if (scmd_ctr_control(d, c, op, m))
		;
	else
		conn_reply_fail(d, c, id, SCM_E_NO_METHOD, "unknown control op '%s'", op);
}

static void control_accept(struct scmd *d, struct watch *w, uint32_t events)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_pause(d);
			return; /* EAGAIN, or a transient error: epoll tells us again */
		}
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			log_warning("refused control connection from uid %u pid %d", cred.uid, cred.pid);
			close(fd);
			continue;
		}
		if (!quota_room(&d->host.used, &d->host.limit, QUOTA_CONNS) || !conn_new(d, fd, CONN_CONTROL, &d->host))
			close(fd);
	}
}

int control_listen(struct scmd *d, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", d->runtime_dir) >=
	    sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "runtime dir %s is too long", d->runtime_dir);
	/* systemd's socket (scmd.socket), when it made one: checked, not bound */
	int ra = scmd_sd_control(d, sa.sun_path, &fd, ret_err);
	if (ra != 0)
		return ra;
	if (fd >= 0) {
		d->control = (struct watch){ TAKE_FD(fd), control_accept };
		return watch_add(d, &d->control, EPOLLIN);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	unlink(sa.sun_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0)
		return scm_fail(ret_err, -errno, "listening on %s: %m", sa.sun_path);
	d->control = (struct watch){ TAKE_FD(fd), control_accept };
	return watch_add(d, &d->control, EPOLLIN);
}

int control_adopt(struct scmd *d, int fd)
{
	d->control = (struct watch){ fd, control_accept };
	return watch_add(d, &d->control, EPOLLIN);
}
