/* conn.c: client connections and their out queues.
 *
 * scmd never blocks on a peer. A reply that does not fit in the peer's
 * socket buffer waits in the connection's queue, and its bytes are charged
 * to the endpoint; a connection whose endpoint is over its byte quota is
 * dropped, so a client that stops reading costs scmd a bounded amount and
 * nobody else anything. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "scm-internal/wire.h"
#include "restart.h"
#include "scmd.h"

static void conn_io(struct scmd *d, struct watch *w, uint32_t events);

struct conn *conn_new(struct scmd *d, int fd, enum conn_kind kind, struct endpoint *ep)
{
	struct conn *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(c->cred);

	if (!c)
		return NULL;
	c->w = (struct watch){ fd, conn_io };
	list_init(&c->dead_node);
	c->kind = kind;
	c->ep = ep;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0 ||
	    watch_add(d, &c->w, EPOLLIN) < 0) {
		free(c);
		return NULL;
	}
	/* Control connections are on no list: nothing walks them (each is
	 * found through its watch), and list_del of a lone node is a no-op. */
	list_init(&c->node);
	if (ep) {
		list_add(&ep->conns, &c->node);
		quota_charge(&ep->used, QUOTA_CONNS);
	}
	return c;
}

void conn_close(struct scmd *d, struct conn *c)
{
	/* Its connects waiting for an activation only lose their connection;
	 * the provider's start goes on for the others. */
	pending_drop_conn(d, c);
	list_del(&c->dead_node); /* it may be closed before the main loop reaps it */
	scmd_ctr_conn_gone(d, c);
	restart_conn_gone(d, c);
	svc_restart_conn_gone(d, c);
	events_conn_gone(d, c);
	quota_release_bytes(&c->ep->used, c->outq.bytes);
	scm_outq_clear(&c->outq);
	watch_del(d, &c->w);
	safe_close(c->w.fd);
	list_del(&c->node);
	if (c->ep)
		quota_release(&c->ep->used, QUOTA_CONNS);
	free(c);
}

/* Sends what waits in the queue; the endpoint is charged for what is
 * left. */
static int flush(struct scmd *d, struct conn *c)
{
	size_t before = c->outq.bytes;
	int r = scm_outq_flush(c->w.fd, &c->outq);
	quota_release_bytes(&c->ep->used, before - c->outq.bytes);
	if (r == -EAGAIN)
		return watch_mod(d, &c->w, EPOLLIN | EPOLLOUT);
	if (r < 0)
		return r;
	return watch_mod(d, &c->w, EPOLLIN);
}

static int send_text(struct scmd *d, struct conn *c, uint8_t type, uint32_t call_id, const char *s, size_t len,
		     const int *fds, size_t n_fds)
{
	size_t before = c->outq.bytes;

	if (c->dead)
		return -EPIPE;
	int r = scm_outq_send(c->w.fd, &c->outq, type, 0, call_id, 0, s, len, NULL, 0, fds, n_fds);
	if (r == -EMSGSIZE && type != SCM_FRAME_ERROR && type != SCM_FRAME_EVENT)
		/* A reply over the frame limit (a long listing, a big IDL) must
		 * still answer: the caller would wait for it forever. */
		return conn_reply_fail(d, c, call_id, SCM_E_INTERNAL,
				       "the reply (%zu bytes) is over the %u-byte frame limit", len, SCM_FRAME_MAX);
	if (r < 0)
		return r;
	if (r == 0)
		return 0;
	/* Queued: charge the endpoint, and drop a client that is over. */
	if (!quota_charge_bytes(&c->ep->used, &c->ep->limit, c->outq.bytes - before)) {
		conn_kill(d, c);
		return SCM_E_QUOTA;
	}
	return watch_mod(d, &c->w, EPOLLIN | EPOLLOUT);
}

int conn_send(struct scmd *d, struct conn *c, uint8_t type, uint32_t call_id,
	      struct json_object *body, const int *fds, size_t n_fds)
{
	size_t len = 0;
	const char *s = body ? json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len) : NULL;
	return send_text(d, c, type, call_id, s, len, fds, n_fds);
}

int conn_send_raw(struct scmd *d, struct conn *c, uint8_t type, uint32_t call_id, const char *json, size_t len)
{
	return send_text(d, c, type, call_id, json, len, NULL, 0);
}

int conn_send_error(struct scmd *d, struct conn *c, uint32_t call_id, const scm_error *e)
{
	json_object *j = scm_error_to_json(e);
	int r = conn_send(d, c, SCM_FRAME_ERROR, call_id, j, NULL, 0);
	json_object_put(j);
	return r;
}

int conn_reply_fail(struct scmd *d, struct conn *c, uint32_t call_id, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd", fmt, ap);
	va_end(ap);
	int r = conn_send_error(d, c, call_id, e);
	scm_error_free(e);
	return r;
}

static void conn_io(struct scmd *d, struct watch *w, uint32_t events)
{
	struct conn *c = (struct conn *)w;

	if (events & EPOLLOUT && flush(d, c) < 0)
		conn_kill(d, c);
	/* A bounded number of requests per wake-up keeps one chatty client from
	 * starving the others. */
	for (int budget = 16; budget > 0 && !c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR));
	     budget--) {
		scm_message *m = NULL;
		scm_error *e = NULL;
		int r = scm_wire_recv(c->w.fd, MSG_DONTWAIT, &m, &e);
		if (r == -EAGAIN)
			break;
		if (r == SCM_E_PROTOCOL) {
			/* Tell the peer what was wrong, then drop it. */
			e = scm_error_wrap(e, SCM_E_PROTOCOL, "scmd", "dropping connection after a malformed frame");
			scm_wire_send_error(c->w.fd, MSG_DONTWAIT, 0, e);
			log_warning("%s%s: uid %u pid %d sent a malformed frame: %s",
				c->ep ? "endpoint " : "control", c->ep ? c->ep->name : "", c->cred.uid,
				c->cred.pid, e->cause && e->cause->message ? e->cause->message : "");
			audit_event(d->audit, "protocol-error", "\"endpoint\":\"%s\",\"pid\":%d",
				    c->ep ? c->ep->name : "control", c->cred.pid);
			scm_error_free(e);
			conn_kill(d, c);
			break;
		}
		if (r != 0) {
			scm_error_free(e);
			conn_kill(d, c);
			break;
		}
		if (m->type != SCM_FRAME_CALL)
			conn_reply_fail(d, c, m->call_id, SCM_E_PROTOCOL, "scmd only takes calls");
		else if (c->kind == CONN_CONTROL)
			control_dispatch(d, c, m);
		else if (m->method == 1)
			broker_connect(d, c, m->call_id, m->json);
		else
			conn_reply_fail(d, c, m->call_id, SCM_E_NO_METHOD,
					"endpoints have one method, connect (1); got %u", m->method);
		scm_message_free(m);
	}
}

void conn_kill(struct scmd *d, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	list_add(&d->dead_conns, &c->dead_node);
}

void conn_reap_dead(struct scmd *d)
{
	while (!list_empty(&d->dead_conns)) {
		struct conn *c = list_entry(d->dead_conns.next, struct conn, dead_node);
		list_del(&c->dead_node);
		conn_close(d, c);
	}
}
