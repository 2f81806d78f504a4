/* service-restart.c: `scmctl service restart NAME [--exec PATH]`, a
 * provider replaced by a new process with its channels (docs/handover.md).
 *
 *   1. scmd starts the new process ($SCM_PROVIDER_HANDOVER=1) beside the
 *      old one, which goes on serving: loading a program is the slow part
 *      and clients need not wait for it. The new one says
 *      "handover.waiting" once it can take a state (or refuses, or says a
 *      plain ready: it does not implement the handover).
 *   2. scmd calls "handover" on the old one's control socket; new connects
 *      to the service wait from now on (P_HANDOVER, as pending connects of
 *      an activation). The old one (libscm) stops reading its channels,
 *      lets every call in progress be answered, and replies with its state
 *      in a sealed memfd, or refuses and goes on as it was.
 *   3. scmd passes the memfd to the new one ("handover.state") and right
 *      behind it every live channel again (the provider ends scmd keeps
 *      for revocation are the very sockets the old process had: the calls
 *      clients sent meanwhile wait in them). It restores the state and
 *      says ready ("restored": true), or "handover.refused".
 *   4. Ready: scmd closes the old process' control socket (it exits, its
 *      channel ends closed without a shutdown) and answers. Refused, timed
 *      out or dead: the new process is killed and the old one told
 *      "handover.abort": it reads its channels again, and the request
 *      fails with the new one's words.
 *
 * The state may carry fds (docs/handover.md, "Descriptors"): the old
 * process sends them on its control socket ("handover.fds" events, up to
 * SCM_FDS_MAX a frame) right before its reply, which says how many. scmd
 * keeps them only from that socket, only while it waits for that reply,
 * at most SCM_HANDOVER_FDS_MAX, and passes exactly those to the new
 * process of the same service behind the state; they are closed when the
 * handover ends, whichever way.
 *
 * A provider in a container of its own gets its successor in a new
 * container (provider-container.c, as at an activation, with
 * $SCM_PROVIDER_HANDOVER=1): its control connection comes through that
 * container's endpoint (svc_restart_connected) instead of a socketpair,
 * and its end before it took over is the restart's failure
 * (svc_restart_ctr_ended). The old container, once replaced, and a
 * successor given up are let go of (scmd_ctr_let_go): their end is no
 * provider's end, and their records go with them.
 *
 * Only the channels scmd lists are carried: offload token channels
 * (tokens.c) are not, like at scmd's own restart. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scmd.h"

#define QUIESCE_MS 10000 /* for the old process to answer what it has in progress */
#define LOG_TAIL 400     /* of a new provider's container that ended, in the error */
#define WHERE "scmd/service-restart"

enum ho_phase {
	HO_SPAWN,   /* the new process is loading */
	HO_QUIESCE, /* the old one finishes its calls and saves */
	HO_RESTORE, /* the new one reads the state */
};

struct svc_handover {
	struct service *s;
	struct conn *conn; /* the service.restart request; NULL once it went away */
	uint32_t call_id;
	uint32_t ctl_call; /* our "handover" call to the old process */
	enum ho_phase phase;
	pid_t new_pid;     /* 0 once reaped */
	bool new_reaped;   /* waited for, its pid kept a moment: not to be killed */
	char *ctr;         /* the new provider's container, or NULL (a process) */
	struct watch new_ctl;
	struct scm_outq new_q; /* what the new process has not taken in yet */
	size_t channels; /* handed to the new process with the state */
	int *fds;        /* the old process' state fds, for the new one */
	size_t n_fds;
	bool fds_over;   /* it sent more than SCM_HANDOVER_FDS_MAX */
	uint64_t t_start, quiet_us;
};

static uint32_t next_ctl_call;

static void old_providers_add(struct scmd *d, pid_t pid)
{
	pid_t *n = realloc(d->old_providers, (d->n_old_providers + 1) * sizeof(pid_t));
	if (!n) {
		kill(pid, SIGKILL); /* out of memory: a zombie until scmd exits */
		return;
	}
	d->old_providers = n;
	d->old_providers[d->n_old_providers++] = pid;
}

const char *svc_restart_busy(struct scmd *d)
{
	for (struct list *p = d->services.next; p != &d->services; p = p->next)
		if (list_entry(p, struct service, node)->ho)
			return "a provider is being restarted with its channels";
	if (d->n_old_providers || scmd_ctr_replaced_running(d))
		return "a provider replaced by a service restart is still exiting";
	return NULL;
}

void svc_restart_conn_gone(struct scmd *d, struct conn *c)
{
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->ho && s->ho->conn == c)
			s->ho->conn = NULL;
	}
}

/* Frees the handover; the new process, unless it took over (its pid is
 * then s->pid and its socket s->ctl), is killed. */
static void ho_free(struct scmd *d, struct service *s)
{
	struct svc_handover *ho = s->ho;
	s->ho = NULL;
	if (ho->new_ctl.fd >= 0) {
		watch_del(d, &ho->new_ctl);
		safe_close(ho->new_ctl.fd);
	}
	scm_outq_clear(&ho->new_q);
	for (size_t i = 0; i < ho->n_fds; i++)
		safe_close(ho->fds[i]);
	free(ho->fds);
	if (ho->ctr)
		scmd_ctr_let_go(d, ho->ctr, true); /* its record goes too */
	else if (ho->new_pid > 0 && !ho->new_reaped) {
		kill(ho->new_pid, SIGKILL);
		old_providers_add(d, ho->new_pid);
	}
	free(ho->ctr);
	free(ho);
}

/* The service serves again (whichever process): connects that waited go
 * to it. */
static void serve_again(struct scmd *d, struct service *s)
{
	s->state = P_READY;
	timer_arm(&s->timer, 0);
	broker_flush_pending(d, s);
}

static void fail_request(struct scmd *d, struct svc_handover *ho, scm_error *e)
{
	if (ho->conn)
		conn_send_error(d, ho->conn, ho->call_id, e);
	scm_error_free(e);
}

/* Refused, timed out, or a process died: the old process goes on (told to
 * read its channels again if it was asked to stop). */
static void give_up(struct scmd *d, struct service *s, scm_error *e)
{
	struct svc_handover *ho = s->ho;
	if (ho->phase != HO_SPAWN && s->ctl.fd >= 0) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "op", json_object_new_string("handover.abort"));
		service_send(d, s, SCM_FRAME_EVENT, 0, n, NULL, 0);
		json_object_put(n);
	}
	e = scm_error_wrap(e, e ? e->code : SCM_E_INTERNAL, WHERE,
			   "restart of service '%s' refused; its provider (pid %d) goes on", s->name, s->pid);
	log_error_chain(LOG_WARNING, e, "service restart of '%s'", s->name);
	fail_request(d, ho, e);
	ho_free(d, s);
	serve_again(d, s);
}

void svc_restart_cancel(struct scmd *d, struct service *s, const char *why)
{
	struct svc_handover *ho = s->ho;
	if (!ho)
		return;
	fail_request(d, ho, scm_error_new(SCM_E_REVOKED, WHERE, "restart of service '%s' given up: %s", s->name, why));
	ho_free(d, s);
	if (s->state == P_HANDOVER)
		s->state = P_READY;
}

/* The grant a channel was made with, marked as handed over (service-recover.c too). */
json_object *handover_grant(struct service *s, struct channel *ch)
{
	json_object *g = NULL;
	if (ch->grant_json)
		g = json_tokener_parse(ch->grant_json);
	if (!json_object_is_type(g, json_type_object)) {
		json_object_put(g);
		g = json_object_new_object();
	}
	json_object_object_add(g, "op", json_object_new_string("channel"));
	json_object_object_add(g, "channel", json_object_new_int64((int64_t)ch->id));
	json_object_object_add(g, "service", json_object_new_string(s->name));
	json_object_object_add(g, "caller", json_object_new_string(ch->ep_name));
	json_object_object_add(g, "uid", json_object_new_int64(ch->cred.uid));
	json_object_object_add(g, "gid", json_object_new_int64(ch->cred.gid));
	json_object_object_add(g, "pid", json_object_new_int64(ch->cred.pid));
	json_object_object_add(g, "handover", json_object_new_boolean(true));
	return g;
}

/* The new process restored the state: it becomes the provider. */
static void took_over(struct scmd *d, struct service *s)
{
	struct svc_handover *ho = s->ho;
	pid_t old = s->pid;
	/* the old control socket closing is the old process' cue to exit */
	watch_del(d, &s->ctl);
	safe_close(s->ctl.fd);
	scm_outq_clear(&s->ctl_q);
	if (ho->ctr) {
		/* the old container goes when its provider exits */
		scmd_ctr_let_go(d, s->container_name, false);
		free(s->container_name);
		s->container_name = TAKE_PTR(ho->ctr);
	} else
		old_providers_add(d, old);
	watch_del(d, &ho->new_ctl);
	s->ctl.fd = ho->new_ctl.fd;
	ho->new_ctl.fd = -1;
	s->ctl_q = ho->new_q; /* channels it may not have taken in yet */
	ho->new_q = (struct scm_outq){ 0 };
	watch_add(d, &s->ctl, s->ctl_q.frames ? EPOLLIN | EPOLLOUT : EPOLLIN);
	s->pid = ho->new_pid;
	ho->new_pid = 0;
	svc_recover_forget(s); /* the old process' checkpoint */
	size_t n = ho->channels;
	uint64_t now = now_usec();
	s->n_restarts++;
	s->started_at = now;
	uint64_t switch_us = ho->quiet_us && now > ho->quiet_us ? now - ho->quiet_us : 0;
	log_info("service '%s' restarted with its channels: pid %d -> %d, %zu channels, switch %llu us", s->name,
		 old, s->pid, n, (unsigned long long)switch_us);
	audit_event(d->audit, "service-restart", "\"service\":\"%s\",\"old_pid\":%d,\"pid\":%d,\"channels\":%zu",
		    s->name, old, s->pid, n);
	if (ho->conn) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "name", json_object_new_string(s->name));
		json_object_object_add(r, "old_pid", json_object_new_int64(old));
		json_object_object_add(r, "pid", json_object_new_int64(s->pid));
		json_object_object_add(r, "channels", json_object_new_int64((int64_t)n));
		json_object_object_add(r, "switch_us", json_object_new_int64((int64_t)switch_us));
		json_object_object_add(r, "total_us", json_object_new_int64((int64_t)(now - ho->t_start)));
		/* CLOCK_MONOTONIC: a client can place its own rounds against them */
		json_object_object_add(r, "quiet_at_us", json_object_new_int64((int64_t)ho->quiet_us));
		json_object_object_add(r, "ready_at_us", json_object_new_int64((int64_t)now));
		conn_send(d, ho->conn, SCM_FRAME_REPLY, ho->call_id, r, NULL, 0);
		json_object_put(r);
	}
	ho_free(d, s);
	serve_again(d, s);
}

/* The new process is loaded and waits for a state: ask the old one. */
static void ask_old(struct scmd *d, struct service *s)
{
	struct svc_handover *ho = s->ho;
	if (++next_ctl_call == 0)
		next_ctl_call = 1;
	ho->ctl_call = next_ctl_call;
	json_object *body = json_object_new_object();
	json_object_object_add(body, "op", json_object_new_string("handover"));
	size_t len = 0;
	const char *t = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	int r = scm_outq_send(s->ctl.fd, &s->ctl_q, SCM_FRAME_CALL, 0, ho->ctl_call, 0, t, len, NULL, 0, NULL, 0);
	json_object_put(body);
	if (r == 1)
		watch_mod(d, &s->ctl, EPOLLIN | EPOLLOUT);
	if (r < 0) {
		give_up(d, s, scm_error_new(SCM_E_PROVIDER_GONE, WHERE, "the provider cannot be reached: %s",
					    strerror(-r)));
		return;
	}
	ho->phase = HO_QUIESCE;
	s->state = P_HANDOVER;
	timer_arm(&s->timer, QUIESCE_MS);
}

static const char *op_of(scm_message *m)
{
	json_object *op;
	if (m->json && json_object_object_get_ex(m->json, "op", &op) && json_object_is_type(op, json_type_string))
		return json_object_get_string(op);
	return "";
}

static void new_ctl_io(struct scmd *d, struct watch *w, uint32_t events)
{
	struct svc_handover *ho = (struct svc_handover *)((char *)w - offsetof(struct svc_handover, new_ctl));
	struct service *s = ho->s;
	if (events & EPOLLOUT) {
		int r = scm_outq_flush(w->fd, &ho->new_q);
		if (r == 0)
			watch_mod(d, w, EPOLLIN);
		else if (r != -EAGAIN)
			events |= EPOLLHUP; /* read below sees the end */
	}
	scm_message *m = NULL;
	scm_error *e = NULL;
	int r = scm_wire_recv(w->fd, MSG_DONTWAIT, &m, &e);
	if (r == -EAGAIN)
		return;
	if (r != 0) {
		give_up(d, s, scm_error_wrap(e, SCM_E_PROVIDER_GONE, WHERE,
					     "the new provider (pid %d) closed its control socket before it took over",
					     ho->new_pid));
		return;
	}
	const char *op = op_of(m);
	json_object *v;
	if (strcmp(op, "handover.refused") == 0) {
		e = scm_error_from_json(m->json);
		give_up(d, s, scm_error_wrap(e, e ? e->code : SCM_E_INVALID, WHERE,
					     "the new provider (pid %d) refused the state", ho->new_pid));
	} else if (strcmp(op, "handover.waiting") == 0 && ho->phase == HO_SPAWN)
		ask_old(d, s);
	else if (strcmp(op, "ready") == 0 && ho->phase == HO_RESTORE &&
		 json_object_object_get_ex(m->json, "restored", &v) && json_object_get_boolean(v))
		took_over(d, s);
	else if (strcmp(op, "ready") == 0)
		give_up(d, s, scm_error_new(SCM_E_INVALID, WHERE,
					    "the new provider (pid %d) said ready without taking a state: it does not "
					    "implement the handover (libscm's scm_provider_handover)",
					    ho->new_pid));
	scm_message_free(m);
}

void svc_restart_request(struct scmd *d, struct conn *c, uint32_t call_id, json_object *args)
{
	json_object *v;
	const char *name = NULL, *exe = NULL;
	if (json_object_object_get_ex(args, "name", &v) && json_object_is_type(v, json_type_string))
		name = json_object_get_string(v);
	if (json_object_object_get_ex(args, "exec", &v)) {
		exe = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
		if (!exe || exe[0] != '/' || access(exe, X_OK) != 0) {
			conn_reply_fail(d, c, call_id, SCM_E_INVALID, "/exec: %s%s%s",
					exe ? exe : "expected the absolute path of a binary", exe ? ": " : "",
					exe ? (exe[0] != '/' ? "not an absolute path" : strerror(errno)) : "");
			return;
		}
	}
	struct service *s = name ? service_find(d, name) : NULL;
	if (!s || s->unregistering) {
		conn_reply_fail(d, c, call_id, SCM_E_NO_SERVICE, "no service '%s' is registered", name ? name : "");
		return;
	}
	if (s->ho || d->restart) {
		conn_reply_fail(d, c, call_id, SCM_E_BUSY, "%s", s->ho ? "a restart of this service is on its way"
									: "scmd itself is restarting");
		return;
	}
	if (s->state != P_READY) {
		conn_reply_fail(d, c, call_id, SCM_E_BUSY,
				"service '%s' has no provider serving (it is %s): nothing to restart; the next "
				"connect starts one",
				s->name, s->state == P_STOPPED ? "stopped" : "starting, stopping or backing off");
		return;
	}
	_cleanup_free_ char *prog = exe ? strdup(exe) : scmd_libexec_path(s->exec[0]);
	pid_t pid = -1;
	int ctl = -1;
	char *ctr = NULL;
	scm_error *e = NULL;
	/* in a container: its control connection comes later, through the
	 * container's endpoint (svc_restart_connected) */
	int r = !prog		  ? scm_fail(&e, -ENOMEM, "out of memory")
		: s->in_container ? provider_ctr_start(d, s, prog, true, &ctr, &pid, &e)
				  : provider_spawn(d, s, prog, true, &pid, &ctl, &e);
	if (pid > 0 && r != 0 && !ctr) {
		old_providers_add(d, pid);
		safe_close(ctl);
	}
	struct svc_handover *ho = r == 0 ? calloc(1, sizeof(*ho)) : NULL;
	if (!ho) {
		if (r == 0 && ctr) {
			scmd_ctr_let_go(d, ctr, true);
			free(ctr);
			e = scm_error_new(-ENOMEM, WHERE, "out of memory");
		} else if (r == 0) {
			kill(pid, SIGKILL);
			old_providers_add(d, pid);
			close(ctl);
			e = scm_error_new(-ENOMEM, WHERE, "out of memory");
		}
		e = scm_error_wrap(e, e ? e->code : SCM_E_INTERNAL, WHERE,
				   "restart of service '%s' refused; its provider (pid %d) goes on", s->name, s->pid);
		conn_send_error(d, c, call_id, e);
		scm_error_free(e);
		return;
	}
	*ho = (struct svc_handover){ .s = s, .conn = c, .call_id = call_id, .phase = HO_SPAWN, .new_pid = pid,
				     .new_ctl = { ctl, new_ctl_io }, .ctr = ctr, .t_start = now_usec() };
	s->ho = ho;
	if (ctl >= 0)
		watch_add(d, &ho->new_ctl, EPOLLIN);
	timer_arm(&s->timer, s->timeout_ms); /* the old one serves on meanwhile */
	log_info("restarting service '%s' (pid %d) as pid %d%s%s%s%s", s->name, s->pid, pid, ctr ? " in container " : "",
		 ctr ? ctr : "", exe ? ", " : "", exe ? exe : "");
}

/* The old process answered: its state (for the new one) or a refusal. */
static void quiesced(struct scmd *d, struct service *s, scm_message *m)
{
	struct svc_handover *ho = s->ho;
	if (m->type == SCM_FRAME_ERROR) {
		give_up(d, s, scm_message_error(m));
		return;
	}
	json_object *v;
	if (json_object_object_get_ex(m->json, "quiet_us", &v))
		ho->quiet_us = (uint64_t)json_object_get_int64(v);
	int64_t said = json_object_object_get_ex(m->json, "fds", &v) ? json_object_get_int64(v) : 0;
	if (ho->fds_over || said != (int64_t)ho->n_fds) {
		give_up(d, s, scm_error_new(SCM_E_PROTOCOL, WHERE,
					    "the provider's state names %lld fds, it sent %s%zu (at most %u are taken)",
					    (long long)said, ho->fds_over ? "more than " : "", ho->n_fds,
					    SCM_HANDOVER_FDS_MAX));
		return;
	}
	int fd = scm_message_steal_fd(m, 0);
	if (fd < 0) {
		give_up(d, s, scm_error_new(SCM_E_PROTOCOL, WHERE, "the provider handed over no state"));
		return;
	}
	json_object *st = json_object_new_object();
	json_object_object_add(st, "op", json_object_new_string("handover.state"));
	json_object_object_add(st, "fds", json_object_new_int64((int64_t)ho->n_fds));
	int r = scm_wire_send_json(ho->new_ctl.fd, MSG_DONTWAIT | MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, st, NULL,
				   0, &fd, 1);
	json_object_put(st);
	close(fd);
	if (r < 0) {
		give_up(d, s, scm_error_new(r, WHERE, "passing the state to the new provider (pid %d): %s",
					    ho->new_pid, strerror(-r)));
		return;
	}
	/* its fds right behind it, before the channels: the new process
	 * restores (and takes them) before it reads a channel */
	for (size_t i = 0; i < ho->n_fds; i += SCM_FDS_MAX) {
		size_t k = ho->n_fds - i < SCM_FDS_MAX ? ho->n_fds - i : SCM_FDS_MAX;
		static const char ev[] = "{\"op\":\"handover.fds\"}";
		r = scm_outq_send(ho->new_ctl.fd, &ho->new_q, SCM_FRAME_EVENT, 0, 0, 0, ev, sizeof ev - 1, NULL, 0,
				  ho->fds + i, k);
		if (r < 0) {
			give_up(d, s, scm_error_new(r, WHERE, "passing the state's fds to the new provider (pid %d): %s",
						    ho->new_pid, strerror(-r)));
			return;
		}
	}
	for (size_t i = 0; i < ho->n_fds; i++) /* the queue has its own (or they left) */
		safe_close(ho->fds[i]);
	ho->n_fds = 0;
	/* The channels right behind the state: the new process takes them in
	 * as soon as it said ready, without waiting for scmd to hear it. One
	 * that refuses never reads them; they close with its socket, and the
	 * old process still has them. */
	struct list *p, *t;
	list_for_each_safe(p, t, &s->channels)
	{
		struct channel *ch = list_entry(p, struct channel, svc_node);
		json_object *g = handover_grant(s, ch);
		size_t len = 0;
		const char *txt = json_object_to_json_string_length(g, JSON_C_TO_STRING_PLAIN, &len);
		/* unbounded: the channels are bounded by the endpoints' quotas */
		r = scm_outq_send(ho->new_ctl.fd, &ho->new_q, SCM_FRAME_CALL, SCM_FLAG_NO_REPLY, 0, 1, txt, len,
				  NULL, 0, &ch->w.fd, 1);
		json_object_put(g);
		if (r < 0) {
			give_up(d, s, scm_error_new(r, WHERE, "handing the channels to the new provider (pid %d): %s",
						    ho->new_pid, strerror(-r)));
			return;
		}
		ho->channels++;
	}
	if (ho->new_q.frames)
		watch_mod(d, &ho->new_ctl, EPOLLIN | EPOLLOUT);
	ho->phase = HO_RESTORE;
	timer_arm(&s->timer, s->timeout_ms);
}

/* A "handover.fds" event of the old process, before its reply: its fds
 * are kept for the new process, up to the quota (past it they are closed
 * and the reply is refused). */
static void take_fds(struct svc_handover *ho, scm_message *m)
{
	for (size_t i = 0; i < m->n_fds; i++) {
		int fd = scm_message_steal_fd(m, i);
		int *n = ho->n_fds < SCM_HANDOVER_FDS_MAX ? realloc(ho->fds, (ho->n_fds + 1) * sizeof(int)) : NULL;
		if (!n) {
			safe_close(fd);
			ho->fds_over = true;
			continue;
		}
		ho->fds = n;
		ho->fds[ho->n_fds++] = fd;
	}
}

bool svc_restart_frame(struct scmd *d, struct service *s, scm_message *m)
{
	struct svc_handover *ho = s->ho;
	if (ho->phase == HO_QUIESCE && m->type == SCM_FRAME_EVENT && strcmp(op_of(m), "handover.fds") == 0) {
		take_fds(ho, m);
		return true;
	}
	if (ho->phase == HO_QUIESCE && (m->type == SCM_FRAME_REPLY || m->type == SCM_FRAME_ERROR) &&
	    m->call_id == ho->ctl_call) {
		quiesced(d, s, m);
		return true;
	}
	return false;
}

void svc_restart_timeout(struct scmd *d, struct service *s)
{
	/* A "ready" may wait in the socket behind the timer's event: once the
	 * new process said it, it may be serving, and must not be killed. */
	if (s->ho->phase == HO_RESTORE)
		new_ctl_io(d, &s->ho->new_ctl, EPOLLIN);
	struct svc_handover *ho = s->ho;
	if (!ho)
		return; /* it took over after all */
	if (ho->phase == HO_QUIESCE)
		give_up(d, s, scm_error_new(SCM_E_TIMEOUT, WHERE,
					    "the provider did not answer its calls in progress within %d ms", QUIESCE_MS));
	else
		give_up(d, s, scm_error_new(SCM_E_TIMEOUT, WHERE,
					    "the new provider (pid %d) did not %s within %u ms (the manifest's timeout_ms)",
					    ho->new_pid, ho->phase == HO_SPAWN ? "start" : "take the state",
					    s->timeout_ms));
}

static void describe(int status, char *how, size_t n)
{
	if (WIFEXITED(status))
		snprintf(how, n, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, n, "was killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The old provider (s->pid) ended during the handover: an ordinary end. */
bool svc_restart_reaped(struct scmd *d, struct service *s, pid_t pid, int status)
{
	char how[64];
	describe(status, how, sizeof how);
	fail_request(d, s->ho, scm_error_new(SCM_E_PROVIDER_GONE, WHERE,
					     "the provider of '%s' (pid %d) %s during the restart", s->name, pid, how));
	ho_free(d, s);
	s->state = P_READY;
	return false;
}

void svc_restart_reap(struct scmd *d)
{
	for (size_t i = 0; i < d->n_old_providers;) {
		int status;
		if (waitpid(d->old_providers[i], &status, WNOHANG) != 0) {
			d->old_providers[i] = d->old_providers[--d->n_old_providers];
			continue;
		}
		i++;
	}
	struct list *p, *t;
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		int status;
		/* (a container is reaped by the runtime: svc_restart_ctr_ended) */
		if (!s->ho || s->ho->ctr || s->ho->new_pid <= 0 ||
		    waitpid(s->ho->new_pid, &status, WNOHANG) != s->ho->new_pid)
			continue;
		pid_t pid = s->ho->new_pid;
		/* A "ready" may wait in its socket, as at the timeout: once the
		 * new process said it, it took the channels and may have
		 * written (a disk), so the old one must not resume. Then this
		 * is the end of the provider, with its channels. */
		s->ho->new_reaped = true;
		if (s->ho->phase == HO_RESTORE)
			new_ctl_io(d, &s->ho->new_ctl, EPOLLIN);
		if (!s->ho) {
			if (s->pid == pid)
				service_reap(d, pid, status);
			continue;
		}
		char how[64];
		describe(status, how, sizeof how);
		s->ho->new_pid = 0;
		give_up(d, s, scm_error_new(SCM_E_PROVIDER_GONE, WHERE,
					    "the new provider (pid %d) %s before it took over (see %s/logs/%s.log)", pid,
					    how, d->runtime_dir, s->name));
	}
}

bool svc_restart_connected(struct scmd *d, struct service *s, const char *ep_name, int fd)
{
	struct svc_handover *ho = s->ho;
	if (!ho->ctr || strcmp(ep_name, ho->ctr) != 0)
		return false;
	if (ho->new_ctl.fd >= 0 || ho->phase != HO_SPAWN) {
		close(fd); /* one control connection per container */
		return true;
	}
	ho->new_ctl.fd = fd;
	if (watch_add(d, &ho->new_ctl, EPOLLIN) < 0) {
		int r = -errno;
		ho->new_ctl.fd = -1;
		close(fd);
		give_up(d, s, scm_error_new(r, WHERE, "epoll: %s", strerror(-r)));
	}
	return true;
}

bool svc_restart_ctr_ended(struct scmd *d, struct service *s, const char *name, const scm_error *e, int status)
{
	struct svc_handover *ho = s->ho;
	if (!ho->ctr || strcmp(name, ho->ctr) != 0)
		return false;
	pid_t pid = ho->new_pid;
	ho->new_pid = 0;
	if (e) {
		give_up(d, s, scm_error_wrap(scm_error_copy(e), e->code, WHERE,
					     "the new provider's container %s did not start", name));
		return true;
	}
	char how[64], tail[LOG_TAIL + 1];
	describe(status, how, sizeof how);
	provider_ctr_log_tail(d, name, tail, sizeof tail); /* its record and log go with it */
	give_up(d, s, scm_error_new(SCM_E_PROVIDER_GONE, WHERE,
				    "the new provider (pid %d, container %s) %s before it took over%s%s", pid, name,
				    how, tail[0] ? "; its last output: " : "", tail));
	return true;
}
