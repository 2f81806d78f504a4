/* signals.c: signals for containers, filtered by the same dbus rules as
 * calls (docs/dbus.md, "Signals").
 *
 * A subscription names bus, sender (a well-known name), object path,
 * interface and member; it is refused unless a rule of the caller's
 * profiles allows that member there (rules name signals in "methods").
 * The bridge then adds one match rule for it on the channel's own bus
 * connection, so the bus sends only those signals, and follows the
 * sender's owner (GetNameOwner, then NameOwnerChanged for that name
 * only): a signal counts only when its unique sender is the name's owner
 * now. Each signal that arrives is decided by the rules again, arguments
 * included, before it is queued; what fails is dropped, and nothing else
 * on the connection (a signal no subscription names, a call to the
 * bridge) reaches the container. The container takes the queue with the
 * signals method, which waits (deferred, on the loop's timer) while it is
 * empty. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bridge.h"
#include "dbusloop.h"
#include "marshal.h"
#include "scm/dbus-provider.h"

#define SUBS_MAX 32
#define QUEUE_MAX 256
#define WAIT_MAX_MS 20000

struct sub {
	uint64_t id;
	char *bus, *sender, *path, *iface, *member;
	char *owner; /* the sender's unique name now; "" while none */
};

struct br_sigs {
	struct sub subs[SUBS_MAX];
	size_t n_subs;
	uint64_t next_id;
	json_object *queue;
	uint64_t dropped;
	scm_call *waiting; /* a signals call, deferred */
	unsigned timer;
};

/* a subscribe waiting for GetNameOwner's answer */
struct pending_sub {
	scm_call *call;
	bchan *ch;
	uint64_t id;
};

static void sub_done(struct sub *s)
{
	free(s->bus);
	free(s->sender);
	free(s->path);
	free(s->iface);
	free(s->member);
	free(s->owner);
}

static struct br_sigs *sigs_of(bchan *c)
{
	if (!c->sigs && (c->sigs = calloc(1, sizeof(*c->sigs)))) {
		c->sigs->next_id = 1;
		if (!(c->sigs->queue = json_object_new_array())) {
			free(c->sigs);
			c->sigs = NULL;
		}
	}
	return c->sigs;
}

/* Answers the waiting signals call with the queue; drops its reference. */
static void answer(bchan *c)
{
	struct br_sigs *g = c->sigs;
	scm_call *call = g->waiting;
	json_object *q = g->queue;
	g->waiting = NULL;
	dloop_timer_cancel(g->timer);
	g->timer = 0;
	g->queue = json_object_new_array();
	scm_dbus_signals_reply(call, q, g->dropped);
	g->dropped = 0;
	json_object_put(q);
	bchan_unref(c);
}

static void on_wait_timeout(void *data)
{
	bchan *c = data;
	c->sigs->timer = 0;
	answer(c);
}

static void owner_changed(struct br_sigs *g, const char *bus, DBusMessage *m)
{
	const char *name = NULL, *old = NULL, *new = NULL;
	if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old, DBUS_TYPE_STRING, &new,
				   DBUS_TYPE_INVALID))
		return;
	for (size_t i = 0; i < g->n_subs; i++) {
		struct sub *s = &g->subs[i];
		char *o;
		if (strcmp(s->bus, bus) || strcmp(s->sender, name) || !(o = strdup(new)))
			continue;
		free(s->owner);
		s->owner = o;
	}
}

static DBusHandlerResult sig_filter(DBusConnection *conn, DBusMessage *m, void *data)
{
	bchan *c = data;
	struct br_sigs *g = c->sigs;
	const char *bus = bchan_bus_of(c, conn), *sender = dbus_message_get_sender(m);
	const char *path = dbus_message_get_path(m), *iface = dbus_message_get_interface(m);
	const char *member = dbus_message_get_member(m);
	char why[768];
	if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_SIGNAL)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED; /* calls: libdbus answers UnknownMethod */
	if (!g || !bus || !sender || !path || !iface || !member)
		return DBUS_HANDLER_RESULT_HANDLED;
	if (strcmp(sender, DBUS_SERVICE_DBUS) == 0 && dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged")) {
		owner_changed(g, bus, m);
		return DBUS_HANDLER_RESULT_HANDLED;
	}
	for (size_t i = 0; i < g->n_subs; i++) {
		struct sub *s = &g->subs[i];
		if (strcmp(s->bus, bus) || !s->owner || strcmp(s->owner, sender) || strcmp(s->path, path) ||
		    strcmp(s->iface, iface) || strcmp(s->member, member))
			continue;
		json_object *body = br_unmarshal(m, why, sizeof(why));
		br_target t = { bus, s->sender, path, iface, member };
		if (!body || !br_decide(&c->rules, &t, body, why, sizeof(why))) {
			fprintf(stderr, "dbus-bridge: %s: signal dropped: %s\n", c->caller, body ? why : "unreadable body");
			json_object_put(body);
			break;
		}
		json_object *o = json_object_new_object();
		json_object_object_add(o, "subscription", json_object_new_uint64(s->id));
		json_object_object_add(o, "sender", json_object_new_string(s->sender));
		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "interface", json_object_new_string(iface));
		json_object_object_add(o, "member", json_object_new_string(member));
		json_object_object_add(o, "signature", json_object_new_string(dbus_message_get_signature(m)));
		json_object_object_add(o, "body", body);
		if (json_object_array_length(g->queue) >= QUEUE_MAX) {
			json_object_array_del_idx(g->queue, 0, 1);
			g->dropped++;
		}
		json_object_array_add(g->queue, o);
		if (g->waiting)
			answer(c); /* may free c: nothing of it is touched after */
		break;
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

static void on_owner(DBusPendingCall *pc, void *data)
{
	struct pending_sub *p = data;
	DBusMessage *r = dbus_pending_call_steal_reply(pc);
	const char *owner = "";
	if (r && dbus_message_get_type(r) == DBUS_MESSAGE_TYPE_METHOD_RETURN)
		dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &owner, DBUS_TYPE_INVALID);
	struct br_sigs *g = p->ch->sigs;
	for (size_t i = 0; g && i < g->n_subs; i++)
		if (g->subs[i].id == p->id && !g->subs[i].owner)
			g->subs[i].owner = strdup(owner);
	/* an owner that changed meanwhile came as NameOwnerChanged first */
	scm_dbus_subscribe_reply(p->call, p->id);
	if (r)
		dbus_message_unref(r);
	bchan_unref(p->ch);
	p->call = NULL;
}

/* The two match rules of a subscription: its signal, and its sender's
 * NameOwnerChanged (names and paths were validated: nothing in them
 * needs quoting). */
static void match_rules(const struct sub *s, char sig[1024], char owner[1024])
{
	snprintf(sig, 1024, "type='signal',sender='%s',path='%s',interface='%s',member='%s'", s->sender, s->path,
		 s->iface, s->member);
	snprintf(owner, 1024,
		 "type='signal',sender='" DBUS_SERVICE_DBUS "',interface='" DBUS_INTERFACE_DBUS
		 "',member='NameOwnerChanged',arg0='%s'",
		 s->sender);
}

/* AddMatch or RemoveMatch, without waiting for the answer */
static bool send_match(DBusConnection *conn, const char *op, const char *rule)
{
	DBusMessage *m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS, op);
	bool ok = m && dbus_message_append_args(m, DBUS_TYPE_STRING, &rule, DBUS_TYPE_INVALID) &&
		  dbus_connection_send(conn, m, NULL);
	if (m)
		dbus_message_unref(m);
	return ok;
}

int sig_subscribe(scm_call *call, bchan *c, const char *bus, const char *sender, const char *path,
		  const char *iface, const char *member)
{
	char why[768], rule[1024], orule[1024];
	if (!dbus_validate_bus_name(sender, NULL) || sender[0] == ':')
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "sender \"%.80s\" is not a well-known bus name", sender);
	if (!dbus_validate_path(path, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "path \"%.80s\" is not an object path", path);
	if (!dbus_validate_interface(iface, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "interface \"%.80s\" is not an interface name", iface);
	if (!dbus_validate_member(member, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "member \"%.80s\" is not a member name", member);
	br_target t = { bus, sender, path, iface, member };
	if (!br_decide_member(&c->rules, &t, why, sizeof(why))) {
		fprintf(stderr, "dbus-bridge: %s: denied subscription to %s\n", c->caller, why);
		return scm_call_reply_error(call, SCM_E_DENIED, "signal %s", why);
	}
	struct br_sigs *g = sigs_of(c);
	if (!g)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_subs; i++) {
		struct sub *s = &g->subs[i];
		if (!strcmp(s->bus, bus) && !strcmp(s->sender, sender) && !strcmp(s->path, path) &&
		    !strcmp(s->iface, iface) && !strcmp(s->member, member))
			return scm_dbus_subscribe_reply(call, s->id); /* the same one again */
	}
	if (g->n_subs == SUBS_MAX)
		return scm_call_reply_error(call, SCM_E_QUOTA, "more than %d subscriptions on one channel", SUBS_MAX);
	DBusConnection *conn = bchan_conn(c, bus, why, sizeof(why));
	if (!conn)
		return scm_call_reply_error(call, SCM_DBUS_E_BUS, "%s", why);
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].conn == conn && !c->conns[i].filtered) {
			if (!dbus_connection_add_filter(conn, sig_filter, c, NULL))
				return -ENOMEM;
			c->conns[i].filtered = true;
		}
	struct sub s = { .id = g->next_id, .bus = strdup(bus), .sender = strdup(sender), .path = strdup(path),
			 .iface = strdup(iface), .member = strdup(member) };
	if (!s.bus || !s.sender || !s.path || !s.iface || !s.member) {
		sub_done(&s);
		return -ENOMEM;
	}
	match_rules(&s, rule, orule);
	bool ok = send_match(conn, "AddMatch", rule) && send_match(conn, "AddMatch", orule);
	DBusMessage *m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS, "GetNameOwner");
	DBusPendingCall *pc = NULL;
	struct pending_sub *p = calloc(1, sizeof(*p));
	ok = ok && m && p && dbus_message_append_args(m, DBUS_TYPE_STRING, &sender, DBUS_TYPE_INVALID);
	if (ok && !(p->call = scm_call_defer(call))) {
		/* defer() answered BUSY itself */
		free(p);
		dbus_message_unref(m);
		sub_done(&s);
		return 0;
	}
	ok = ok && dbus_connection_send_with_reply(conn, m, &pc, 25000) && pc &&
	     dbus_pending_call_set_notify(pc, on_owner, p, free);
	if (m)
		dbus_message_unref(m);
	if (!ok) {
		sub_done(&s);
		if (pc) {
			dbus_pending_call_cancel(pc);
			dbus_pending_call_unref(pc);
		}
		if (p && p->call) {
			scm_call_reply_error(p->call, SCM_DBUS_E_BUS, "the %s bus connection is closed", bus);
			free(p);
			return 0;
		}
		free(p);
		return -ENOMEM;
	}
	g->subs[g->n_subs++] = s;
	g->next_id++;
	p->ch = c;
	p->id = s.id;
	c->refs++;
	if (dbus_pending_call_get_completed(pc))
		on_owner(pc, p);
	dbus_pending_call_unref(pc);
	return 0;
}

int sig_unsubscribe(scm_call *call, bchan *c, uint64_t id)
{
	struct br_sigs *g = c->sigs;
	size_t i = 0;
	while (g && i < g->n_subs && g->subs[i].id != id)
		i++;
	if (!g || i == g->n_subs)
		return scm_call_reply_error(call, SCM_E_NOT_FOUND, "no subscription %llu on this channel",
					    (unsigned long long)id);
	struct sub *s = &g->subs[i];
	char why[768], rule[1024], orule[1024];
	/* The bus stops sending them: the rules subscribe added, once each
	 * (the bus counts a rule added twice twice). A subscription lives
	 * only while its bus connection does (sig_conn_gone). */
	DBusConnection *conn = bchan_conn(c, s->bus, why, sizeof(why));
	match_rules(s, rule, orule);
	if (conn) {
		(void)send_match(conn, "RemoveMatch", rule);
		(void)send_match(conn, "RemoveMatch", orule);
	}
	/* and what came for it, not yet taken, is gone too */
	for (size_t k = json_object_array_length(g->queue); k-- > 0;) {
		json_object *v;
		if (json_object_object_get_ex(json_object_array_get_idx(g->queue, k), "subscription", &v) &&
		    json_object_get_uint64(v) == id)
			json_object_array_del_idx(g->queue, k, 1);
	}
	sub_done(s);
	g->subs[i] = g->subs[--g->n_subs];
	int r = scm_dbus_unsubscribe_reply(call);
	/* nothing can come any more: a waiting signals call ends now, as a
	 * new one would (sig_signals); answer() may free c, touched no more */
	if (!g->n_subs && g->waiting)
		answer(c);
	return r;
}

int sig_signals(scm_call *call, bchan *c, uint64_t timeout_ms)
{
	struct br_sigs *g = sigs_of(c);
	if (!g)
		return -ENOMEM;
	if (timeout_ms > WAIT_MAX_MS)
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "timeout_ms %llu is over %d",
					    (unsigned long long)timeout_ms, WAIT_MAX_MS);
	if (g->waiting)
		return scm_call_reply_error(call, SCM_E_BUSY, "a signals call is already waiting on this channel");
	if (json_object_array_length(g->queue) || timeout_ms == 0 || !g->n_subs) {
		json_object *q = g->queue;
		g->queue = json_object_new_array();
		int r = scm_dbus_signals_reply(call, q, g->dropped);
		g->dropped = 0;
		json_object_put(q);
		return r;
	}
	if (!(g->waiting = scm_call_defer(call)))
		return 0; /* defer() answered BUSY itself */
	c->refs++;
	if (!(g->timer = dloop_timer_add((long long)timeout_ms, on_wait_timeout, c)))
		answer(c); /* no timer left: answer now, empty */
	return 0;
}

void sig_conn_gone(bchan *c, DBusConnection *conn)
{
	const char *bus = bchan_bus_of(c, conn);
	struct br_sigs *g = c->sigs;
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].conn == conn && c->conns[i].filtered) {
			dbus_connection_remove_filter(conn, sig_filter, c);
			c->conns[i].filtered = false;
		}
	for (size_t i = 0; g && bus && i < g->n_subs;)
		if (strcmp(g->subs[i].bus, bus) == 0) {
			sub_done(&g->subs[i]);
			g->subs[i] = g->subs[--g->n_subs];
		} else
			i++;
}

void sig_free(bchan *c)
{
	struct br_sigs *g = c->sigs;
	for (size_t i = 0; i < c->n_conns; i++)
		sig_conn_gone(c, c->conns[i].conn);
	if (!g)
		return;
	/* a waiting call holds a reference: there is none when this runs */
	for (size_t i = 0; i < g->n_subs; i++)
		sub_done(&g->subs[i]);
	json_object_put(g->queue);
	free(g);
	c->sigs = NULL;
}
