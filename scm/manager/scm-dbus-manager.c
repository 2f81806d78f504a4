/* scm-dbus-manager: scmd's API on D-Bus (docs/dbus.md), for managers
 * written for the desktop: org.scm.Manager1 at /org/scm/Manager1.
 *
 *   scm-dbus-manager [--bus system|session|ADDRESS] [--runtime-dir DIR]
 *
 * It is a client of scmd's control socket like scmctl (one request a
 * connection), so it runs as root or scmd's user; whom it serves is
 * decided twice: the bus's policy (docs/dbus.md ships a system.d file
 * that lets everyone call the read methods and only root the others),
 * and here, for every call that changes state, by the caller's uid as the
 * bus daemon reports it (never what the caller says): root may, and,
 * where polkit runs on the bus, whoever polkit authorises for the action
 * org.scm.manage. Everyone else gets org.freedesktop.DBus.Error.AccessDenied.
 *
 * Changes come from scmd's event feed (events.subscribe, the records of
 * its audit trail as they are written): on each container record it asks
 * scmd for its containers, and each change of state is a
 * ContainerStateChanged signal; the RunningContainers property changes
 * with PropertiesChanged. When the feed ends (scmd restarted in place, or
 * stopped) it subscribes again, once a second until scmd answers, and
 * catches up from the list. */
#include <dbus/dbus.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "busopen.h"
#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scm/macro.h"

#define NAME "org.scm.Manager1"
#define PATH "/org/scm/Manager1"
#define IFACE "org.scm.Manager1"
#define RESUBSCRIBE_MS 1000

static const char *runtime_dir = "/run/scm";
static json_object *last_containers; /* name -> state, as last seen */
static volatile sig_atomic_t got_term;

static const char introspection[] =
	DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE
	"<node>\n"
	" <interface name='" IFACE "'>\n"
	"  <method name='ListContainers'><arg type='a(ssuas)' name='containers' direction='out'/></method>\n"
	"  <method name='RunContainer'><arg type='s' name='name' direction='in'/>"
	"<arg type='as' name='argv' direction='in'/><arg type='as' name='profiles' direction='in'/>"
	"<arg type='s' name='started' direction='out'/></method>\n"
	"  <method name='StopContainer'><arg type='s' name='name' direction='in'/>"
	"<arg type='u' name='timeout_ms' direction='in'/></method>\n"
	"  <method name='PauseContainer'><arg type='s' name='name' direction='in'/></method>\n"
	"  <method name='ResumeContainer'><arg type='s' name='name' direction='in'/></method>\n"
	"  <method name='RemoveContainer'><arg type='s' name='name' direction='in'/></method>\n"
	"  <method name='ListServices'><arg type='a(sssu)' name='services' direction='out'/></method>\n"
	"  <method name='RegisterService'><arg type='s' name='manifest_json' direction='in'/></method>\n"
	"  <method name='UnregisterService'><arg type='s' name='name' direction='in'/></method>\n"
	"  <signal name='ContainerStateChanged'><arg type='s' name='name'/><arg type='s' name='state'/></signal>\n"
	"  <property name='Version' type='s' access='read'/>\n"
	"  <property name='RunningContainers' type='u' access='read'/>\n"
	" </interface>\n"
	" <interface name='org.freedesktop.DBus.Properties'>\n"
	"  <method name='Get'><arg type='s' direction='in'/><arg type='s' direction='in'/>"
	"<arg type='v' direction='out'/></method>\n"
	"  <method name='GetAll'><arg type='s' direction='in'/><arg type='a{sv}' direction='out'/></method>\n"
	"  <signal name='PropertiesChanged'><arg type='s'/><arg type='a{sv}'/><arg type='as'/></signal>\n"
	" </interface>\n"
	" <interface name='org.freedesktop.DBus.Introspectable'>\n"
	"  <method name='Introspect'><arg type='s' direction='out'/></method>\n"
	" </interface>\n"
	"</node>\n";

/* ---- scmd ---------------------------------------------------------------- */

static int scmd_open(scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", runtime_dir) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "runtime dir %s is too long", runtime_dir);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return scm_fail(ret_err, -errno, "cannot reach scmd at %s: %m", sa.sun_path);
	return TAKE_FD(fd);
}

static int scmd(const char *op, json_object *args, json_object **ret, scm_error **ret_err)
{
	_cleanup_close_ int fd = scmd_open(ret_err);
	if (fd < 0)
		return fd;
	return scm_wire_control_request(fd, op, args, NULL, 0, ret, NULL, 0, ret_err);
}

/* A connection carrying scmd's container records (and its restarts), or
 * -1 when scmd is not there (we try again). */
static int events_open(void)
{
	scm_error *e = NULL;
	int fd = scmd_open(&e);
	json_object *a = json_object_new_object(), *pats = json_object_new_array();
	json_object_array_add(pats, json_object_new_string("container-*"));
	json_object_array_add(pats, json_object_new_string("daemon-restarted"));
	json_object_object_add(a, "events", pats);
	if (fd >= 0 && scm_wire_control_request(fd, "events.subscribe", a, NULL, 0, NULL, NULL, 0, &e) != 0)
		fd = safe_close(fd);
	json_object_put(a);
	scm_error_free(e);
	return fd;
}


static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
											       : "";
}

/* ---- replies ------------------------------------------------------------- */

static DBusHandlerResult send_reply(DBusConnection *bus, DBusMessage *reply)
{
	if (reply) {
		dbus_connection_send(bus, reply, NULL);
		dbus_message_unref(reply);
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

static DBusHandlerResult reply_scm_error(DBusConnection *bus, DBusMessage *m, scm_error *e)
{
	_cleanup_free_ char *text = scm_error_text(e);
	/* scm's code names become D-Bus error names: org.scm.Error.NotFound */
	char name[96];
	const char *code = scm_code_name(e ? e->code : SCM_E_INTERNAL);
	size_t n = (size_t)snprintf(name, sizeof(name), "org.scm.Error.");
	for (bool up = true; *code && n + 1 < sizeof(name); code++) {
		if (*code == '-') {
			up = true;
			continue;
		}
		name[n++] = up && *code >= 'a' && *code <= 'z' ? (char)(*code - 32) : *code;
		up = false;
	}
	name[n] = 0;
	scm_error_free(e);
	return send_reply(bus, dbus_message_new_error(m, dbus_validate_error_name(name, NULL) ? name : "org.scm.Error.Failed",
						      text ? text : "failed"));
}

/* ---- who may change state ------------------------------------------------ */

/* polkit's CheckAuthorization for the caller's bus name (the subject
 * polkit itself resolves to a process and user): 1 yes, 0 no, -1 no
 * polkit on this bus. */
static int polkit_allows(DBusConnection *bus, const char *sender)
{
	if (!dbus_bus_name_has_owner(bus, "org.freedesktop.PolicyKit1", NULL))
		return -1;
	DBusMessage *m = dbus_message_new_method_call("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
						      "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
	if (!m)
		return 0;
	DBusMessageIter it, subj, dict, entry, var, details, ids;
	const char *kind = "system-bus-name", *key = "name", *action = "org.scm.manage", *cancel = "";
	dbus_uint32_t flags = 0; /* no interaction: a daemon asks nobody */
	dbus_message_iter_init_append(m, &it);
	dbus_message_iter_open_container(&it, DBUS_TYPE_STRUCT, NULL, &subj);
	dbus_message_iter_append_basic(&subj, DBUS_TYPE_STRING, &kind);
	dbus_message_iter_open_container(&subj, DBUS_TYPE_ARRAY, "{sv}", &dict);
	dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
	dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
	dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &var);
	dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &sender);
	dbus_message_iter_close_container(&entry, &var);
	dbus_message_iter_close_container(&dict, &entry);
	dbus_message_iter_close_container(&subj, &dict);
	dbus_message_iter_close_container(&it, &subj);
	dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &action);
	dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{ss}", &details);
	dbus_message_iter_close_container(&it, &details);
	dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT32, &flags);
	dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &cancel);
	(void)ids;
	DBusError err;
	dbus_error_init(&err);
	DBusMessage *r = dbus_connection_send_with_reply_and_block(bus, m, 5000, &err);
	dbus_message_unref(m);
	int ok = 0;
	DBusMessageIter ri, rs;
	if (r && dbus_message_iter_init(r, &ri) && dbus_message_iter_get_arg_type(&ri) == DBUS_TYPE_STRUCT) {
		dbus_message_iter_recurse(&ri, &rs);
		dbus_bool_t yes = FALSE;
		if (dbus_message_iter_get_arg_type(&rs) == DBUS_TYPE_BOOLEAN)
			dbus_message_iter_get_basic(&rs, &yes);
		ok = yes ? 1 : 0;
	}
	if (r)
		dbus_message_unref(r);
	dbus_error_free(&err);
	return ok;
}

/* NULL when the caller may change state, else the reason */
static const char *refused(DBusConnection *bus, DBusMessage *m)
{
	DBusError err;
	dbus_error_init(&err);
	const char *sender = dbus_message_get_sender(m);
	unsigned long uid = sender ? dbus_bus_get_unix_user(bus, sender, &err) : (unsigned long)-1;
	dbus_error_free(&err);
	if (uid == 0)
		return NULL;
	int pk = sender ? polkit_allows(bus, sender) : 0;
	if (pk == 1)
		return NULL;
	return pk < 0 ? "only root may change scm's state (no polkit on this bus)"
		      : "polkit does not authorise org.scm.manage for this caller";
}

/* ---- methods ------------------------------------------------------------- */

static bool strv_arg(DBusMessageIter *it, json_object *arr)
{
	if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(it) != DBUS_TYPE_STRING)
		return false;
	DBusMessageIter a;
	dbus_message_iter_recurse(it, &a);
	while (dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING) {
		const char *s;
		dbus_message_iter_get_basic(&a, &s);
		json_object_array_add(arr, json_object_new_string(s));
		dbus_message_iter_next(&a);
	}
	return true;
}

static DBusHandlerResult list_containers(DBusConnection *bus, DBusMessage *m)
{
	json_object *res = NULL, *arr;
	scm_error *e = NULL;
	if (scmd("container.list", NULL, &res, &e) != 0)
		return reply_scm_error(bus, m, e);
	DBusMessage *r = dbus_message_new_method_return(m);
	DBusMessageIter it, a, s, p;
	dbus_message_iter_init_append(r, &it);
	dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ssuas)", &a);
	if (json_object_object_get_ex(res, "containers", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *c = json_object_array_get_idx(arr, i), *v, *pr;
			const char *name = jstr(c, "name"), *state = jstr(c, "state");
			dbus_uint32_t pid = json_object_object_get_ex(c, "pid", &v) ? (dbus_uint32_t)json_object_get_int(v) : 0;
			dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &s);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_STRING, &name);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_STRING, &state);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_UINT32, &pid);
			dbus_message_iter_open_container(&s, DBUS_TYPE_ARRAY, "s", &p);
			if (json_object_object_get_ex(c, "profiles", &pr))
				for (size_t k = 0; k < json_object_array_length(pr); k++) {
					const char *n = json_object_get_string(json_object_array_get_idx(pr, k));
					dbus_message_iter_append_basic(&p, DBUS_TYPE_STRING, &n);
				}
			dbus_message_iter_close_container(&s, &p);
			dbus_message_iter_close_container(&a, &s);
		}
	dbus_message_iter_close_container(&it, &a);
	json_object_put(res);
	return send_reply(bus, r);
}

static DBusHandlerResult list_services(DBusConnection *bus, DBusMessage *m)
{
	json_object *res = NULL, *arr;
	scm_error *e = NULL;
	if (scmd("service.list", NULL, &res, &e) != 0)
		return reply_scm_error(bus, m, e);
	DBusMessage *r = dbus_message_new_method_return(m);
	DBusMessageIter it, a, s;
	dbus_message_iter_init_append(r, &it);
	dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(sssu)", &a);
	if (json_object_object_get_ex(res, "services", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *c = json_object_array_get_idx(arr, i), *v;
			const char *name = jstr(c, "name"), *iface = jstr(c, "interface"), *state = jstr(c, "state");
			dbus_uint32_t pid = json_object_object_get_ex(c, "pid", &v) ? (dbus_uint32_t)json_object_get_int(v) : 0;
			dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &s);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_STRING, &name);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_STRING, &iface);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_STRING, &state);
			dbus_message_iter_append_basic(&s, DBUS_TYPE_UINT32, &pid);
			dbus_message_iter_close_container(&a, &s);
		}
	dbus_message_iter_close_container(&it, &a);
	json_object_put(res);
	return send_reply(bus, r);
}

/* A method that changes state: its arguments into a control request. */
static DBusHandlerResult change(DBusConnection *bus, DBusMessage *m, const char *member)
{
	const char *why = refused(bus, m);
	if (why)
		return send_reply(bus, dbus_message_new_error(m, DBUS_ERROR_ACCESS_DENIED, why));
	DBusMessageIter it;
	const char *s = NULL;
	json_object *a = json_object_new_object(), *res = NULL;
	const char *op = NULL;
	bool ok = dbus_message_iter_init(m, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRING;
	if (ok)
		dbus_message_iter_get_basic(&it, &s);
	if (ok && strcmp(member, "RunContainer") == 0) {
		json_object *argv = json_object_new_array(), *profiles = json_object_new_array();
		json_object_object_add(a, "argv", argv);
		dbus_message_iter_next(&it);
		ok = strv_arg(&it, argv) && dbus_message_iter_next(&it) && strv_arg(&it, profiles) &&
		     json_object_array_length(argv) > 0;
		if (json_object_array_length(profiles))
			json_object_object_add(a, "profiles", profiles);
		else
			json_object_put(profiles);
		op = "container.run";
	} else if (ok && strcmp(member, "StopContainer") == 0) {
		dbus_uint32_t t = 0;
		ok = dbus_message_iter_next(&it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_UINT32;
		if (ok)
			dbus_message_iter_get_basic(&it, &t);
		json_object_object_add(a, "timeout_ms", json_object_new_int((int)(t > 600000 ? 600000 : t)));
		op = "container.stop";
	} else if (ok && strcmp(member, "RegisterService") == 0) {
		json_object *man = json_tokener_parse(s);
		ok = man && json_object_is_type(man, json_type_object);
		json_object_object_add(a, "manifest", man);
		op = "service.register";
	} else if (ok) {
		op = strcmp(member, "PauseContainer") == 0	 ? "container.pause"
		     : strcmp(member, "ResumeContainer") == 0	 ? "container.resume"
		     : strcmp(member, "RemoveContainer") == 0	 ? "container.rm"
		     : strcmp(member, "UnregisterService") == 0 ? "service.unregister"
								 : NULL;
	}
	if (!ok || !op) {
		json_object_put(a);
		return send_reply(bus, dbus_message_new_error(m, DBUS_ERROR_INVALID_ARGS, "bad arguments for this method"));
	}
	if (strcmp(member, "RegisterService") != 0)
		json_object_object_add(a, "name", json_object_new_string(s));
	scm_error *e = NULL;
	int r = scmd(op, a, &res, &e);
	json_object_put(a);
	if (r != 0)
		return reply_scm_error(bus, m, e);
	DBusMessage *rep = dbus_message_new_method_return(m);
	if (strcmp(member, "RunContainer") == 0) {
		const char *name = jstr(res, "name");
		dbus_message_append_args(rep, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID);
	}
	json_object_put(res);
	return send_reply(bus, rep);
}

/* ---- properties and changes ---------------------------------------------- */

static dbus_uint32_t running(json_object *states)
{
	dbus_uint32_t n = 0;
	json_object_object_foreach(states, k, v)
	{
		(void)k;
		n += strcmp(json_object_get_string(v), "running") == 0;
	}
	return n;
}

static void append_prop(DBusMessageIter *it, const char *prop)
{
	DBusMessageIter var;
	if (strcmp(prop, "Version") == 0) {
		const char *v = "1";
		dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "s", &var);
		dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &v);
	} else {
		dbus_uint32_t n = last_containers ? running(last_containers) : 0;
		dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "u", &var);
		dbus_message_iter_append_basic(&var, DBUS_TYPE_UINT32, &n);
	}
	dbus_message_iter_close_container(it, &var);
}

static void append_entry(DBusMessageIter *dict, const char *prop)
{
	DBusMessageIter e;
	dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &e);
	dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &prop);
	append_prop(&e, prop);
	dbus_message_iter_close_container(dict, &e);
}

static DBusHandlerResult properties(DBusConnection *bus, DBusMessage *m, const char *member)
{
	const char *iface = NULL, *prop = NULL;
	DBusError err;
	dbus_error_init(&err);
	bool all = strcmp(member, "GetAll") == 0;
	if (!(all ? dbus_message_get_args(m, &err, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID)
		  : dbus_message_get_args(m, &err, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop, DBUS_TYPE_INVALID)) ||
	    strcmp(iface, IFACE) != 0 || (!all && strcmp(prop, "Version") && strcmp(prop, "RunningContainers"))) {
		dbus_error_free(&err);
		return send_reply(bus, dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_PROPERTY, "no such property"));
	}
	DBusMessage *r = dbus_message_new_method_return(m);
	DBusMessageIter it, dict;
	dbus_message_iter_init_append(r, &it);
	if (all) {
		dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
		append_entry(&dict, "Version");
		append_entry(&dict, "RunningContainers");
		dbus_message_iter_close_container(&it, &dict);
	} else
		append_prop(&it, prop);
	return send_reply(bus, r);
}

static void running_changed(DBusConnection *bus)
{
	DBusMessage *sig = dbus_message_new_signal(PATH, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged");
	DBusMessageIter it, dict, inv;
	const char *iface = IFACE;
	dbus_message_iter_init_append(sig, &it);
	dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &iface);
	dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
	append_entry(&dict, "RunningContainers");
	dbus_message_iter_close_container(&it, &dict);
	dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &inv);
	dbus_message_iter_close_container(&it, &inv);
	dbus_connection_send(bus, sig, NULL);
	dbus_message_unref(sig);
}

/* A container's state as last seen becomes state ("removed": forgotten):
 * ContainerStateChanged when it is a change, and PropertiesChanged when
 * the number of running ones changed with it. */
static void set_state(DBusConnection *bus, const char *name, const char *state)
{
	json_object *old = NULL;
	if (json_object_object_get_ex(last_containers, name, &old) ? strcmp(json_object_get_string(old), state) == 0
								    : strcmp(state, "removed") == 0)
		return;
	dbus_uint32_t before = running(last_containers);
	DBusMessage *sig = dbus_message_new_signal(PATH, IFACE, "ContainerStateChanged");
	dbus_message_append_args(sig, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &state, DBUS_TYPE_INVALID);
	dbus_connection_send(bus, sig, NULL);
	dbus_message_unref(sig);
	if (strcmp(state, "removed") == 0)
		json_object_object_del(last_containers, name);
	else
		json_object_object_add(last_containers, name, json_object_new_string(state));
	if (running(last_containers) != before)
		running_changed(bus);
}

/* Asks scmd for its containers and brings the states last seen up to
 * date with them. */
static void poll_changes(DBusConnection *bus)
{
	json_object *res = NULL, *arr;
	scm_error *e = NULL;
	if (scmd("container.list", NULL, &res, &e) != 0) {
		scm_error_free(e);
		return;
	}
	json_object *now = json_object_new_object();
	if (json_object_object_get_ex(res, "containers", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *c = json_object_array_get_idx(arr, i);
			json_object_object_add(now, jstr(c, "name"), json_object_new_string(jstr(c, "state")));
		}
	json_object_put(res);
	json_object_object_foreach(now, name, st)
	{
		set_state(bus, name, json_object_get_string(st));
	}
	/* (a copy of the names: set_state deletes from the object) */
	json_object *gone = json_object_new_array();
	json_object_object_foreach(last_containers, was, ost)
	{
		(void)ost;
		if (!json_object_object_get_ex(now, was, NULL))
			json_object_array_add(gone, json_object_new_string(was));
	}
	for (size_t i = 0; i < json_object_array_length(gone); i++)
		set_state(bus, json_object_get_string(json_object_array_get_idx(gone, i)), "removed");
	json_object_put(gone);
	json_object_put(now);
}

/* A record from scmd's feed: the state it says a container is in now, so
 * that a pause and resume between two lists are both signalled. */
static void note_record(DBusConnection *bus, json_object *rec)
{
	static const char *const map[][2] = { { "container-start", "running" },	  { "container-pause", "paused" },
					      { "container-resume", "running" }, { "container-exit", "exited" },
					      { "container-remove", "removed" } };
	const char *ev = jstr(rec, "event"), *name = jstr(rec, "container");
	for (size_t i = 0; *name && i < ELEMENTSOF(map); i++)
		if (strcmp(ev, map[i][0]) == 0)
			set_state(bus, name, map[i][1]);
}

static DBusHandlerResult on_message(DBusConnection *bus, DBusMessage *m, void *ud)
{
	const char *iface = dbus_message_get_interface(m), *member = dbus_message_get_member(m);
	if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL || !member)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	if (iface && strcmp(iface, DBUS_INTERFACE_INTROSPECTABLE) == 0 && strcmp(member, "Introspect") == 0) {
		const char *x = introspection;
		DBusMessage *r = dbus_message_new_method_return(m);
		dbus_message_append_args(r, DBUS_TYPE_STRING, &x, DBUS_TYPE_INVALID);
		return send_reply(bus, r);
	}
	if (iface && strcmp(iface, DBUS_INTERFACE_PROPERTIES) == 0 && (!strcmp(member, "Get") || !strcmp(member, "GetAll")))
		return properties(bus, m, member);
	if (iface && strcmp(iface, IFACE) != 0)
		return send_reply(bus, dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "no such interface"));
	if (strcmp(member, "ListContainers") == 0)
		return list_containers(bus, m);
	if (strcmp(member, "ListServices") == 0)
		return list_services(bus, m);
	static const char *const changing[] = { "RunContainer",	   "StopContainer",   "PauseContainer",	   "ResumeContainer",
						 "RemoveContainer", "RegisterService", "UnregisterService" };
	for (size_t i = 0; i < ELEMENTSOF(changing); i++)
		if (strcmp(member, changing[i]) == 0)
			return change(bus, m, member);
	return send_reply(bus, dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method"));
}

static void on_term(int sig)
{
	got_term = sig;
}

int main(int argc, char **argv)
{
	const char *busarg = "system";
	static const struct option opts[] = { { "bus", required_argument, NULL, 'b' },
					      { "runtime-dir", required_argument, NULL, 'r' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			busarg = optarg;
		else if (c == 'r')
			runtime_dir = optarg;
		else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: scm-dbus-manager [--bus system|session|ADDRESS] [--runtime-dir DIR]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	DBusError err;
	dbus_error_init(&err);
	DBusConnection *bus = manager_bus_open(busarg, &err);
	if (!bus) {
		fprintf(stderr, "scm-dbus-manager: the %s bus: %s\n", busarg, err.message);
		return 1;
	}
	int r = dbus_bus_request_name(bus, NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
	if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
		fprintf(stderr, "scm-dbus-manager: cannot own %s on the %s bus: %s\n", NAME, busarg,
			dbus_error_is_set(&err) ? err.message : "it is taken (or the bus policy denies it)");
		return 1;
	}
	static const DBusObjectPathVTable vt = { .message_function = on_message };
	if (!dbus_connection_register_object_path(bus, PATH, &vt, NULL)) {
		fprintf(stderr, "scm-dbus-manager: out of memory\n");
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	fprintf(stderr, "scm-dbus-manager: %s on the %s bus, scmd at %s/control.sock\n", NAME, busarg, runtime_dir);
	last_containers = json_object_new_object();
	int busfd = -1, evfd = -1;
	if (!dbus_connection_get_unix_fd(bus, &busfd)) {
		fprintf(stderr, "scm-dbus-manager: the bus connection has no fd to wait on\n");
		return 1;
	}
	while (!got_term && dbus_connection_get_is_connected(bus)) {
		if (evfd < 0 && (evfd = events_open()) >= 0)
			poll_changes(bus); /* what happened while not subscribed */
		dbus_connection_flush(bus);
		struct pollfd p[2] = { { busfd, POLLIN, 0 }, { evfd, POLLIN, 0 } };
		if (poll(p, evfd >= 0 ? 2 : 1, evfd >= 0 ? -1 : RESUBSCRIBE_MS) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			dbus_connection_read_write(bus, 0);
			while (dbus_connection_dispatch(bus) == DBUS_DISPATCH_DATA_REMAINS)
				;
		}
		if (evfd >= 0 && p[1].revents) {
			/* what the feed has, then the list (a record of what
			 * has no record of its own, as a launch that failed) */
			int rr;
			scm_message *m = NULL;
			scm_error *e = NULL;
			while ((rr = scm_wire_recv(evfd, MSG_DONTWAIT, &m, &e)) == 0) {
				if (m->type == SCM_FRAME_EVENT && m->json)
					note_record(bus, m->json);
				scm_message_free(m);
			}
			scm_error_free(e);
			if (rr != -EAGAIN)
				evfd = safe_close(evfd);
			poll_changes(bus);
		}
	}
	safe_close(evfd);
	json_object_put(last_containers);
	dbus_connection_close(bus);
	dbus_connection_unref(bus);
	return 0;
}
