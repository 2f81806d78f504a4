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
 * bus peer that calls the bridge's connection gets nothing, and messages
 * that arrive on it besides replies are dropped after each call. Signals
 * are not forwarded yet.
 *
 * libdbus blocks in connect and in send_with_reply_and_block, and the
 * provider's loop must not: each call is deferred and runs on a thread of
 * its own, which posts the reply back (scm_provider_post). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbus/dbus.h>
#include <json-c/json.h>

#include "marshal.h"
#include "rules.h"
#include "scm/dbus-provider.h"
#include "scm/macro.h"

#define BUSES_MAX 8
#define CALL_TIMEOUT_MS 25000
#define DEFER_MAX 16

/* One channel: its rules (parsed once) and its bus connections. Kept
 * alive by a count: the channel holds one, and so does each call in
 * flight, which may outlive the channel (a client that went away). */
typedef struct bchan {
	atomic_uint refs;
	pthread_mutex_t lock; /* conns */
	br_rules rules;
	const char *rules_why; /* when the grant's rules did not parse */
	char *caller;
	struct {
		char *bus;
		DBusConnection *conn;
	} conns[BUSES_MAX];
	size_t n_conns;
} bchan;

typedef struct job {
	scm_task task;
	scm_provider *p;
	scm_call *call;
	bchan *ch;
	char *bus;
	DBusMessage *msg;
	/* the outcome, filled by the worker */
	int code;
	char why[512];
	char *reply_sig;
	json_object *body;
} job;

static scm_provider *provider;

static void bchan_unref(bchan *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->n_conns; i++) {
		dbus_connection_close(c->conns[i].conn);
		dbus_connection_unref(c->conns[i].conn);
		free(c->conns[i].bus);
	}
	br_rules_done(&c->rules);
	pthread_mutex_destroy(&c->lock);
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
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
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

/* The channel's connection to bus, opened on first use (worker thread). */
static DBusConnection *conn_for(bchan *c, const char *bus, char *why, size_t whysz)
{
	DBusConnection *conn = NULL;
	DBusError e;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_conns; i++)
		if (strcmp(c->conns[i].bus, bus) == 0) {
			conn = c->conns[i].conn;
			goto out;
		}
	if (c->n_conns == BUSES_MAX) {
		snprintf(why, whysz, "more than %d buses on one channel", BUSES_MAX);
		goto out;
	}
	dbus_error_init(&e);
	if (strcmp(bus, "session") == 0 || strcmp(bus, "system") == 0) {
		conn = dbus_bus_get_private(strcmp(bus, "session") == 0 ? DBUS_BUS_SESSION : DBUS_BUS_SYSTEM, &e);
	} else if ((conn = dbus_connection_open_private(bus, &e)) && !dbus_bus_register(conn, &e)) {
		dbus_connection_close(conn);
		dbus_connection_unref(conn);
		conn = NULL;
	}
	if (!conn) {
		snprintf(why, whysz, "cannot reach the %s bus: %s", bus, e.message ? e.message : "unknown error");
		dbus_error_free(&e);
		goto out;
	}
	dbus_connection_set_exit_on_disconnect(conn, FALSE);
	/* what other peers may queue on this connection between calls */
	dbus_connection_set_max_received_size(conn, 1 << 20);
	c->conns[c->n_conns].bus = strdup(bus);
	c->conns[c->n_conns++].conn = conn;
out:
	pthread_mutex_unlock(&c->lock);
	return conn;
}

static void finish(scm_task *t)
{
	job *j = (job *)t;
	if (j->code)
		scm_call_reply_error(j->call, j->code, "%s", j->why);
	else
		scm_dbus_call_reply(j->call, j->reply_sig ? j->reply_sig : "", j->body);
	json_object_put(j->body);
	free(j->reply_sig);
	free(j->bus);
	if (j->msg)
		dbus_message_unref(j->msg);
	bchan_unref(j->ch);
	free(j);
}

static void *worker(void *arg)
{
	job *j = arg;
	DBusConnection *conn = conn_for(j->ch, j->bus, j->why, sizeof(j->why));
	DBusError e;
	dbus_error_init(&e);
	if (!conn) {
		j->code = SCM_DBUS_E_BUS;
	} else if (scm_call_cancelled(j->call)) {
		j->code = -ECANCELED;
		snprintf(j->why, sizeof(j->why), "cancelled");
	} else {
		DBusMessage *r = dbus_connection_send_with_reply_and_block(conn, j->msg, CALL_TIMEOUT_MS, &e);
		if (!r) {
			bool remote = e.name && strcmp(e.name, DBUS_ERROR_NO_REPLY) && strcmp(e.name, DBUS_ERROR_DISCONNECTED);
			j->code = remote ? SCM_DBUS_E_REMOTE : SCM_DBUS_E_BUS;
			snprintf(j->why, sizeof(j->why), "%s: %s", e.name ? e.name : "error", e.message ? e.message : "");
			dbus_error_free(&e);
		} else {
			const char *s = dbus_message_get_signature(r);
			if (!(j->body = br_unmarshal(r, j->why, sizeof(j->why))))
				j->code = SCM_DBUS_E_BADMESSAGE;
			else if (!(j->reply_sig = strdup(s)))
				j->code = -ENOMEM;
			dbus_message_unref(r);
		}
		/* nothing else is read from the bus: drop what peers sent */
		for (DBusMessage *m; (m = dbus_connection_pop_message(conn));)
			dbus_message_unref(m);
	}
	scm_provider_post(j->p, &j->task);
	return NULL;
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
	DBusMessage *m = dbus_message_new_method_call(dest, path, iface, method);
	if (!m)
		return -ENOMEM;
	int r = br_marshal(m, sig, args, why, sizeof(why));
	if (r) {
		dbus_message_unref(m);
		return r == -EINVAL ? scm_call_reply_error(call, SCM_DBUS_E_BADMESSAGE, "%s.%s: %s", iface, method, why)
				    : r;
	}
	job *j = calloc(1, sizeof(*j));
	scm_call *dc = j ? scm_call_defer(call) : NULL;
	if (!dc) {
		free(j);
		dbus_message_unref(m);
		return j ? 0 : -ENOMEM; /* defer() answered BUSY itself */
	}
	*j = (job){ .task.fn = finish, .p = provider, .call = dc, .ch = c, .bus = strdup(bus), .msg = m };
	atomic_fetch_add(&c->refs, 1);
	pthread_attr_t a;
	pthread_t th;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	if (!j->bus || pthread_create(&th, &a, worker, j) != 0) {
		j->code = SCM_DBUS_E_BUS;
		snprintf(j->why, sizeof(j->why), "cannot start a worker for the call");
		finish(&j->task);
	}
	pthread_attr_destroy(&a);
	return 0;
}

static const scm_dbus_handlers handlers = { .call = do_call };

int main(void)
{
	scm_dbus_skeleton sk = { &handlers, NULL };
	scm_error *err = NULL;
	if (!dbus_threads_init_default()) {
		fprintf(stderr, "dbus-bridge: libdbus threads: out of memory\n");
		return 1;
	}
	if (scm_dbus_provider_new(&sk, &provider, &err) != 0) {
		fprintf(stderr, "dbus-bridge: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	scm_provider_set_defer_max(provider, DEFER_MAX);
	scm_provider_on_close(provider, on_close);
	int r = scm_provider_run(provider, &err);
	if (r < 0) {
		fprintf(stderr, "dbus-bridge: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
	}
	/* calls still on their threads post to the provider: wait for none
	 * here; the process ends, and the kernel closes the connections */
	return r < 0 ? 1 : 0;
}
