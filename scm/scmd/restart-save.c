/* restart-save.c: struct scmd as the state its successor reads
 * (restart-state.c checks the structure, restart-load.c rebuilds it).
 *
 * Objects refer to each other by name (a service, an endpoint) or by fd
 * number (a connection: its fd is its identity on both sides of the
 * exec). Every fd named is put on the list the exec keeps open; what is
 * not on it (epoll, signalfd, timers, refused peers) closes with exec and
 * the successor makes it afresh. The store variant (systemd's fd store)
 * keeps only what outlives a crash: endpoints, containers and the
 * services' manifests; connections, channels and providers die with a
 * crashed scmd anyway. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "restart.h"

#define J(o, k, v) json_object_object_add((o), (k), (v))
#define JI(i) json_object_new_int64((int64_t)(i))
#define JS(s) ((s) ? json_object_new_string(s) : NULL)

static json_object *strv_json(char **v)
{
	json_object *a = json_object_new_array();
	for (; v && *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static json_object *endpoint_state(struct endpoint *ep)
{
	json_object *o = json_object_new_object(), *l = json_object_new_object();
	J(o, "name", JS(ep->name));
	J(o, "path", JS(ep->path));
	J(o, "dir", JS(ep->dir));
	J(o, "owner", JI(ep->owner));
	J(o, "profiles", strv_json(ep->profiles));
	J(l, "channels", JI(ep->limit.channels));
	J(l, "pending", JI(ep->limit.pending));
	J(l, "conns", JI(ep->limit.conns));
	J(l, "queued", JI(ep->limit.queued));
	J(o, "limit", l);
	J(o, "fd", JI(ep->listen.fd));
	J(o, "container", json_object_new_boolean(ep->container));
	J(o, "provider_of", JS(ep->provider_of ? ep->provider_of->name : NULL));
	J(o, "peer_uid_min", JI(ep->peer_uid_min));
	J(o, "peer_uid_count", JI(ep->peer_uid_count));
	J(o, "activated", json_object_new_boolean(ep->activated)); /* systemd's socket: never unlinked */
	return o;
}

static uint64_t timer_left_ms(int fd)
{
	struct itimerspec its;
	if (fd < 0 || timerfd_gettime(fd, &its) < 0)
		return 0;
	return (uint64_t)its.it_value.tv_sec * 1000 + (uint64_t)its.it_value.tv_nsec / 1000000;
}

static json_object *service_state(struct service *s, bool store, int **fds, size_t *n, size_t *cap)
{
	json_object *o = json_object_new_object(), *cnt = json_object_new_array(), *pend = json_object_new_array();
	J(o, "manifest", JS(s->manifest_json));
	J(o, "origin", JS(s->manifest_path));
	J(o, "state", JI(store ? P_STOPPED : s->state));
	J(o, "pid", JI(store ? 0 : s->pid));
	J(o, "ctl_fd", JI(store ? -1 : s->ctl.fd));
	J(o, "timer_ms", JI(store ? 0 : timer_left_ms(s->timer.fd)));
	J(o, "backoff_ms", JI(s->backoff_ms));
	J(o, "started_at", JI(s->started_at));
	J(o, "last_status", JI(s->last_status));
	uint64_t c[] = { s->n_connects, s->n_denied, s->n_activations, s->n_failures, s->n_restarts };
	for (size_t i = 0; i < ELEMENTSOF(c); i++)
		json_object_array_add(cnt, JI(c[i]));
	J(o, "counters", cnt);
	J(o, "container_name", JS(store ? NULL : s->container_name));
	for (struct list *p = s->pending.next; !store && p != &s->pending; p = p->next) {
		struct pending_connect *pc = list_entry(p, struct pending_connect, node);
		json_object *x = json_object_new_object();
		J(x, "conn", JI(pc->conn->w.fd));
		J(x, "call_id", JI(pc->call_id));
		J(x, "t_start", JI(pc->t_start));
		J(x, "t_decided", JI(pc->t_decided));
		J(x, "grant", json_object_get(pc->grant));
		J(x, "origin", JS(pc->origin));
		json_object_array_add(pend, x);
	}
	J(o, "pending", pend);
	/* a crash-recovery checkpoint held (service-recover.c): its memfd
	 * and fds go along, so a crash after the restart still recovers */
	json_object *ck = store ? NULL : svc_recover_save(s, fds, n, cap);
	if (ck)
		J(o, "checkpoint", ck);
	return o;
}

static json_object *channel_state(struct channel *ch)
{
	json_object *o = json_object_new_object();
	J(o, "id", JI(ch->id));
	J(o, "fd", JI(ch->w.fd));
	J(o, "service", JS(ch->svc->name));
	J(o, "endpoint", JS(ch->ep_name));
	J(o, "pid", JI(ch->cred.pid));
	J(o, "uid", JI(ch->cred.uid));
	J(o, "gid", JI(ch->cred.gid));
	J(o, "created", JI(ch->created));
	J(o, "origin", JS(ch->origin ? ch->origin : ""));
	J(o, "grant", JS(ch->grant_json));
	return o;
}

static void conns_of(struct list *head, const char *ep_name, json_object *arr, int **fds, size_t *n, size_t *cap)
{
	for (struct list *p = head->next; p != head; p = p->next) {
		struct conn *c = list_entry(p, struct conn, node);
		if (c->dead)
			continue; /* closed by the loop before the exec: the peer sees EOF */
		json_object *o = json_object_new_object();
		J(o, "fd", JI(c->w.fd));
		J(o, "endpoint", JS(ep_name));
		json_object_array_add(arr, o);
		fd_list_add(fds, n, cap, c->w.fd);
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void restart_save(struct scmd *d, bool store, int reply_fd, uint32_t reply_call, struct state_out *ret)
{
	json_object *st = json_object_new_object(), *sc = json_object_new_object();
	json_object *eps = json_object_new_array(), *conns = json_object_new_array();
	json_object *svcs = json_object_new_array(), *chans = json_object_new_array();
	int *fds = NULL;
	size_t n = 0, cap = 0;
	struct list *p;

	*ret = (struct state_out){ 0 };
	J(sc, "generation", JI(d->generation));
	J(sc, "started", JI(d->started));
	J(sc, "next_channel", JI(d->next_channel));
	J(sc, "next_container", JI(d->next_container));
	J(sc, "ctr_serial", JI(d->ctr_serial));
	J(sc, "instance", JS(d->instance));
	J(sc, "control_activated", json_object_new_boolean(d->sd.control_activated));
	/* the runtime directory's flock lives in its open file: keep it
	 * across exec; a crashed scmd's is released, the next takes it anew */
	J(sc, "lock_fd", JI(store ? -1 : d->lock_fd));
	J(st, "scmd", sc);
	J(st, "store", json_object_new_boolean(store));
	if (!store)
		fd_list_add(&fds, &n, &cap, d->lock_fd);
	if (reply_fd >= 0) {
		json_object *r = json_object_new_object();
		J(r, "fd", JI(reply_fd));
		J(r, "call_id", JI(reply_call));
		J(st, "reply", r);
	} else
		J(st, "reply", NULL);
	J(st, "control_fd", JI(d->control.fd));
	fd_list_add(&fds, &n, &cap, d->control.fd);

	for (p = d->endpoints.next; p != &d->endpoints; p = p->next) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		json_object_array_add(eps, endpoint_state(ep));
		fd_list_add(&fds, &n, &cap, ep->listen.fd);
		if (!store)
			conns_of(&ep->conns, ep->name, conns, &fds, &n, &cap);
	}
	if (!store)
		conns_of(&d->host.conns, NULL, conns, &fds, &n, &cap);
	J(st, "endpoints", eps);
	J(st, "conns", conns);

	for (p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->unregistering)
			continue; /* restart_ctr_busy waits for these to be reaped */
		json_object_array_add(svcs, service_state(s, store, &fds, &n, &cap));
		if (!store)
			fd_list_add(&fds, &n, &cap, s->ctl.fd);
	}
	J(st, "services", svcs);

	if (SCMD_STATE_VERSION < SCMD_STATE_CHANS_VERSION) {
		for (p = d->channels.next; !store && p != &d->channels; p = p->next) {
			struct channel *ch = list_entry(p, struct channel, node);
			json_object_array_add(chans, channel_state(ch));
			fd_list_add(&fds, &n, &cap, ch->w.fd);
		}
		J(st, "channels", chans);
	} else {
		/* channels name services and endpoints by their index in the
		 * JSON's arrays: the same order here */
		json_object_put(chans);
		size_t n_svcs = 0, n_eps = 0;
		struct service **sa = calloc(json_object_array_length(svcs) + 1, sizeof(*sa));
		struct endpoint **ea = calloc(json_object_array_length(eps) + 1, sizeof(*ea));
		for (p = d->services.next; sa && p != &d->services; p = p->next)
			if (!list_entry(p, struct service, node)->unregistering)
				sa[n_svcs++] = list_entry(p, struct service, node);
		for (p = d->endpoints.next; ea && p != &d->endpoints; p = p->next)
			ea[n_eps++] = list_entry(p, struct endpoint, node);
		/* the store's variant has no channels: an empty table */
		if (!sa || !ea ||
		    chans_encode(d, store ? NULL : &d->channels, sa, n_svcs, ea, n_eps, &ret->chans, &ret->chans_len, &fds,
				 &n, &cap) != 0)
			log_error("restart: out of memory writing the channel table");
		free(sa);
		free(ea);
	}
	if (d->handoff_ctrs_early && !store) {
		/* the successor has them already (restart-handoff.c) */
		J(st, "containers", json_object_new_array());
	} else
		J(st, "containers", restart_save_containers(d, store, &fds, &n, &cap));
	J(st, "execs", store ? json_object_new_array() : restart_save_execs(d));

	if (n)
		qsort(fds, n, sizeof(int), cmp_int);
	json_object *fa = json_object_new_array();
	/* handed to a successor in standby, the fds go with their numbers
	 * (restart-handoff.c): the list is for --restore and the store */
	for (size_t i = 0; !d->handoff_numbers && i < n; i++)
		json_object_array_add(fa, JI(fds[i]));
	J(st, "fds", fa);
	ret->json = st;
	ret->fds = fds;
	ret->n_fds = n;
}
