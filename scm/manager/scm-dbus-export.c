/* scm-dbus-export: an scm service on a host bus (docs/dbus.md, "Container
 * services on the host bus"); `scmctl service export-dbus` runs it.
 *
 *   scm-dbus-export [--runtime-dir DIR] SERVICE --name BUS.NAME
 *       [--bus session|system|ADDRESS] [--path /OBJ] [--interface IFACE]
 *       [--bus-policy-dir DIR | --no-bus-policy] --caller UID|USER|*=PROFILE[,PROFILE]...
 *       [--max-calls-per-caller N] [--max-calls N] [--call-timeout SECONDS]
 *
 * The service (a provider, in a container or not) keeps its scm interface;
 * export-map.c makes it a D-Bus interface by one rule for all. Who a bus
 * caller is comes from the bus daemon (GetConnectionUnixUser: the
 * kernel's credentials of the caller's connection, never what it says),
 * and each --caller maps a uid to scm profiles: this program makes an scm
 * endpoint labelled for it with those profiles, so scmd decides and audits
 * the calls of that uid like those of any other caller. A uid no --caller
 * names is refused (default deny). Each call is decided by scmd
 * (policy.explain on that endpoint, with the call's arguments) before it
 * is sent, so a refused call never reaches the provider; the provider's
 * skeleton checks the channel's grant once more.
 *
 * The bus side: a policy snippet for the name (who may own it, who may
 * send to it) is written into the bus's policy directory and the bus told
 * to reload (ReloadConfig) before the name is requested; both are undone
 * at exit, with the endpoints.
 *
 * Calls to the provider are asynchronous: a slow one holds no other
 * caller. Each has a deadline (--call-timeout, 25 s by default), after
 * which the caller gets org.freedesktop.DBus.Error.Timeout and the call
 * leaves the counts; a caller uid has at most --max-calls-per-caller calls
 * in flight and the export --max-calls, the excess refused at once with
 * LimitsExceeded. The decision (a round trip to scmd's control socket)
 * and the bus's word on a new sender's uid are synchronous: both are
 * answered by a daemon from its own tables, never by a provider, and
 * bounded (XP_SCMD_TIMEOUT_MS, UID_LOOKUP_TIMEOUT_MS) should it hang. */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "busopen.h"
#include "export-ep.h"
#include "export-map.h"
#include "export-opts.h"
#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scm/macro.h"
#include "scmutil.h"

#define SENDERS_CACHED 64
#define UID_LOOKUP_TIMEOUT_MS 5000


/* A call in flight to the provider: answered from its channel's dispatch,
 * or by the timeout (m NULL then, until the provider answers late or the
 * channel goes). On the list in the order sent, so of deadlines. */
struct inflight {
	DBusConnection *bus;
	DBusMessage *m;
	const scm_idl_method *meth;
	struct caller *c;
	uid_t uid;
	int64_t deadline; /* ms, CLOCK_MONOTONIC */
	struct inflight *prev, *next;
};

static const char *runtime_dir = "/run/scm";
static const char *service, *bus_name, *obj_path, *iface;
static char *policy_file; /* the snippet written, to remove at exit */
static int policy_dirfd = -1;
static struct caller callers[CALLERS_MAX];
static size_t n_callers;
static scm_idl *idl;
static char *introspection;
static volatile sig_atomic_t got_term;
static struct {
	char name[64];
	uid_t uid;
} senders[SENDERS_CACHED]; /* unique names are never reused on a bus */
static unsigned senders_next;
/* the bounds (docs/dbus.md, "Bounds"): calls in flight per caller uid and
 * in all, and how long the provider may take to answer one */
static unsigned max_calls_uid = 64, max_calls = 512;
static int call_timeout_ms = SCM_CALL_TIMEOUT_DEFAULT_MS;
static struct inflight flying = { .prev = &flying, .next = &flying };
static unsigned n_flying;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int scmd(const char *op, json_object *args, json_object **ret, scm_error **ret_err)
{ /* bounded: export-ep.c */
	return xp_scmd(runtime_dir, op, args, ret, ret_err);
}

static int die(scm_error *e, const char *what)
{
	fprintf(stderr, "scm-dbus-export: %s:\n", what);
	scm_error_print(e, stderr);
	scm_error_free(e);
	return 1;
}

/* ---- set-up: the interface, the callers' endpoints, the bus policy -------- */

static int load_idl(scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *res = NULL, *t;
	json_object_object_add(a, "name", json_object_new_string(service));
	int r = scmd("service.show", a, &res, ret_err);
	json_object_put(a);
	if (r == 0 && json_object_object_get_ex(res, "idl", &t))
		r = scm_idl_parse(json_object_get_string(t), (size_t)json_object_get_string_len(t), service, &idl, ret_err);
	else if (r == 0)
		r = scm_fail(ret_err, SCM_E_INTERNAL, "scmd did not show service %s's interface", service);
	json_object_put(res);
	if (r != 0)
		return scm_fail(ret_err, r, "the interface of service '%s'", service);
	introspection = xp_introspect(idl, iface);
	return introspection ? 0 : -ENOMEM;
}

static int make_endpoints(scm_error **ret_err)
{
	for (size_t i = 0; i < n_callers; i++) {
		struct caller *c = &callers[i];
		int r = xp_endpoint_make(runtime_dir, c->endpoint, c->profiles, &c->lockfd, ret_err);
		if (r != 0)
			return scm_fail(ret_err, r, "the endpoint for --caller %s", c->spec);
	}
	return 0;
}

static void remove_endpoints(void)
{
	for (size_t i = 0; i < n_callers; i++) {
		scm_channel_free(callers[i].ch);
		xp_endpoint_remove(runtime_dir, callers[i].endpoint, callers[i].lockfd);
		strv_free(callers[i].profiles);
	}
}

static int write_policy(const char *dir, scm_error **ret_err)
{
	uid_t uids[CALLERS_MAX];
	for (size_t i = 0; i < n_callers; i++)
		uids[i] = callers[i].uid;
	return xp_write_bus_policy(dir, service, bus_name, iface, uids, n_callers, &policy_dirfd, &policy_file, ret_err);
}

/* ---- calls ---------------------------------------------------------------- */

static DBusHandlerResult send_reply(DBusConnection *bus, DBusMessage *reply)
{
	if (reply) {
		dbus_connection_send(bus, reply, NULL);
		dbus_message_unref(reply);
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

static DBusHandlerResult fail(DBusConnection *bus, DBusMessage *m, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static DBusHandlerResult fail(DBusConnection *bus, DBusMessage *m, const char *name, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return send_reply(bus, dbus_message_new_error(m, name, text));
}

/* An error of the call: the IDL's own errors as BUS.NAME.Error.Name, scm's
 * codes as org.scm.Error.CodeName (as org.scm.Manager1 does). */
static DBusHandlerResult reply_scm_error_c(DBusConnection *bus, DBusMessage *m, const scm_error *e)
{
	_cleanup_free_ char *text = scm_error_text(e);
	char name[256];
	const char *code = scm_code_name(e ? e->code : SCM_E_INTERNAL);
	size_t n = 0;
	for (size_t i = 0; e && i < idl->n_errors; i++)
		if (idl->errors[i].code == e->code)
			n = (size_t)snprintf(name, sizeof(name), "%s.Error.%s", iface, idl->errors[i].name);
	if (!n || n >= sizeof(name) || !dbus_validate_error_name(name, NULL)) {
		n = (size_t)snprintf(name, sizeof(name), "org.scm.Error.");
		xp_member(code, name + n, sizeof(name) - n);
	}
	return send_reply(bus, dbus_message_new_error(m, dbus_validate_error_name(name, NULL) ? name : "org.scm.Error.Failed",
						      text ? text : "failed"));
}

static DBusHandlerResult reply_scm_error(DBusConnection *bus, DBusMessage *m, scm_error *e)
{
	DBusHandlerResult r = reply_scm_error_c(bus, m, e);
	scm_error_free(e);
	return r;
}

static void landed(struct inflight *f)
{
	f->prev->next = f->next;
	f->next->prev = f->prev;
	f->prev = f->next = f;
	n_flying--;
	dbus_message_unref(f->m);
	f->m = NULL;
}

static void on_scm_reply(scm_channel *ch, scm_message *reply, const scm_error *err, void *ud)
{
	struct inflight *f = ud;
	char why[768];
	(void)ch;
	if (!f->m) { /* timed out and answered so: only forgotten now */
		f->c->late--;
		free(f);
		return;
	}
	if (err || !reply) {
		reply_scm_error_c(f->bus, f->m, err);
	} else {
		DBusMessage *out = dbus_message_new_method_return(f->m);
		int r = out ? xp_reply_to_dbus(f->meth, reply, out, why, sizeof(why)) : -ENOMEM;
		if (r) {
			if (out)
				dbus_message_unref(out);
			fail(f->bus, f->m, r == -EINVAL ? DBUS_ERROR_FAILED : DBUS_ERROR_NO_MEMORY, "%s",
			     r == -EINVAL ? why : "out of memory");
		} else
			send_reply(f->bus, out);
	}
	landed(f);
	free(f);
}

/* The calls past their deadline get the bus's Timeout error and leave
 * the counts; what libscm holds for them (a callback) goes when the
 * provider answers late. A channel whose provider leaves as many calls
 * unanswered as a uid may have in flight is dropped (its calls in flight
 * answered with an error) and made anew at the next call: what a
 * provider that never answers costs stays bounded. */
static void expire(void)
{
	int64_t now = now_ms();
	while (flying.next != &flying && flying.next->deadline <= now) {
		struct inflight *f = flying.next;
		struct caller *c = f->c;
		fprintf(stderr, "scm-dbus-export: uid %u (endpoint %s): %s.%s got no answer within %d ms\n",
			(unsigned)f->uid, c->endpoint, service, f->meth->name, call_timeout_ms);
		fail(f->bus, f->m, DBUS_ERROR_TIMEOUT,
		     "scm: service '%s' did not answer %s.%s within %d ms (scm-dbus-export --call-timeout)", service,
		     service, f->meth->name, call_timeout_ms);
		landed(f);
		if (++c->late >= max_calls_uid && c->ch) {
			fprintf(stderr, "scm-dbus-export: endpoint %s: %u calls unanswered, its channel dropped\n",
				c->endpoint, c->late);
			c->ch = scm_channel_free(c->ch); /* runs the callbacks: late back to 0 */
		}
	}
}

/* ms until the first deadline, at most cap */
static int next_deadline(int cap)
{
	if (flying.next == &flying)
		return cap;
	int64_t left = flying.next->deadline - now_ms();
	return left <= 0 ? 0 : left < cap ? (int)left : cap;
}

/* 0 when uid may have one more call in flight; 1 when the export has
 * all it may, 2 when uid has */
static int over_quota(uid_t uid)
{
	unsigned mine = 0;
	if (n_flying >= max_calls)
		return 1;
	for (struct inflight *f = flying.next; f != &flying; f = f->next)
		mine += f->uid == uid;
	return mine >= max_calls_uid ? 2 : 0;
}

static bool sender_uid(DBusConnection *bus, const char *sender, uid_t *ret)
{
	for (size_t i = 0; i < SENDERS_CACHED; i++)
		if (senders[i].name[0] && strcmp(senders[i].name, sender) == 0) {
			*ret = senders[i].uid;
			return true;
		}
	/* the bus daemon answers from its own tables: quick, and bounded */
	DBusMessage *q = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
						      "GetConnectionUnixUser"), *a = NULL;
	dbus_uint32_t uid;
	if (q && dbus_message_append_args(q, DBUS_TYPE_STRING, &sender, DBUS_TYPE_INVALID))
		a = dbus_connection_send_with_reply_and_block(bus, q, UID_LOOKUP_TIMEOUT_MS, NULL);
	if (q)
		dbus_message_unref(q);
	bool ok = a && dbus_message_get_args(a, NULL, DBUS_TYPE_UINT32, &uid, DBUS_TYPE_INVALID);
	if (a)
		dbus_message_unref(a);
	if (!ok)
		return false;
	if (strlen(sender) < sizeof(senders[0].name)) {
		unsigned k = senders_next++ % SENDERS_CACHED;
		snprintf(senders[k].name, sizeof(senders[k].name), "%s", sender);
		senders[k].uid = (uid_t)uid;
	}
	*ret = (uid_t)uid;
	return true;
}

static struct caller *caller_of(uid_t uid)
{
	struct caller *any = NULL;
	for (size_t i = 0; i < n_callers; i++) {
		if (callers[i].uid == uid)
			return &callers[i];
		if (callers[i].uid == UID_ANY)
			any = &callers[i];
	}
	return any;
}

/* scmd's decision on this call of c's endpoint: 0 when allowed,
 * SCM_E_DENIED with why filled, or another code with *ret_err. */
static int decide(struct caller *c, const scm_idl_method *meth, json_object *args, char *why, size_t whysz,
		  scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *res = NULL, *v;
	json_object_object_add(a, "endpoint", json_object_new_string(c->endpoint));
	json_object_object_add(a, "service", json_object_new_string(service));
	json_object_object_add(a, "method", json_object_new_string(meth->name));
	json_object_object_add(a, "args", json_object_new_string(json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN)));
	int r = scmd("policy.explain", a, &res, ret_err);
	json_object_put(a);
	if (r != 0)
		return r;
	bool allow = json_object_object_get_ex(res, "decision", &v) && strcmp(json_object_get_string(v), "allow") == 0;
	if (!allow)
		snprintf(why, whysz, "%s", json_object_object_get_ex(res, "origin", &v) ? json_object_get_string(v) : "denied");
	json_object_put(res);
	return allow ? 0 : SCM_E_DENIED;
}

static DBusHandlerResult call(DBusConnection *bus, DBusMessage *m, const scm_idl_method *meth, uid_t uid)
{
	struct caller *c = caller_of(uid);
	char why[768];
	scm_error *e = NULL;
	if (!c)
		return fail(bus, m, DBUS_ERROR_ACCESS_DENIED,
			    "scm: uid %u is not a caller of %s (no --caller maps it to a profile; deny by default)",
			    (unsigned)uid, bus_name);
	int over = over_quota(uid);
	if (over) {
		bool all = over == 1;
		fprintf(stderr, "scm-dbus-export: uid %u: %s.%s refused: %u calls in flight %s\n", (unsigned)uid,
			service, meth->name, all ? max_calls : max_calls_uid, all ? "in all" : "of this uid");
		return fail(bus, m, DBUS_ERROR_LIMITS_EXCEEDED,
			    "scm: %s.%s refused: %s has %u calls in flight, the most it may (scm-dbus-export %s)",
			    service, meth->name, all ? "the export" : "uid", all ? max_calls : max_calls_uid,
			    all ? "--max-calls" : "--max-calls-per-caller");
	}
	_cleanup_(xp_call_done) xp_call in = { 0 };
	int r = xp_call_from_dbus(meth, m, &in, why, sizeof(why));
	if (r == -EINVAL)
		return fail(bus, m, DBUS_ERROR_INVALID_ARGS, "%s: %s", dbus_message_get_member(m), why);
	if (r)
		return DBUS_HANDLER_RESULT_NEED_MEMORY;
	r = decide(c, meth, in.args, why, sizeof(why), &e);
	if (r == SCM_E_DENIED) {
		fprintf(stderr, "scm-dbus-export: uid %u (endpoint %s): denied %s.%s: %s\n", (unsigned)uid, c->endpoint,
			service, meth->name, why);
		return fail(bus, m, DBUS_ERROR_ACCESS_DENIED, "scm policy of endpoint '%s' (uid %u): %s.%s: %s",
			    c->endpoint, (unsigned)uid, service, meth->name, why);
	}
	if (r)
		return reply_scm_error(bus, m, e);
	/* a channel scmd cut meanwhile (a policy reload that changed its
	 * grant, the provider gone) has said so on its socket: connect anew,
	 * decided anew, rather than fail this call on it */
	struct pollfd pfd = { c->ch ? scm_channel_fd(c->ch) : -1, POLLIN, 0 };
	if (c->ch && poll(&pfd, 1, 0) > 0) {
		scm_error *gone = NULL;
		if (scm_channel_dispatch(c->ch, &gone) != 0) {
			scm_channel_free(c->ch);
			c->ch = NULL;
		}
		scm_error_free(gone);
	}
	if (!c->ch) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/endpoints/%s.sock", runtime_dir, c->endpoint);
		if ((r = scm_connect_at(path, service, &c->ch, &e)) != 0)
			return reply_scm_error(bus, m, e);
	}
	/* sent now, answered when the provider replies: the loop goes on
	 * serving other callers meanwhile */
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f)
		return DBUS_HANDLER_RESULT_NEED_MEMORY;
	*f = (struct inflight){ bus, dbus_message_ref(m), meth, c, uid, now_ms() + call_timeout_ms, flying.prev, &flying };
	f->prev->next = f->next->prev = f;
	n_flying++;
	r = scm_call_async(c->ch, meth->id, json_object_object_length(in.args) ? in.args : NULL, in.bin, in.bin_len,
			   in.fds, in.n_fds, on_scm_reply, f, &e);
	if (r != 0) {
		/* this call's failure; a channel that is gone is seen (readable
		 * at its end) and replaced before the next call */
		landed(f);
		free(f);
		return reply_scm_error(bus, m, e);
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

static DBusHandlerResult on_message(DBusConnection *bus, DBusMessage *m, void *ud)
{
	const char *mi = dbus_message_get_interface(m), *member = dbus_message_get_member(m);
	if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	if (dbus_message_is_method_call(m, DBUS_INTERFACE_INTROSPECTABLE, "Introspect")) {
		DBusMessage *r = dbus_message_new_method_return(m);
		if (r)
			dbus_message_append_args(r, DBUS_TYPE_STRING, &introspection, DBUS_TYPE_INVALID);
		return send_reply(bus, r);
	}
	const scm_idl_method *meth = (!mi || strcmp(mi, iface) == 0) ? xp_method_by_member(idl, member) : NULL;
	if (!meth)
		return fail(bus, m, DBUS_ERROR_UNKNOWN_METHOD, "%s has no method %s.%s", bus_name, mi ? mi : iface,
			    member ? member : "?");
	uid_t uid;
	if (!sender_uid(bus, dbus_message_get_sender(m), &uid))
		return fail(bus, m, DBUS_ERROR_ACCESS_DENIED, "scm: the bus did not say who the caller is");
	return call(bus, m, meth, uid);
}

static void on_term(int sig)
{
	got_term = sig;
}

static int usage(void)
{
	fprintf(stderr, "usage: scm-dbus-export [--runtime-dir DIR] SERVICE --name BUS.NAME [--bus session|system|ADDRESS]\n"
			"       [--path /OBJ] [--interface IFACE] [--bus-policy-dir DIR | --no-bus-policy]\n"
			"       --caller UID|USER|*=PROFILE[,PROFILE]... [--max-calls-per-caller N] [--max-calls N]\n"
			"       [--call-timeout SECONDS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *busarg = "session", *policy_dir = NULL;
	bool no_policy = false;
	static const struct option opts[] = { { "bus", required_argument, NULL, 'b' },
					      { "runtime-dir", required_argument, NULL, 'r' },
					      { "name", required_argument, NULL, 'n' },
					      { "path", required_argument, NULL, 'p' },
					      { "interface", required_argument, NULL, 'i' },
					      { "bus-policy-dir", required_argument, NULL, 'd' },
					      { "no-bus-policy", no_argument, NULL, 'N' },
					      { "caller", required_argument, NULL, 'c' },
					      { "call-timeout", required_argument, NULL, 'T' },
					      { "max-calls", required_argument, NULL, 'M' },
					      { "max-calls-per-caller", required_argument, NULL, 'U' },
					      {} };
	const char *specs[CALLERS_MAX + 1];
	size_t n_specs = 0;
	scm_error *e = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': busarg = optarg; break;
		case 'r': runtime_dir = optarg; break;
		case 'n': bus_name = optarg; break;
		case 'p': obj_path = optarg; break;
		case 'i': iface = optarg; break;
		case 'd': policy_dir = optarg; break;
		case 'N': no_policy = true; break;
		case 'T':
			if (!xp_parse_bound(optarg, "--call-timeout", 3600, &call_timeout_ms))
				return 2;
			break;
		case 'M':
		case 'U': {
			int v;
			if (!xp_parse_bound(optarg, c == 'M' ? "--max-calls" : "--max-calls-per-caller", 65536, &v))
				return 2;
			*(c == 'M' ? &max_calls : &max_calls_uid) = (unsigned)v;
			break;
		}
		case 'c':
			if (n_specs > CALLERS_MAX)
				return usage();
			specs[n_specs++] = optarg;
			break;
		default: return usage();
		}
	}
	if (optind + 1 != argc || !bus_name || !n_specs)
		return usage();
	service = argv[optind];
	if (!name_valid(service, 64, NAME_FILE))
		return fprintf(stderr, "scm-dbus-export: '%s' is not a service name\n", service), 2;
	if (!dbus_validate_bus_name(bus_name, NULL) || bus_name[0] == ':' || !strchr(bus_name, '.'))
		return fprintf(stderr, "scm-dbus-export: --name %s is not a well-known bus name\n", bus_name), 2;
	_cleanup_free_ char *def_path = NULL;
	if (!obj_path) { /* org.example.Echo -> /org/example/Echo */
		if (asprintf(&def_path, "/%s", bus_name) < 0)
			return 1;
		for (char *p = def_path; *p; p++)
			*p = *p == '.' ? '/' : *p == '-' ? '_' : *p;
		obj_path = def_path;
	}
	if (!iface)
		iface = bus_name;
	if (!dbus_validate_path(obj_path, NULL))
		return fprintf(stderr, "scm-dbus-export: --path %s is not an object path\n", obj_path), 2;
	if (!dbus_validate_interface(iface, NULL))
		return fprintf(stderr, "scm-dbus-export: --interface %s is not an interface name\n", iface), 2;
	for (size_t i = 0; i < n_specs; i++)
		if (xp_parse_caller(specs[i], bus_name, callers, &n_callers, &e) != 0)
			return fprintf(stderr, "scm-dbus-export: "), scm_error_print(e, stderr), scm_error_free(e), 2;
	if (!policy_dir && !no_policy) {
		if (strcmp(busarg, "system") == 0)
			policy_dir = "/etc/dbus-1/system.d";
		else if (strcmp(busarg, "session") == 0)
			policy_dir = "/etc/dbus-1/session.d";
		else
			return fprintf(stderr, "scm-dbus-export: --bus %s: name the bus's policy directory (--bus-policy-dir DIR, "
					       "one its configuration includes) or say --no-bus-policy\n",
				       busarg),
			       2;
	}
	if (load_idl(&e) != 0)
		return die(e, "cannot export");

	DBusError err;
	dbus_error_init(&err);
	DBusConnection *bus = manager_bus_open(busarg, &err);
	if (!bus) {
		fprintf(stderr, "scm-dbus-export: the %s bus: %s\n", busarg, err.message);
		return 1;
	}
	int rc = 1;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	/* a running export's snippet is not ours to overwrite (nor remove) */
	if (dbus_bus_name_has_owner(bus, bus_name, NULL)) {
		fprintf(stderr, "scm-dbus-export: cannot own %s on the %s bus: it is taken\n", bus_name, busarg);
		goto out;
	}
	if (policy_dir) {
		if (write_policy(policy_dir, &e) != 0) {
			die(e, "cannot export");
			goto out;
		}
		xp_bus_reload(bus);
	}
	int r = dbus_bus_request_name(bus, bus_name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
	if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
		fprintf(stderr, "scm-dbus-export: cannot own %s on the %s bus: %s\n", bus_name, busarg,
			dbus_error_is_set(&err) ? err.message
						: "it is taken (or the bus policy denies it: does the bus include the policy directory?)");
		dbus_error_free(&err);
		goto out;
	}
	if (make_endpoints(&e) != 0) {
		die(e, "cannot export");
		goto out;
	}
	static const DBusObjectPathVTable vt = { .message_function = on_message };
	if (!dbus_connection_register_object_path(bus, obj_path, &vt, NULL))
		goto out;
	printf("exported service %s as %s %s (interface %s) on the %s bus\n", service, bus_name, obj_path, iface, busarg);
	fflush(stdout);
	int busfd = -1;
	dbus_connection_get_unix_fd(bus, &busfd);
	while (!got_term) {
		/* the bus and every caller's channel, in one poll */
		struct pollfd pf[1 + CALLERS_MAX];
		struct caller *of[1 + CALLERS_MAX];
		nfds_t n = 0;
		pf[n++] = (struct pollfd){ busfd, POLLIN, 0 };
		for (size_t i = 0; i < n_callers; i++)
			if (callers[i].ch) {
				of[n] = &callers[i];
				pf[n++] = (struct pollfd){ scm_channel_fd(callers[i].ch), POLLIN, 0 };
			}
		bool more = dbus_connection_get_dispatch_status(bus) == DBUS_DISPATCH_DATA_REMAINS;
		if (poll(pf, n, more ? 0 : next_deadline(500)) < 0 && errno != EINTR)
			break;
		if (!dbus_connection_read_write(bus, 0))
			break; /* the bus went away */
		while (dbus_connection_dispatch(bus) == DBUS_DISPATCH_DATA_REMAINS)
			;
		for (nfds_t i = 1; i < n; i++) {
			scm_error *gone = NULL;
			if (!pf[i].revents || !of[i]->ch)
				continue;
			if (scm_channel_dispatch(of[i]->ch, &gone) != 0) {
				/* its calls in flight were answered with the error */
				scm_channel_free(of[i]->ch);
				of[i]->ch = NULL;
			}
			scm_error_free(gone);
		}
		expire();
		dbus_connection_flush(bus);
	}
	rc = got_term ? 0 : 1;
	if (!got_term)
		fprintf(stderr, "scm-dbus-export: the %s bus went away\n", busarg);
out:
	if (policy_file) {
		unlinkat(policy_dirfd, policy_file, 0);
		if (dbus_connection_get_is_connected(bus))
			xp_bus_reload(bus);
	}
	remove_endpoints();
	free(policy_file);
	if (policy_dirfd >= 0)
		close(policy_dirfd);
	dbus_connection_close(bus);
	dbus_connection_unref(bus);
	scm_idl_free(idl);
	free(introspection);
	return rc;
}
