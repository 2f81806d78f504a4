/* broker.c: connect, hand-off, channels and revocation.
 *
 * A connect is decided from the identity scmd gave the connection (the
 * endpoint it came in on, SO_PEERCRED), never from the request, which only
 * names the service. If allowed, scmd makes a socketpair, sends one end to
 * the provider with the grant and the other to the client, and keeps the
 * provider's end (channel.c). Connects that wait for an activation are
 * pending.c's. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "scm-internal/wire.h"
#include "scmd.h"

/* Makes the channel and hands both ends over. Returns 0 or an error the
 * caller reports to the client. */
static int handoff(struct scmd *d, struct conn *c, uint32_t call_id, struct service *s,
		   json_object *grant, const char *origin, scm_error **ret_err)
{
	int sp[2];
	struct endpoint *ep = c->ep;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return scm_fail(ret_err, -errno, "socketpair: %m");
	struct channel *ch = channel_new(d, s, ep, &c->cred, sp[1], origin);
	if (!ch) {
		close(sp[0]);
		close(sp[1]);
		return -ENOMEM;
	}

	/* The grant: who is calling, as scmd knows it, and what they may do. */
	json_object *g = json_object_new_object();
	json_object_object_add(g, "op", json_object_new_string("channel"));
	json_object_object_add(g, "channel", json_object_new_int64((int64_t)ch->id));
	json_object_object_add(g, "service", json_object_new_string(s->name));
	json_object_object_add(g, "caller", json_object_new_string(ep->name));
	json_object_object_add(g, "uid", json_object_new_int64(c->cred.uid));
	json_object_object_add(g, "gid", json_object_new_int64(c->cred.gid));
	json_object_object_add(g, "pid", json_object_new_int64(c->cred.pid));
	json_object_object_foreach(grant, k, v) json_object_object_add(g, k, json_object_get(v));
	ch->grant_json = strdup(json_object_to_json_string_ext(grant, JSON_C_TO_STRING_PLAIN));
	int r = service_send(d, s, SCM_FRAME_CALL, SCM_FLAG_NO_REPLY, g, &sp[1], 1);
	json_object_put(g);
	if (r != 0) {
		close(sp[0]);
		channel_free(d, ch); /* closes sp[1] */
		if (r == SCM_E_BUSY)
			return scm_fail(ret_err, SCM_E_BUSY, "the provider of '%s' is not taking channels (%zu waiting)",
					s->name, s->ctl_q.frames);
		return scm_fail(ret_err, SCM_E_PROVIDER_GONE, "cannot hand the channel to the provider of '%s': %s",
				s->name, strerror(-r));
	}

	json_object *reply = json_object_new_object();
	json_object_object_add(reply, "channel", json_object_new_int64((int64_t)ch->id));
	json_object_object_add(reply, "interface", json_object_new_string(s->iface_name));
	json_object_object_add(reply, "version", json_object_new_int((int)s->idl->version));
	r = conn_send(d, c, SCM_FRAME_REPLY, call_id, reply, &sp[0], 1);
	json_object_put(reply);
	close(sp[0]);

	channel_link(d, ch);
	if (r < 0)
		channel_free(d, ch); /* the client went away meanwhile */
	return 0;
}

static void finish_connect(struct scmd *d, struct conn *c, uint32_t call_id, struct service *s,
			   json_object *grant, const char *origin, uint64_t t_start, uint64_t t_decided)
{
	scm_error *e = NULL;
	uint64_t t_ready = now_usec();

	if (handoff(d, c, call_id, s, grant, origin, &e) != 0) {
		e = scm_error_wrap(e, e ? e->code : SCM_E_INTERNAL, "scmd", "connect to '%s' failed", s->name);
		conn_send_error(d, c, call_id, e);
		scm_error_free(e);
		return;
	}
	uint64_t t_done = now_usec();
	latency_add(&d->lat_decide, t_decided - t_start);
	latency_add(&d->lat_activate, t_ready - t_decided);
	latency_add(&d->lat_handoff, t_done - t_ready);
	latency_add(&d->lat_total, t_done - t_start);
}

void broker_connect(struct scmd *d, struct conn *c, uint32_t call_id, json_object *args)
{
	struct endpoint *ep = c->ep;
	uint64_t t0 = now_usec();
	json_object *v;

	/* The request names a service and nothing else that matters: any
	 * other field (an identity, a uid) is ignored by construction. */
	if (!args || !json_object_object_get_ex(args, "service", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
	    json_object_get_string_len(v) > SCM_NAME_MAX) {
		conn_reply_fail(d, c, call_id, SCM_E_INVALID, "connect needs {\"service\": NAME}");
		return;
	}
	const char *name = json_object_get_string(v);
	struct service *s = service_find(d, name);
	if (!s || s->unregistering) {
		audit_connect(d->audit, ep, &c->cred, name, false, SCM_E_NO_SERVICE, "no such service", "", 0);
		conn_reply_fail(d, c, call_id, SCM_E_NO_SERVICE, "no service '%s' is registered", name);
		return;
	}
	s->n_connects++;
	/* Connects waiting for an activation count as channels (quota.h). */
	if (!quota_room(&ep->used, &ep->limit, QUOTA_CHANNELS)) {
		audit_connect(d->audit, ep, &c->cred, name, false, SCM_E_QUOTA, "channel quota", "", 0);
		conn_reply_fail(d, c, call_id, SCM_E_QUOTA,
				"endpoint '%s' has %u live channels, its limit; close some first", ep->name,
				ep->limit.channels);
		return;
	}

	struct decision dec = { 0 };
	scmd_policy_decide(d, ep, s, &dec);
	uint64_t t1 = now_usec();
	if (!dec.allowed) {
		s->n_denied++;
		audit_connect(d->audit, ep, &c->cred, name, false, dec.code, dec.reason, dec.origin, 0);
		scm_error *e = scm_error_new(dec.code, "scmd/policy", "%s (rule: %s)", dec.reason, dec.origin);
		conn_send_error(d, c, call_id, e);
		scm_error_free(e);
		return;
	}

	if (s->state == P_READY) {
		uint64_t id = d->next_channel + 1;
		finish_connect(d, c, call_id, s, dec.grant, dec.origin, t0, t1);
		audit_connect(d->audit, ep, &c->cred, name, true, 0, "", dec.origin, id);
		json_object_put(dec.grant);
		return;
	}
	if (!quota_room(&ep->used, &ep->limit, QUOTA_PENDING)) {
		json_object_put(dec.grant);
		audit_connect(d->audit, ep, &c->cred, name, false, SCM_E_QUOTA, "pending-connect quota", "", 0);
		conn_reply_fail(d, c, call_id, SCM_E_QUOTA,
				"endpoint '%s' has %u connects waiting for activation, its limit", ep->name,
				ep->limit.pending);
		return;
	}
	if (!pending_add(s, c, call_id, t0, t1, dec.grant, dec.origin)) {
		json_object_put(dec.grant);
		conn_reply_fail(d, c, call_id, -ENOMEM, "out of memory");
		return;
	}
	audit_connect(d->audit, ep, &c->cred, name, true, 0, "waiting for activation", dec.origin, 0);
	service_activate(d, s);
}

void broker_flush_pending(struct scmd *d, struct service *s)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &s->pending)
	{
		struct pending_connect *pc = list_entry(p, struct pending_connect, node);
		finish_connect(d, pc->conn, pc->call_id, s, pc->grant, pc->origin, pc->t_start,
			       pc->t_decided);
		pending_free(pc);
	}
}

void broker_fail_pending(struct scmd *d, struct service *s, const scm_error *why)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &s->pending)
	{
		struct pending_connect *pc = list_entry(p, struct pending_connect, node);
		conn_send_error(d, pc->conn, pc->call_id, why);
		pending_free(pc);
	}
}
