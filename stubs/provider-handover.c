/* provider-handover.c: a provider restarted with its channels
 * (docs/handover.md).
 *
 * The old process, asked by scmd ("handover" on the control connection),
 * stops reading its channels, lets every call in progress be answered and
 * every reply leave, then saves the provider's state and each channel's
 * into a sealed memfd and hands it to scmd. It keeps its channels (only
 * unread) until scmd either closes the control connection (the new process
 * took over: the channel ends are closed without a shutdown, which would
 * end them for the new process too) or says "handover.abort" (the new one
 * refused: the old one reads its channels again).
 *
 * The new process, started with $SCM_PROVIDER_HANDOVER=1 while the old
 * one still serves, says nothing to scmd until scm_provider_handover():
 * there it says "handover.waiting" and waits for the state scmd passes on
 * ("handover.state" with the memfd), restores it and says ready; scmd
 * then hands it every live channel again, marked "handover", and each
 * gets its saved data back. The calls clients sent meanwhile wait in the
 * channels' sockets, which never closed. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-impl.h"
#include "scm-internal/provider-state.h"

struct provider_ho {
	scm_handover_ops ops;
	bool have_ops;
	/* the new process */
	bool pending;         /* started to take over, not done yet */
	json_object *saved;   /* {"ID": data} of channels not handed back yet */
	uint32_t version;     /* of the state restored */
	/* the old process */
	bool quiet;           /* channels are not read */
	bool handed;          /* the state went to scmd */
	uint32_t call_id;     /* scmd's "handover" call */
	/* fds in the state: the old process's duplicates while it saves and
	 * sends; the new process's until taken (-1 once taken) */
	int *fds;
	size_t n_fds;
	bool saving, restoring; /* scm_handover_fd_add / _take may be called */
	struct chan *cur;       /* the channel restore_channel() runs for (scm_call_restore) */
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct provider_ho *ho_get(scm_provider *p)
{
	if (!p->ho)
		p->ho = calloc(1, sizeof(*p->ho));
	return p->ho;
}

int provider_ho_started_(scm_provider *p)
{
	struct provider_ho *ho = ho_get(p);
	if (!ho)
		return -ENOMEM;
	ho->pending = true;
	return 0;
}

bool provider_ho_quiet_(const scm_provider *p)
{
	return p->ho && p->ho->quiet;
}

bool provider_ho_handed_(const scm_provider *p)
{
	return p->ho && p->ho->handed;
}

static void fds_close(struct provider_ho *ho)
{
	for (size_t i = 0; i < ho->n_fds; i++)
		safe_close(ho->fds[i]);
	free(ho->fds);
	ho->fds = NULL;
	ho->n_fds = 0;
}

bool scm_provider_handed_over(const scm_provider *p)
{
	return provider_ho_handed_(p);
}

int scm_handover_fd_add(scm_provider *p, int fd)
{
	struct provider_ho *ho = p ? p->ho : NULL;
	if (!ho || !ho->saving || fd < 0)
		return -EINVAL;
	if (ho->n_fds >= SCM_HANDOVER_FDS_MAX)
		return -EMFILE;
	int *n = realloc(ho->fds, (ho->n_fds + 1) * sizeof(int));
	if (!n)
		return -ENOMEM;
	ho->fds = n;
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		return errno == EBADF ? -EINVAL : -errno;
	ho->fds[ho->n_fds] = d;
	return (int)ho->n_fds++;
}

int scm_handover_fd_take(scm_provider *p, int64_t index)
{
	struct provider_ho *ho = p ? p->ho : NULL;
	if (!ho || !ho->restoring || index < 0 || (uint64_t)index >= ho->n_fds || ho->fds[index] < 0)
		return -EBADF;
	int fd = ho->fds[index];
	ho->fds[index] = -1;
	return fd;
}

void provider_ho_free_(scm_provider *p)
{
	if (!p->ho)
		return;
	fds_close(p->ho);
	json_object_put(p->ho->saved);
	free(p->ho);
	p->ho = NULL;
}

/* What scmd sent behind the state (the channels, fds) is read and dropped:
 * a socket closed with unread frames resets its peer, whose read of our
 * refusal could then fail and lose why. */
static void drain(scm_provider *p)
{
	scm_message *m = NULL;
	while (scm_wire_recv(p->ctl_fd, MSG_DONTWAIT, &m, NULL) == 0) {
		scm_message_free(m);
		m = NULL;
	}
}

/* The new process cannot take the state: scmd hears why (and keeps the
 * old one running); the caller exits. */
static int refuse(scm_provider *p, scm_error **ret_err, int code, const char *why)
{
	scm_error *local = NULL, **e = ret_err ? ret_err : &local;
	int r = scm_fail(e, code, "%s", why);
	json_object *ev = scm_error_to_json(*e); /* {"error": [...]} */
	json_object_object_add(ev, "op", json_object_new_string("handover.refused"));
	drain(p);
	scm_wire_send_json(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, NULL, 0, NULL, 0);
	json_object_put(ev);
	/* scmd, which heard us, stops sending: what came meanwhile goes too */
	for (int i = 0; i < 20; i++) {
		struct pollfd pfd = { .fd = p->ctl_fd, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0 || (pfd.revents & (POLLHUP | POLLERR)))
			break;
		drain(p);
	}
	scm_error_free(local);
	return r;
}

/* The fds scmd passes right behind the state, up to SCM_FDS_MAX a frame
 * ("handover.fds"), until n arrived. */
static int take_fds(struct provider_ho *ho, scm_message *m, size_t n, scm_error **ret_err)
{
	for (size_t i = 0; i < m->n_fds; i++) {
		int fd = scm_message_steal_fd(m, i);
		if (ho->n_fds >= n) {
			safe_close(fd);
			return scm_fail(ret_err, SCM_E_PROTOCOL, "scmd passed more fds than the %zu it announced", n);
		}
		ho->fds[ho->n_fds++] = fd;
	}
	return 0;
}

/* Says it waits, and waits (scmd bounds it: the manifest's timeout_ms,
 * then we are killed) for the state's memfd and the fds that go with it. */
static int wait_state(scm_provider *p, struct provider_ho *ho, scm_error **ret_err)
{
	int state_fd = -1;
	size_t want = 0;
	json_object *ev = json_object_new_object();
	json_object_object_add(ev, "op", json_object_new_string("handover.waiting"));
	int r = scm_wire_send_json(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, NULL, 0, NULL, 0);
	json_object_put(ev);
	if (r < 0)
		return scm_fail(ret_err, r, "telling scmd the provider waits for a state: %s", strerror(-r));
	for (;;) {
		struct pollfd pfd = { .fd = p->ctl_fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return scm_fail(ret_err, -errno, "poll: %m");
		}
		scm_message *m = NULL;
		r = scm_wire_recv(p->ctl_fd, MSG_DONTWAIT, &m, ret_err);
		if (r == -EAGAIN)
			continue;
		if (r == 1 || r != 0) {
			safe_close(state_fd);
			if (r == 1)
				return scm_fail(ret_err, SCM_E_REVOKED,
						"scmd gave up the handover (it closed the control connection)");
			return scm_fail(ret_err, r, "waiting for the predecessor's state");
		}
		const char *op = m->json ? json_object_get_string(json_object_object_get(m->json, "op")) : NULL;
		if (op && state_fd < 0 && strcmp(op, "handover.state") == 0) {
			state_fd = scm_message_steal_fd(m, 0);
			int64_t n = json_object_get_int64(json_object_object_get(m->json, "fds"));
			/* a checkpoint held by scmd, after a crash (provider-checkpoint.c) */
			p->recovered = json_object_get_boolean(json_object_object_get(m->json, "recovery"));
			scm_message_free(m);
			if (state_fd < 0)
				return scm_fail(ret_err, SCM_E_PROTOCOL, "scmd passed no state");
			if (n < 0 || n > SCM_HANDOVER_FDS_MAX) {
				close(state_fd);
				return scm_fail(ret_err, SCM_E_PROTOCOL, "scmd announced %lld fds with the state",
						(long long)n);
			}
			want = (size_t)n;
			if (want && !(ho->fds = calloc(want, sizeof(int)))) {
				close(state_fd);
				return scm_fail(ret_err, -ENOMEM, "out of memory");
			}
		} else if (op && state_fd >= 0 && strcmp(op, "handover.fds") == 0) {
			r = take_fds(ho, m, want, ret_err);
			scm_message_free(m);
			if (r != 0) {
				close(state_fd);
				return r;
			}
		} else
			scm_message_free(m); /* nothing else is expected before it */
		if (state_fd >= 0 && ho->n_fds == want)
			return state_fd;
	}
}

static int restore(scm_provider *p, struct provider_ho *ho, scm_error **ret_err)
{
	json_object *doc = NULL;
	uint32_t version = 0, n_fds = 0;
	char why[256];

	int fd = wait_state(p, ho, ret_err);
	if (fd < 0)
		return fd;
	int r = provider_state_read(fd, &version, &n_fds, &doc, ret_err);
	close(fd);
	if (r != 0)
		return refuse(p, ret_err, SCM_E_INVALID, "the predecessor's state is unreadable");
	if (n_fds != ho->n_fds) {
		snprintf(why, sizeof why, "the state names %u fds, scmd passed %zu", n_fds, ho->n_fds);
		json_object_put(doc);
		return refuse(p, ret_err, SCM_E_INVALID, why);
	}
	json_object *v = json_object_object_get(doc, "interface");
	if (strcmp(json_object_get_string(v), p->iface->name) != 0) {
		snprintf(why, sizeof why, "the state is of interface '%s', this provider serves '%s'",
			 json_object_get_string(v), p->iface->name);
		json_object_put(doc);
		return refuse(p, ret_err, SCM_E_INVALID, why);
	}
	if (version < ho->ops.min_version || version > ho->ops.version) {
		snprintf(why, sizeof why, "state version %u: this provider reads versions %u to %u", version,
			 ho->ops.min_version, ho->ops.version);
		json_object_put(doc);
		return refuse(p, ret_err, SCM_E_INVALID, why);
	}
	ho->restoring = true;
	r = ho->ops.restore(json_object_object_get(doc, "state"), version, p->userdata, ret_err);
	if (r != 0) {
		json_object_put(doc);
		return refuse(p, ret_err, r, "the provider could not restore its predecessor's state");
	}
	ho->version = version;
	ho->saved = json_object_new_object();
	json_object *chans = json_object_object_get(doc, "channels");
	for (size_t i = 0; i < json_object_array_length(chans); i++) {
		json_object *c = json_object_array_get_idx(chans, i);
		char id[24];
		snprintf(id, sizeof id, "%lld", (long long)json_object_get_int64(json_object_object_get(c, "channel")));
		json_object_object_add(ho->saved, id, json_object_get(json_object_object_get(c, "data")));
	}
	json_object_put(doc);
	if (json_object_object_length(ho->saved) == 0) {
		ho->restoring = false; /* no channel will take what restore() left */
		fds_close(ho);
	}
	return 0;
}

int scm_provider_handover(scm_provider *p, const scm_handover_ops *ops, scm_error **ret_err)
{
	if (!ops || !ops->save || !ops->restore || ops->version < 1 || ops->min_version < 1 ||
	    ops->min_version > ops->version)
		return scm_fail(ret_err, -EINVAL,
				"scm_provider_handover: save and restore are required, and 1 <= min_version <= version");
	struct provider_ho *ho = ho_get(p);
	if (!ho)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	ho->ops = *ops;
	ho->have_ops = true;
	if (!ho->pending)
		return 0;
	ho->pending = false;
	int r = restore(p, ho, ret_err);
	if (r != 0)
		return r;
	r = provider_send_ready_(p, true);
	if (r < 0)
		return scm_fail(ret_err, r, "telling scmd the provider took over: %s", strerror(-r));
	return 0;
}

int provider_ho_check_(scm_provider *p, scm_error **ret_err)
{
	struct provider_ho *ho = p->ho;
	if (!ho || !ho->pending)
		return 0;
	ho->pending = false;
	return refuse(p, ret_err, SCM_E_INVALID,
		      "this provider was started to take over its predecessor's channels but does not "
		      "implement it (no scm_provider_handover() before serving)");
}

int provider_ho_channel_(scm_provider *p, struct chan *c, json_object *grant)
{
	struct provider_ho *ho = p->ho;
	json_object *v, *data;
	if (!ho || !ho->saved || !json_object_object_get_ex(grant, "handover", &v) || !json_object_get_boolean(v))
		return 0;
	char id[24];
	snprintf(id, sizeof id, "%llu", (unsigned long long)c->grant.channel);
	if (!json_object_object_get_ex(ho->saved, id, &data))
		return 0; /* made after the state was saved: nothing to restore */
	int r = 0;
	ho->cur = c;
	if (ho->ops.restore_channel)
		r = ho->ops.restore_channel(&c->grant, data, ho->version, &c->data, p->userdata);
	ho->cur = NULL;
	json_object_object_del(ho->saved, id);
	if (json_object_object_length(ho->saved) == 0) {
		ho->restoring = false; /* the last saved channel is back */
		fds_close(ho);
	}
	return r;
}

/* ---- work in progress and calls across a handover ------------------------ */

scm_call *provider_call_deferred_(scm_provider *p, struct chan *c, uint32_t call_id, const char *method,
				  bool no_reply)
{
	scm_call *d = malloc(sizeof(*d));
	if (!d)
		return NULL;
	*d = (scm_call){ .p = p, .ch = c, .call_id = call_id, .no_reply = no_reply, .method = method,
			 .deferred = true, .replied = false };
	atomic_init(&d->cancelled, false);
	d->next = c->deferred;
	if (d->next)
		d->next->pprev = &d->next;
	d->pprev = &c->deferred;
	c->deferred = d;
	c->n_deferred++;
	return d;
}

int scm_call_set_carriable(scm_call *call)
{
	if (!call || !call->deferred || !call->ch)
		return -EINVAL;
	if (!call->carriable) {
		call->carriable = true;
		call->ch->n_carriable++;
	}
	return 0;
}

void scm_provider_hold(scm_provider *p, int delta)
{
	p->holds += delta;
	if (p->holds < 0)
		p->holds = 0;
}

void scm_provider_on_quiesce(scm_provider *p, void (*fn)(bool quiet, void *userdata))
{
	p->on_quiesce = fn;
}

/* Whether every call was answered (but those the state may carry), every
 * reply has left and no work the provider holds the handover for is on. */
static bool all_quiet(scm_provider *p)
{
	if (p->holds > 0)
		return false;
	for (struct chan *c = p->chans; c; c = c->next)
		if (c->n_deferred > c->n_carriable || c->outq.head)
			return false;
	return true;
}

static void quiesce(scm_provider *p, bool quiet)
{
	if (p->on_quiesce)
		p->on_quiesce(quiet, p->userdata);
}

json_object *scm_call_save(scm_call *call)
{
	struct provider_ho *ho = call && call->p ? call->p->ho : NULL;
	if (!ho || !ho->saving || !call->deferred || !call->ch || !call->carriable)
		return NULL;
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "call", json_object_new_int64(call->call_id));
	json_object_object_add(o, "method", json_object_new_string(call->method ? call->method : ""));
	json_object_object_add(o, "no_reply", json_object_new_boolean(call->no_reply));
	call->carried = true;
	return o;
}

scm_call *scm_call_restore(scm_provider *p, json_object *saved)
{
	struct provider_ho *ho = p ? p->ho : NULL;
	json_object *v;
	if (!ho || !ho->cur || !json_object_object_get_ex(saved, "call", &v) || !json_object_is_type(v, json_type_int))
		return NULL;
	int64_t id = json_object_get_int64(v);
	const char *m = json_object_get_string(json_object_object_get(saved, "method"));
	const char *name = NULL;
	for (size_t i = 0; m && i < p->iface->n_methods; i++)
		if (strcmp(p->iface->methods[i].name, m) == 0)
			name = p->iface->methods[i].name;
	if (id <= 0 || id > UINT32_MAX || !name)
		return NULL; /* not a call of this interface */
	scm_call *d = provider_call_deferred_(p, ho->cur, (uint32_t)id, name,
					      json_object_get_boolean(json_object_object_get(saved, "no_reply")));
	if (d)
		scm_call_set_carriable(d);
	return d;
}

static int save(scm_provider *p, struct provider_ho *ho, int *ret_fd, size_t *ret_n, scm_error **ret_err)
{
	if (!ho->have_ops)
		return scm_fail(ret_err, -EINVAL, "the provider has no state to save (no scm_provider_handover)");
	fds_close(ho);
	ho->saving = true;
	json_object *state = ho->ops.save(p->userdata, ret_err);
	if (!state && ret_err && *ret_err) {
		ho->saving = false;
		fds_close(ho);
		return scm_fail(ret_err, (*ret_err)->code, "the provider could not save its state");
	}
	json_object *doc = json_object_new_object();
	json_object *chans = json_object_new_array();
	size_t n = 0;
	json_object_object_add(doc, "interface", json_object_new_string(p->iface->name));
	json_object_object_add(doc, "saved_us", json_object_new_int64((int64_t)mono_us()));
	json_object_object_add(doc, "state", state);
	for (struct chan *c = p->chans; c; c = c->next, n++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "channel", json_object_new_int64((int64_t)c->grant.channel));
		json_object_object_add(e, "data", ho->ops.save_channel
							  ? ho->ops.save_channel(&c->grant, c->data, p->userdata)
							  : NULL);
		json_object_array_add(chans, e);
	}
	json_object_object_add(doc, "channels", chans);
	ho->saving = false;
	int r = provider_state_write(doc, ho->ops.version, (uint32_t)ho->n_fds, ret_fd, ret_err);
	json_object_put(doc);
	if (r != 0)
		fds_close(ho);
	*ret_n = n;
	return r;
}

/* A checkpoint (provider-checkpoint.c): the state as for a handover, its
 * fds in *ret_fds until provider_ho_save_done_(). */
int provider_ho_save_(scm_provider *p, int *ret_fd, const int **ret_fds, size_t *ret_n_fds, scm_error **ret_err)
{
	struct provider_ho *ho = ho_get(p);
	size_t n = 0;
	if (!ho)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	int r = save(p, ho, ret_fd, &n, ret_err);
	*ret_fds = ho->fds;
	*ret_n_fds = ho->n_fds;
	return r;
}

void provider_ho_save_done_(scm_provider *p)
{
	if (p->ho)
		fds_close(p->ho);
}

bool scm_provider_recovery(const scm_provider *p)
{
	if (!p || !p->ho)
		return false;
	return p->ho->saving ? p->ckpt_saving : p->recovered;
}

/* The state's fds go to scmd before the reply that carries the memfd, up
 * to SCM_FDS_MAX a frame; scmd counts them against the reply's "fds". */
static int send_fds(scm_provider *p, struct provider_ho *ho)
{
	for (size_t i = 0; i < ho->n_fds; i += SCM_FDS_MAX) {
		size_t k = ho->n_fds - i < SCM_FDS_MAX ? ho->n_fds - i : SCM_FDS_MAX;
		json_object *ev = json_object_new_object();
		json_object_object_add(ev, "op", json_object_new_string("handover.fds"));
		int r = scm_wire_send_json(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, NULL, 0,
					   ho->fds + i, k);
		json_object_put(ev);
		if (r < 0)
			return r;
	}
	return 0;
}

static void watch_all(scm_provider *p, bool reading)
{
	for (struct chan *c = p->chans; c; c = c->next)
		provider_chan_watch_(p, c, c->outq.head ? EPOLLOUT : reading ? EPOLLIN : 0);
}

void provider_ho_poll_(scm_provider *p)
{
	struct provider_ho *ho = p->ho;
	if (!ho || !ho->quiet || ho->handed || !all_quiet(p))
		return;
	scm_error *e = NULL;
	int fd = -1;
	size_t n = 0;
	uint64_t quiet_us = mono_us();
	if (save(p, ho, &fd, &n, &e) != 0) {
		e = scm_error_wrap(e, e ? e->code : SCM_E_INTERNAL, "libscm/handover", "%s keeps running",
				   p->iface->name);
		scm_wire_send_error(p->ctl_fd, MSG_NOSIGNAL, ho->call_id, e);
		scm_error_free(e);
		ho->quiet = false;
		watch_all(p, true);
		quiesce(p, false);
		return;
	}
	json_object *body = json_object_new_object();
	json_object_object_add(body, "channels", json_object_new_int64((int64_t)n));
	json_object_object_add(body, "version", json_object_new_int64(ho->ops.version));
	json_object_object_add(body, "quiet_us", json_object_new_int64((int64_t)quiet_us));
	json_object_object_add(body, "fds", json_object_new_int64((int64_t)ho->n_fds));
	int r = send_fds(p, ho);
	if (r == 0)
		r = scm_wire_send_json(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_REPLY, 0, ho->call_id, 0, body, NULL, 0,
				       &fd, 1);
	json_object_put(body);
	close(fd);
	fds_close(ho); /* scmd has its own */
	if (r < 0) { /* scmd is gone: go on serving until the loop notices */
		ho->quiet = false;
		watch_all(p, true);
		quiesce(p, false);
		return;
	}
	ho->handed = true;
}

bool provider_ho_control_(scm_provider *p, scm_message *m)
{
	const char *op = json_object_get_string(json_object_object_get(m->json, "op"));
	if (!op)
		return false;
	if (strcmp(op, "handover") == 0 && m->type == SCM_FRAME_CALL) {
		struct provider_ho *ho = ho_get(p);
		if (!ho || !ho->have_ops || ho->quiet) {
			scm_error *e = scm_error_new(!ho || !ho->have_ops ? SCM_E_INVALID : SCM_E_BUSY,
						     "libscm/handover",
						     !ho || !ho->have_ops
							     ? "this provider of %s cannot hand its channels over (it does not call scm_provider_handover)"
							     : "a handover of %s is on its way already",
						     p->iface->name);
			scm_wire_send_error(p->ctl_fd, MSG_NOSIGNAL, m->call_id, e);
			scm_error_free(e);
			return true;
		}
		ho->quiet = true;
		ho->call_id = m->call_id;
		watch_all(p, false);
		quiesce(p, true);
		return true; /* provider_ho_poll_ answers once all is quiet */
	}
	if (strcmp(op, "handover.abort") == 0) {
		if (p->ho && p->ho->quiet) {
			p->ho->quiet = p->ho->handed = false;
			watch_all(p, true);
			quiesce(p, false);
		}
		return true;
	}
	return false;
}
