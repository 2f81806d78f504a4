/* bridge-provider: host D-Bus services for containers (stubs/idl/dbus.json,
 * docs/dbus.md "The D-Bus bridge").
 *
 * A container asks scmd for the "dbus" service like any other; scmd hands
 * the channel over with a grant carrying the caller's effective dbus rules
 * (policy/dbus.c). Each dbus.call is decided by those rules before any
 * byte goes to a bus (rules.c), its arguments are typed by the signature
 * (marshal.c), and only then is it sent, on a bus connection of the
 * channel's own: one connection per channel and bus, opened on the first
 * call, so the service sees each container as a separate peer and a reply
 * or signal meant for one never reaches another. Who the caller is comes
 * from the grant (the container's endpoint, as scmd saw it), never from
 * the call.
 *
 * The bridge owns no name, adds no match rule and exports no object: a
 * bus peer that calls the bridge's connection gets libdbus's UnknownMethod
 * error, and whatever else arrives on it besides replies is dropped at
 * dispatch; nothing reaches the container. Signals are not forwarded yet.
 *
 * libdbus runs on the provider's own loop (dbusloop.c): a call is deferred,
 * sent with a pending-call callback, and answered from that callback when
 * the reply (or an error, or the timeout) comes; nothing waits on the bus,
 * and calls on one channel reach the bus in order. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbus/dbus.h>
#include <json-c/json.h>

#include "bridge.h"
#include "dbusloop.h"
#include "marshal.h"
#include "rules.h"
#include "scm/dbus-provider.h"
#include "scm/macro.h"

#define CALL_TIMEOUT_MS 25000
#define DEFER_MAX 16

static void dbus_message_unrefp(DBusMessage **m)
{
	if (*m)
		dbus_message_unref(*m);
}

typedef struct job {
	scm_call *call;
	bchan *ch;
	bool done;
} job;

void bchan_unref(bchan *c)
{
	if (!c || --c->refs > 0)
		return;
	sig_free(c);
	for (size_t i = 0; i < c->n_conns; i++) {
		dloop_drop(c->conns[i].conn);
		free(c->conns[i].bus);
	}
	br_rules_done(&c->rules);
	free(c->caller);
	free(c);
}

static bchan *bchan_of(scm_call *call)
{
	bchan *c = scm_call_channel_data(call);
	if (c)
		return c;
	const scm_grant *g = scm_call_grant(call);
	json_object *rules = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->refs = 1;
	c->caller = strdup(g->caller ? g->caller : "?");
	if (!g->rules || !json_object_object_get_ex(g->rules, "dbus", &rules))
		c->rules_why = "the grant carries no dbus rules (is the interface's IDL current?)";
	else if (br_rules_parse(rules, &c->rules, &c->rules_why) == -ENOMEM)
		c->rules_why = "out of memory";
	scm_call_set_channel_data(call, c);
	return c;
}

static void on_close(const scm_grant *g, void *chdata, void *ud)
{
	bchan_unref(chdata);
}

/* "session" and "system" as libdbus finds them, else the address. */
static const char *bus_address(const char *bus)
{
	const char *a;
	if (strcmp(bus, "session") == 0)
		return getenv("DBUS_SESSION_BUS_ADDRESS");
	if (strcmp(bus, "system") == 0)
		return (a = getenv("DBUS_SYSTEM_BUS_ADDRESS")) ? a : "unix:path=/var/run/dbus/system_bus_socket";
	return bus;
}

/* The channel's connection to bus, opened on first use. The Hello the bus
 * wants first is sent, not waited for: the call queued behind it on the
 * same connection reaches the bus after it. */
DBusConnection *bchan_conn(bchan *c, const char *bus, char *why, size_t whysz)
{
	const char *addr = bus_address(bus);
	DBusConnection *conn;
	DBusError e;
	for (size_t i = 0; i < c->n_conns; i++) {
		if (strcmp(c->conns[i].bus, bus) != 0)
			continue;
		if (dbus_connection_get_is_connected(c->conns[i].conn))
			return c->conns[i].conn;
		/* the bus went away: forget it, connect again (its
		 * subscriptions are gone with it) */
		sig_conn_gone(c, c->conns[i].conn);
		dloop_drop(c->conns[i].conn);
		free(c->conns[i].bus);
		c->conns[i] = c->conns[--c->n_conns];
		break;
	}
	if (c->n_conns == BUSES_MAX) {
		snprintf(why, whysz, "more than %d buses on one channel", BUSES_MAX);
		return NULL;
	}
	if (!addr) {
		snprintf(why, whysz, "no %s bus: DBUS_SESSION_BUS_ADDRESS is not set in the bridge's environment", bus);
		return NULL;
	}
	dbus_error_init(&e);
	if (!(conn = dbus_connection_open_private(addr, &e))) {
		snprintf(why, whysz, "cannot reach the %s bus: %s", bus, e.message ? e.message : "unknown error");
		dbus_error_free(&e);
		return NULL;
	}
	dbus_connection_set_exit_on_disconnect(conn, FALSE);
	/* what other peers may queue on this connection */
	dbus_connection_set_max_received_size(conn, 1 << 20);
	if (dloop_add(conn) < 0) {
		dbus_connection_close(conn);
		dbus_connection_unref(conn);
		snprintf(why, whysz, "out of memory, or too many bus connections");
		return NULL;
	}
	_cleanup_(dbus_message_unrefp) DBusMessage *hello =
		dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS, "Hello");
	char *name = strdup(bus);
	if (!hello || !name || !dbus_connection_send(conn, hello, NULL)) {
		free(name);
		dloop_drop(conn); /* listed with the loop now: it closes it */
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	c->conns[c->n_conns].bus = name;
	c->conns[c->n_conns].filtered = false;
	c->conns[c->n_conns++].conn = conn;
	return conn;
}

const char *bchan_bus_of(bchan *c, DBusConnection *conn)
{
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].conn == conn)
			return c->conns[i].bus;
	return NULL;
}

/* The reply came (or an error, the timeout, a disconnect): answer. */
static void on_reply(DBusPendingCall *pc, void *data)
{
	job *j = data;
	char why[512];
	DBusError e;
	if (j->done)
		return;
	j->done = true;
	DBusMessage *r = dbus_pending_call_steal_reply(pc);
	dbus_error_init(&e);
	if (!r) {
		scm_call_reply_error(j->call, SCM_DBUS_E_BUS, "no reply");
	} else if (dbus_set_error_from_message(&e, r)) {
		bool remote = strcmp(e.name, DBUS_ERROR_NO_REPLY) && strcmp(e.name, DBUS_ERROR_DISCONNECTED);
		scm_call_reply_error(j->call, remote ? SCM_DBUS_E_REMOTE : SCM_DBUS_E_BUS, "%s: %s", e.name,
				     e.message ? e.message : "");
		dbus_error_free(&e);
	} else {
		json_object *body = br_unmarshal(r, why, sizeof(why));
		if (body)
			scm_dbus_call_reply(j->call, dbus_message_get_signature(r), body);
		else
			scm_call_reply_error(j->call, SCM_DBUS_E_BADMESSAGE, "%s", why);
		json_object_put(body);
	}
	if (r)
		dbus_message_unref(r);
	/* the connection may be dropped by this unref: dloop_drop only queues
	 * it, and the loop closes it after this dispatch */
	bchan_unref(j->ch);
}

static void job_free(void *data)
{
	free(data);
}

static int do_call(scm_call *call, const char *bus, const char *dest, const char *path, const char *iface,
		   const char *method, const char *sig, json_object *args, void *ud)
{
	bchan *c = bchan_of(call);
	char why[768];
	if (!c)
		return -ENOMEM;
	if (c->rules_why)
		return scm_call_reply_error(call, SCM_E_DENIED, "dbus rules of the grant: %s", c->rules_why);
	/* names first: a rule only ever matches valid ones, but the refusal
	 * should say what is wrong with the call */
	if (!dbus_validate_bus_name(dest, NULL) || dest[0] == ':')
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "destination \"%.80s\" is not a well-known bus name", dest);
	if (!dbus_validate_path(path, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "path \"%.80s\" is not an object path", path);
	if (!dbus_validate_interface(iface, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "interface \"%.80s\" is not an interface name", iface);
	if (!dbus_validate_member(method, NULL))
		return scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "method \"%.80s\" is not a member name", method);
	br_target t = { bus, dest, path, iface, method };
	if (!br_decide(&c->rules, &t, args, why, sizeof(why))) {
		fprintf(stderr, "dbus-bridge: %s: denied %s\n", c->caller, why);
		return scm_call_reply_error(call, SCM_E_DENIED, "%s", why);
	}
	_cleanup_(dbus_message_unrefp) DBusMessage *m = dbus_message_new_method_call(dest, path, iface, method);
	if (!m)
		return -ENOMEM;
	int r = br_marshal(m, sig, args, why, sizeof(why));
	if (r)
		return r == -EINVAL ? scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "%s.%s: %s", iface, method, why)
				    : r;
	DBusConnection *conn = bchan_conn(c, bus, why, sizeof(why));
	if (!conn)
		return scm_call_reply_error(call, SCM_DBUS_E_BUS, "%s", why);
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (!(j->call = scm_call_defer(call))) {
		free(j); /* defer() answered BUSY itself */
		return 0;
	}
	DBusPendingCall *pc = NULL;
	if (!dbus_connection_send_with_reply(conn, m, &pc, CALL_TIMEOUT_MS) || !pc) {
		scm_call_reply_error(j->call, SCM_DBUS_E_BUS, "the %s bus connection is closed", bus);
		free(j);
		return 0;
	}
	j->ch = c;
	c->refs++;
	if (!dbus_pending_call_set_notify(pc, on_reply, j, job_free)) {
		scm_call_reply_error(j->call, -ENOMEM, "out of memory");
		dbus_pending_call_cancel(pc);
		bchan_unref(c);
		free(j);
	} else if (dbus_pending_call_get_completed(pc)) {
		on_reply(pc, j); /* completed before the notify was set */
	}
	dbus_pending_call_unref(pc); /* the connection keeps it until it completes */
	return 0;
}

static int do_subscribe(scm_call *call, const char *bus, const char *sender, const char *path, const char *iface,
			const char *member, void *ud)
{
	bchan *c = bchan_of(call);
	if (!c)
		return -ENOMEM;
	if (c->rules_why)
		return scm_call_reply_error(call, SCM_E_DENIED, "dbus rules of the grant: %s", c->rules_why);
	return sig_subscribe(call, c, bus, sender, path, iface, member);
}

static int do_signals(scm_call *call, uint64_t timeout_ms, void *ud)
{
	bchan *c = bchan_of(call);
	return c ? sig_signals(call, c, timeout_ms) : -ENOMEM;
}

static int do_unsubscribe(scm_call *call, uint64_t subscription, void *ud)
{
	bchan *c = bchan_of(call);
	return c ? sig_unsubscribe(call, c, subscription) : -ENOMEM;
}

static const scm_dbus_handlers handlers = { .call = do_call, .subscribe = do_subscribe, .signals = do_signals,
					    .unsubscribe = do_unsubscribe };

int main(void)
{
	scm_dbus_skeleton sk = { &handlers, NULL };
	scm_provider *p = NULL;
	scm_error *err = NULL;
	if (scm_dbus_provider_new(&sk, &p, &err) != 0) {
		fprintf(stderr, "dbus-bridge: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	scm_provider_set_defer_max(p, DEFER_MAX);
	scm_provider_on_close(p, on_close);
	int r = dloop_run(p, &err);
	if (r < 0) {
		fprintf(stderr, "dbus-bridge: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
	}
	scm_provider_free(p);
	return r < 0 ? 1 : 0;
}
