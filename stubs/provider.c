/* provider.c: the provider skeleton of libscm.
 *
 * scmd starts a provider with one end of a control socketpair in
 * $SCM_PROVIDER_FD. Over it the provider says "ready", and scmd sends each
 * new channel (a socket fd) with its grant, and revocation notices. The
 * skeleton serves every channel from one epoll set, and checks each call
 * against the channel's grant (method allowed, argument constraints) before
 * the handler runs: providers are trusted, clients are not.
 *
 * A handler may defer its reply (scm_call_defer): the call moves to the
 * heap, onto its channel's list, and the loop goes on. Workers hand results
 * back through scm_provider_post(), a mutex-protected list and an eventfd
 * in the same epoll set, so the loop never waits on a lock held for long
 * and never on the work itself. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "scm/macro.h"
#include "scm-internal/wire.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-ctl.h"

#include "scm-internal/provider-impl.h"

int provider_ctl_fd_(scm_provider *p)
{
	return p->ctl_fd;
}
struct ctl_calls *provider_ctl_calls_(scm_provider *p)
{
	return &p->ctl_calls;
}

/* Marks an event of the current batch whose channel is gone. */
static char gone_marker;
#define GONE ((void *)&gone_marker)
char provider_task_marker_;
#define TASKS ((void *)&provider_task_marker_)


static void deferred_unlink(scm_call *d)
{
	if (!d->pprev)
		return;
	*d->pprev = d->next;
	if (d->next)
		d->next->pprev = d->pprev;
	d->pprev = NULL;
	d->ch->n_deferred--;
	if (d->carriable)
		d->ch->n_carriable--;
}

/* The channel is ending: its deferred calls stay with their owners, who
 * still reply to them (which then only frees them). */
static void chan_cancel_deferred(struct chan *c)
{
	while (c->deferred) {
		scm_call *d = c->deferred;
		deferred_unlink(d);
		d->ch = NULL;
		d->p = NULL;
		atomic_store(&d->cancelled, true);
	}
}

static void chan_close(scm_provider *p, struct chan *c)
{
	for (int k = p->batch_i + 1; p->batch && k < p->batch_n; k++)
		if (p->batch[k].data.ptr == c)
			p->batch[k].data.ptr = GONE;
	chan_cancel_deferred(c);
	if (p->on_close)
		p->on_close(&c->grant, c->data, p->userdata);
	epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	/* shutdown, not just close: scmd holds a duplicate of this end to be
	 * able to revoke, so only shutdown makes the client see the end. Not
	 * after a handover: the channel lives on in the new process. */
	if (!provider_ho_handed_(p))
		shutdown(c->fd, SHUT_RDWR);
	safe_close(c->fd);
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	scm_outq_clear(&c->outq);
	json_object_put(c->grant.constraints);
	json_object_put(c->grant.settings);
	json_object_put(c->grant.rules);
	free(c->service);
	free(c->caller);
	free(c->token);
	free(c);
}

static const char *jstr(json_object *o, const char *k, const char *def)
{
	json_object *v;
	if (json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return def;
}
static int64_t jint(json_object *o, const char *k, int64_t def)
{
	json_object *v;
	if (json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return def;
}

static const scm_method_def *find_method(const scm_interface_def *iface, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < iface->n_methods; i++)
		if (strcmp(iface->methods[i].name, name) == 0)
			return &iface->methods[i];
	return NULL;
}

/* A new channel from scmd: {"channel":N,"service":..,"caller":..,"uid":..,
 * "gid":..,"pid":..,"methods":[..]|"*","constraints":{..},"settings":{..},
 * "rules":{..}} plus
 * its fd. */
int provider_add_channel_(scm_provider *p, scm_message *m)
{
	json_object *methods = NULL, *cons = NULL;
	int fd = scm_message_steal_fd(m, 0);

	if (fd < 0 || !m->json)
		return safe_close(fd), -EBADMSG;
	struct chan *c = calloc(1, sizeof(*c));
	if (!c)
		return safe_close(fd), -ENOMEM;
	c->fd = fd;
	c->service = strdup(jstr(m->json, "service", ""));
	c->caller = strdup(jstr(m->json, "caller", ""));
	if (!c->service || !c->caller) {
		free(c->service);
		free(c->caller);
		free(c);
		return safe_close(fd), -ENOMEM;
	}
	c->grant = (scm_grant){
		.channel = (uint64_t)jint(m->json, "channel", 0),
		.service = c->service,
		.caller = c->caller,
		.uid = (uid_t)jint(m->json, "uid", -1),
		.gid = (gid_t)jint(m->json, "gid", -1),
		.pid = (pid_t)jint(m->json, "pid", 0),
	};
	/* Only scmd writes grants: a token channel (offload) is its word. */
	if (json_object_object_get_ex(m->json, "token", &cons) && json_object_is_type(cons, json_type_string) &&
	    !(c->token = strdup(json_object_get_string(cons)))) {
		free(c->service);
		free(c->caller);
		free(c);
		return safe_close(fd), -ENOMEM;
	}
	c->grant.token = c->token;
	if (json_object_object_get_ex(m->json, "constraints", &cons) &&
	    json_object_is_type(cons, json_type_object) && json_object_object_length(cons) > 0)
		c->grant.constraints = json_object_get(cons);
	if (json_object_object_get_ex(m->json, "settings", &cons) && json_object_is_type(cons, json_type_object) &&
	    json_object_object_length(cons) > 0)
		c->grant.settings = json_object_get(cons);
	if (json_object_object_get_ex(m->json, "rules", &cons) && json_object_is_type(cons, json_type_object))
		c->grant.rules = json_object_get(cons);
	if (json_object_object_get_ex(m->json, "methods", &methods)) {
		if (json_object_is_type(methods, json_type_string) &&
		    strcmp(json_object_get_string(methods), "*") == 0) {
			for (size_t i = 0; i < p->iface->n_methods; i++)
				c->allowed[p->iface->methods[i].id] = true;
		} else if (json_object_is_type(methods, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(methods); i++) {
				json_object *mn = json_object_array_get_idx(methods, i);
				if (!json_object_is_type(mn, json_type_string))
					continue; /* not a method name: grants nothing */
				const scm_method_def *d = find_method(p->iface, json_object_get_string(mn));
				if (d)
					c->allowed[d->id] = true;
			}
		}
	}
	c->next = p->chans;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &p->chans;
	p->chans = c;
	/* handed over by scmd: the predecessor's data for it */
	int r = provider_ho_channel_(p, c, m->json);
	if (r != 0) {
		chan_close(p, c);
		return r < 0 ? r : -EPROTO;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (!provider_ho_quiet_(p) && epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		chan_close(p, c);
		return r;
	}
	return 0;
}

static int handle_control_one(scm_provider *p, scm_error **ret_err)
{
	scm_message *m = NULL;
	int r;

	r = scm_wire_recv(p->ctl_fd, MSG_DONTWAIT, &m, ret_err);
	if (r == -EAGAIN)
		return 0;
	if (r == 1)
		return 1; /* scmd is done with us */
	if (r != 0)
		return scm_fail(ret_err, r, "control connection to scmd failed");

	if (m->type == SCM_FRAME_REPLY || m->type == SCM_FRAME_ERROR) {
		provider_ctl_reply_(p, m); /* takes m */
		return 2;
	}
	if (m->json && provider_ho_control_(p, m)) {
		scm_message_free(m);
		return 2;
	}
	const char *what = m->json ? jstr(m->json, "op", "") : "";
	if (strcmp(what, "channel") == 0)
		r = provider_add_channel_(p, m);
	else if (strcmp(what, "revoke") == 0) {
		uint64_t id = (uint64_t)jint(m->json, "channel", 0);
		for (struct chan *c = p->chans; c; c = c->next)
			if (c->grant.channel == id) {
				chan_close(p, c);
				break;
			}
	}
	scm_message_free(m);
	if (r < 0)
		return scm_fail(ret_err, r, "taking a channel from scmd: %s", strerror(-r));
	return 2; /* handled one; there may be more */
}

/* Takes in what scmd sent, in bulk: scmd queues hand-offs for a provider
 * that falls behind, and new channels should not wait behind old calls. */
static int handle_control(scm_provider *p, scm_error **ret_err)
{
	for (int budget = 256; budget > 0; budget--) {
		int r = handle_control_one(p, ret_err);
		if (r != 2)
			return r;
	}
	return 0;
}

/* A provider never blocks on one client: what does not fit waits in the
 * channel's queue, and the channel is not read again until it drained, so
 * a client that does not read its replies only stalls itself. */
#define CHAN_QUEUE_MAX (4u * 1024 * 1024)

static int chan_send(struct chan *c, uint8_t type, uint32_t call_id, json_object *body,
		     const void *bin, size_t bin_len, const int *fds, size_t n_fds)
{
	size_t len = 0;
	const char *s = body ? json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len) : NULL;
	int r = scm_outq_send(c->fd, &c->outq, type, 0, call_id, 0, s, len, bin, bin_len, fds, n_fds);
	/* Over the limits or a bad fd from the handler is this reply's
	 * failure (the caller turns it into an error reply), not the
	 * channel's. */
	bool reply_fault = r == -EMSGSIZE || r == -EBADF || r == -EINVAL || r == -ETOOMANYREFS;
	if ((r < 0 && !reply_fault) || c->outq.bytes > CHAN_QUEUE_MAX)
		c->broken = true;
	return r < 0 ? r : 0;
}

static int call_send_error(scm_call *call, scm_error *e)
{
	int r = 0;
	if (!call->no_reply) {
		json_object *j = scm_error_to_json(e);
		r = chan_send(call->ch, SCM_FRAME_ERROR, call->call_id, j, NULL, 0, NULL, 0);
		json_object_put(j);
	}
	call->replied = true;
	scm_error_free(e);
	return r;
}

static void handle_call(scm_provider *p, struct chan *c, scm_message *m)
{
	scm_call call = { .p = p, .ch = c, .call_id = m->call_id,
			  .no_reply = m->flags & SCM_FLAG_NO_REPLY };
	const scm_method_def *d = NULL;
	scm_error *e = NULL;

	if (m->method >= 1 && m->method <= MAX_METHODS)
		for (size_t i = 0; i < p->iface->n_methods; i++)
			if (p->iface->methods[i].id == m->method) {
				d = &p->iface->methods[i];
				break;
			}
	if (!d) {
		call_send_error(&call, scm_error_new(SCM_E_NO_METHOD, p->iface->name,
						     "interface %s has no method %u", p->iface->name,
						     m->method));
		return;
	}
	if (!c->allowed[d->id]) {
		call_send_error(&call, scm_error_new(SCM_E_DENIED, p->iface->name,
						     "method %s.%s is not in this channel's grant",
						     p->iface->name, d->name));
		return;
	}
	if (scm_grant_check(&c->grant, d->name, m->json, &e) != 0) {
		call_send_error(&call, e);
		return;
	}
	call.method = d->name;
	int r = d->fn(&call, m, p->userdata);
	if (call.heap)
		return; /* deferred: its owner replies */
	if (!call.replied) {
		if (r == 0)
			call_send_error(&call, scm_error_new(SCM_E_INTERNAL, p->iface->name,
							     "%s returned without a reply", d->name));
		else
			call_send_error(&call, scm_error_new(r, p->iface->name, "%s failed: %s",
							     d->name,
							     r < 0 ? strerror(-r) : scm_code_name(r)));
	}
}

static void chan_watch(scm_provider *p, struct chan *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	/* a quiet channel (handover) is out of the set until it has replies */
	if (events == 0)
		epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	else if (epoll_ctl(p->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
}

void provider_chan_watch_(scm_provider *p, struct chan *c, uint32_t events)
{
	chan_watch(p, c, events);
}

void provider_chan_close_(scm_provider *p, struct chan *c)
{
	chan_close(p, c);
}

static void handle_channel(scm_provider *p, struct chan *c, uint32_t events)
{
	if (c->broken) { /* a deferred reply found it gone or over its queue */
		chan_close(p, c);
		return;
	}
	if (c->outq.head) {
		int r = scm_outq_flush(c->fd, &c->outq);
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			chan_close(p, c);
			return;
		}
		chan_watch(p, c, provider_ho_quiet_(p) ? 0 : EPOLLIN);
	}
	if (provider_ho_quiet_(p))
		return; /* handing over: what clients send waits in the socket */
	/* One frame per wake-up: epoll is level-triggered, so a channel with
	 * more queued comes back in the next round, after the others had their
	 * turn, and no read is spent learning that the queue is empty. */
	for (int budget = 1; budget > 0; budget--) {
		scm_message *m = NULL;
		scm_error *e = NULL;
		int r = scm_wire_recv(c->fd, MSG_DONTWAIT, &m, &e);
		if (r == -EAGAIN)
			return;
		if (r != 0) {
			if (r == SCM_E_PROTOCOL) /* tell the client why it is dropped */
				scm_wire_send_error(c->fd, MSG_DONTWAIT, 0, e);
			scm_error_free(e);
			chan_close(p, c);
			return;
		}
		if (m->type == SCM_FRAME_CALL)
			handle_call(p, c, m);
		scm_message_free(m);
		if (c->broken) {
			chan_close(p, c);
			return;
		}
		if (c->outq.head) {
			chan_watch(p, c, EPOLLOUT); /* read no more until the client makes room */
			return;
		}
	}
}

/* Closes the channels a deferred reply found broken. */
static void sweep(scm_provider *p)
{
	if (!p->sweep)
		return;
	p->sweep = false;
	for (struct chan *c = p->chans, *n; c; c = n) {
		n = c->next;
		if (c->broken)
			chan_close(p, c);
	}
}

scm_provider *scm_provider_free(scm_provider *p)
{
	if (!p)
		return NULL;
	while (p->chans)
		chan_close(p, p->chans);
	/* owners reply to their cancelled calls, which frees them */
	while (p->task_head)
		provider_run_tasks_(p);
	provider_ctl_fail_all_(p);
	provider_ho_free_(p);
	safe_close(p->epoll_fd);
	safe_close(p->ctl_fd);
	safe_close(p->task_fd);
	pthread_mutex_destroy(&p->task_lock);
	free(p);
	return NULL;
}

int scm_provider_dispatch(scm_provider *p, int timeout_ms, scm_error **ret_err)
{
	struct epoll_event evs[32];
	int n;

	if (p->ho) { /* started to take over, but never took the state */
		n = provider_ho_check_(p, ret_err);
		if (n != 0)
			return n;
	}
	n = epoll_wait(p->epoll_fd, evs, ELEMENTSOF(evs), provider_ckpt_timeout_(p, timeout_ms));
	if (n < 0)
		return errno == EINTR ? 0 : scm_fail(ret_err, -errno, "epoll_wait: %m");
	p->batch = evs;
	p->batch_n = n;
	for (int i = 0; i < n; i++) {
		p->batch_i = i;
		if (!evs[i].data.ptr) {
			int r = handle_control(p, ret_err);
			if (r != 0)
				provider_ctl_fail_all_(p);
			if (r != 0) {
				p->batch = NULL;
				return r;
			}
			continue;
		}
		if (evs[i].data.ptr == TASKS) {
			provider_run_tasks_(p);
			continue;
		}
		if (evs[i].data.ptr != GONE) /* closed earlier in this batch */
			handle_channel(p, evs[i].data.ptr, evs[i].events);
	}
	p->batch = NULL;
	sweep(p);
	if (p->ho)
		provider_ho_poll_(p); /* a handover waiting for calls to be answered */
	if (p->ckpt_due)
		provider_ckpt_poll_(p);
	return 0;
}

int scm_provider_run(scm_provider *p, scm_error **ret_err)
{
	int r;
	while ((r = scm_provider_dispatch(p, -1, ret_err)) == 0)
		;
	return r == 1 ? 0 : r;
}

scm_call *scm_call_defer(scm_call *call)
{
	if (call->deferred)
		return call;
	if (call->heap)
		return call->heap;
	if (call->replied)
		return NULL;
	struct chan *c = call->ch;
	if (c->n_deferred >= call->p->defer_max) {
		scm_call_reply_error(call, SCM_E_BUSY,
				     "%s: this channel already has %u calls in progress, the limit; wait for their replies",
				     call->method ? call->method : "call", c->n_deferred);
		return NULL;
	}
	scm_call *d = provider_call_deferred_(call->p, c, call->call_id, call->method, call->no_reply);
	if (!d) {
		scm_call_reply_error(call, SCM_E_INTERNAL, "out of memory deferring %s",
				     call->method ? call->method : "a call");
		return NULL;
	}
	call->heap = d;
	call->replied = true; /* the stack copy is done with */
	return d;
}

bool scm_call_cancelled(const scm_call *call)
{
	return atomic_load(&call->cancelled);
}

unsigned scm_call_deferred_count(const scm_call *call)
{
	return call->ch ? call->ch->n_deferred : 0;
}

/* After a deferred call got its answer: a reply that could not go out now
 * waits for room (EPOLLOUT), a channel it broke is closed once the batch is
 * done (the handler that replied may be running for that very channel). */
static void deferred_done(scm_call *d)
{
	struct chan *c = d->ch;
	if (c) {
		deferred_unlink(d);
		if (c->broken)
			d->p->sweep = true;
		else if (c->outq.head)
			chan_watch(d->p, c, EPOLLOUT);
	}
	free(d);
}

/* Only frees a cancelled deferred call, or one a handover carried to the
 * successor, which answers it on the same channel. */
static bool deferred_cancelled(scm_call *call)
{
	if (call->deferred && call->ch && call->carried && provider_ho_handed_(call->p)) {
		deferred_unlink(call);
		free(call);
		return true;
	}
	if (!call->deferred || call->ch)
		return false;
	free(call);
	return true;
}

static int reply_now(scm_call *call, struct json_object *result, const void *bin, size_t bin_len,
		     const int *fds, size_t n_fds)
{
	if (call->replied)
		return -EALREADY;
	call->replied = true;
	if (call->no_reply)
		return 0;
	int r = chan_send(call->ch, SCM_FRAME_REPLY, call->call_id, result, bin, bin_len, fds, n_fds);
	if (r == -EMSGSIZE || r == -EBADF || r == -EINVAL || r == -ETOOMANYREFS) {
		return call_send_error(call, scm_error_new(SCM_E_INTERNAL, call->p->iface->name,
							   "the reply could not be sent: %s",
							   r == -EMSGSIZE ? "over the frame limits"
									  : strerror(-r)));
	}
	return r;
}

int scm_call_reply(scm_call *call, struct json_object *result, const void *bin, size_t bin_len,
		   const int *fds, size_t n_fds)
{
	if (deferred_cancelled(call))
		return -ECANCELED;
	int r = reply_now(call, result, bin, bin_len, fds, n_fds);
	if (call->deferred)
		deferred_done(call);
	return r;
}

int scm_call_reply_error(scm_call *call, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (deferred_cancelled(call))
		return -ECANCELED;
	if (call->replied)
		return -EALREADY;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	int r = call_send_error(call, scm_error_new(code, call->p->iface->name, "%s",
						    msg ? msg : "error"));
	free(msg);
	if (call->deferred)
		deferred_done(call);
	return r;
}

int scm_call_reply_error_chain(scm_call *call, const scm_error *e)
{
	if (deferred_cancelled(call))
		return -ECANCELED;
	if (call->replied)
		return -EALREADY;
	int r = call_send_error(call, scm_error_copy(e));
	if (call->deferred)
		deferred_done(call);
	return r;
}
