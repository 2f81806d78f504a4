/* dbus.c: the D-Bus bridge rules of profiles ("dbus": [{"bus",
 * "destination", "path_prefix", "interface", "methods", "args",
 * "action"}]): which method calls on a host bus a container may make
 * through the bridge provider (services/dbus-bridge, docs/dbus.md).
 *
 * Like the clipboard rules, scmd does not decide calls itself: it hands
 * the caller's effective rules, in merge order (priority from high to
 * low, then profile name, then position), to the bridge in the grant of
 * each dbus channel, and the bridge decides each call by them: the first
 * rule that matches decides, an equal-priority rule of the other action
 * that matches too denies, and no match denies. Argument constraints are
 * the forms every scm interface uses (scm_constraint_check), on the
 * call's positional arguments "arg0".."arg63".
 *
 * What a rule can never grant is refused here, at load: the bus daemon
 * (org.freedesktop.DBus: name ownership, match rules, the list of names)
 * and unique names (":1.42" belongs to one connection, not a service). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <scm/constraint.h>
#include <scm/macro.h>

#include "internal.h"

#define DBUS_RULES_MAX 1024
#define DBUS_NAME_MAX 255
#define DBUS_ARGS_MAX 64

/* Elements of [A-Za-z0-9_] (and '-' in bus names), none empty or led by
 * a digit, at least two, at most 255 bytes: the D-Bus specification's
 * rule for interface and well-known bus names. */
static bool dotted_valid(const char *s, bool dash)
{
	size_t n = strlen(s), elems = 1;
	if (n == 0 || n > DBUS_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool start = i == 0 || s[i - 1] == '.';
		if (ch == '.') {
			if (start)
				return false;
			elems++;
		} else if (ch >= '0' && ch <= '9') {
			if (start)
				return false;
		} else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			     (dash && ch == '-'))) {
			return false;
		}
	}
	return elems >= 2;
}

static bool member_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DBUS_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* "/" or "/a/b_2": elements of [A-Za-z0-9_], no trailing slash. */
static bool objpath_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 4096 || s[0] != '/')
		return false;
	if (n == 1)
		return true;
	if (s[n - 1] == '/')
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] == '/' ? s[i - 1] == '/'
				: !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
				    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	}
	return true;
}

/* "session", "system", or a D-Bus address ("unix:path=/run/x", with
 * its ',' ';' '=' and %-escapes): printable, no spaces or quotes. */
static bool bus_valid(const char *s)
{
	if (strcmp(s, "session") == 0 || strcmp(s, "system") == 0)
		return true;
	size_t n = strlen(s);
	if (n == 0 || n > 1024 || !strchr(s, ':') || s[0] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || strchr("\"'\\", s[i]))
			return false;
	return true;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cons_cmp(const void *a, const void *b)
{
	return strcmp(((const pcons *)a)->param, ((const pcons *)b)->param);
}

static int parse_methods(pctx *c, pdbus *d, json_object *m, const char *ptr)
{
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/methods", ptr);
	if (!m)
		return prof_err(c, ptr, "missing \"methods\" (an array of D-Bus method names, or \"*\")");
	if (json_object_is_type(m, json_type_string) && strcmp(json_object_get_string(m), "*") == 0) {
		d->all_methods = true;
		return 0;
	}
	if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) == 0)
		return prof_err(c, sub, "expected a non-empty array of method names or \"*\", got %s",
				prof_type(m));
	size_t n = json_object_array_length(m);
	if (n > 256)
		return prof_err(c, sub, "%zu methods, more than 256", n);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(m, i);
		char at[128];
		snprintf(at, sizeof(at), "%s/%zu", sub, i);
		if (!json_object_is_type(e, json_type_string) || !member_valid(json_object_get_string(e)))
			return prof_err(c, at, "expected a D-Bus method name (letters, digits, _; not led by a digit)");
		if (strv_contains(d->methods, json_object_get_string(e)))
			return prof_err(c, at, "\"%s\" appears twice", json_object_get_string(e));
		if (strv_add(&d->methods, &d->n_methods, json_object_get_string(e)) < 0)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	}
	qsort(d->methods, d->n_methods, sizeof(char *), str_cmp);
	return 0;
}

static int parse_dbus_args(pctx *c, pdbus *d, json_object *o, const char *ptr)
{
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/args", ptr);
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, sub, "expected an object {\"argN\": CONSTRAINT}, got %s", prof_type(o));
	if (!d->allow)
		return prof_err(c, sub, "a deny rule cannot carry args (put them on an allow rule)");
	size_t n = (size_t)json_object_object_length(o);
	if (n > DBUS_ARGS_MAX)
		return prof_err(c, sub, "more than %d constrained arguments", DBUS_ARGS_MAX);
	if (!(d->args = calloc(n ? n : 1, sizeof(pcons))))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	json_object_object_foreach(o, k, v)
	{
		char at[400], *end = NULL;
		snprintf(at, sizeof(at), "%s/%.200s", sub, k);
		unsigned long idx = strncmp(k, "arg", 3) == 0 && k[3] >= '0' && k[3] <= '9' ? strtoul(k + 3, &end, 10)
											       : DBUS_ARGS_MAX;
		if (idx >= DBUS_ARGS_MAX || !end || *end || (k[3] == '0' && k[4]))
			return prof_err(c, at, "expected an argument position \"arg0\" to \"arg%d\"", DBUS_ARGS_MAX - 1);
		pcons *pc = &d->args[d->n_args];
		_cleanup_(scm_error_freep) scm_error *why = NULL;
		if (pcons_from_json(v, pc, &why) < 0)
			return prof_err(c, at, "%s", why && why->message ? why->message : "out of memory");
		d->n_args++;
		if (!(pc->param = strdup(k)))
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	}
	qsort(d->args, d->n_args, sizeof(pcons), cons_cmp);
	return 0;
}

static int parse_one(pctx *c, pdbus *d, json_object *o, const char *ptr)
{
	static const char *const known[] = { "bus", "destination", "path_prefix", "interface", "methods",
					     "args", "action", NULL };
	const char *bus, *dest, *path, *iface, *action;
	json_object *v = NULL;
	char sub[96];
	int r;
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, ptr, "expected a rule object, got %s", prof_type(o));
	if ((r = prof_keys(c, o, ptr, known)) || (r = prof_string(c, o, "bus", ptr, true, &bus)) ||
	    (r = prof_string(c, o, "destination", ptr, true, &dest)) ||
	    (r = prof_string(c, o, "path_prefix", ptr, true, &path)) ||
	    (r = prof_string(c, o, "interface", ptr, true, &iface)) ||
	    (r = prof_string(c, o, "action", ptr, true, &action)))
		return r;
	snprintf(sub, sizeof(sub), "%s/bus", ptr);
	if (!bus_valid(bus))
		return prof_err(c, sub, "expected \"session\", \"system\" or a D-Bus address (\"unix:path=...\"), "
				"got \"%.80s\"", bus);
	snprintf(sub, sizeof(sub), "%s/destination", ptr);
	if (dest[0] == ':')
		return prof_err(c, sub, "\"%.80s\" is a unique name, which names one connection and changes: "
				"grant a well-known name", dest);
	if (!dotted_valid(dest, true))
		return prof_err(c, sub, "expected a well-known bus name (org.example.Name), got \"%.80s\"", dest);
	if (strcmp(dest, "org.freedesktop.DBus") == 0)
		return prof_err(c, sub, "the bus daemon is never granted through the bridge (name ownership, "
				"match rules and the list of names stay the bridge's own)");
	snprintf(sub, sizeof(sub), "%s/path_prefix", ptr);
	if (!objpath_valid(path))
		return prof_err(c, sub, "expected an object path (\"/\" or \"/org/example\"), got \"%.80s\"", path);
	snprintf(sub, sizeof(sub), "%s/interface", ptr);
	if (!dotted_valid(iface, false))
		return prof_err(c, sub, "expected a D-Bus interface name (org.example.Iface), got \"%.80s\"", iface);
	snprintf(sub, sizeof(sub), "%s/action", ptr);
	if (strcmp(action, "allow") && strcmp(action, "deny"))
		return prof_err(c, sub, "expected \"allow\" or \"deny\", got \"%.80s\"", action);
	d->allow = strcmp(action, "allow") == 0;
	if (!(d->bus = strdup(bus)) || !(d->destination = strdup(dest)) || !(d->path_prefix = strdup(path)) ||
	    !(d->interface = strdup(iface)))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	json_object_object_get_ex(o, "methods", &v);
	if ((r = parse_methods(c, d, v, ptr)))
		return r;
	if (json_object_object_get_ex(o, "args", &v) && (r = parse_dbus_args(c, d, v, ptr)))
		return r;
	return 0;
}

int parse_dbus(pctx *c, json_object *a)
{
	policy_profile *p = c->p;
	if (!json_object_is_type(a, json_type_array))
		return prof_err(c, "/dbus", "expected an array of rules, got %s", prof_type(a));
	size_t n = json_object_array_length(a);
	if (n > DBUS_RULES_MAX)
		return prof_err(c, "/dbus", "%zu rules, more than %d", n, DBUS_RULES_MAX);
	if (!(p->dbus = calloc(n ? n : 1, sizeof(pdbus))))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		pdbus *d = &p->dbus[p->n_dbus++];
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/dbus/%zu", i);
		d->index = i;
		d->profile = p;
		if (!(d->pointer = strdup(ptr)))
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		int r = parse_one(c, d, json_object_array_get_idx(a, i), ptr);
		if (r)
			return r;
	}
	return 0;
}

void dbus_rules_free(policy_profile *p)
{
	for (size_t i = 0; i < p->n_dbus; i++) {
		pdbus *d = &p->dbus[i];
		free(d->bus);
		free(d->destination);
		free(d->path_prefix);
		free(d->interface);
		strv_free(d->methods);
		for (size_t k = 0; k < d->n_args; k++)
			pcons_done(&d->args[k]);
		free(d->args);
		free(d->pointer);
	}
	free(p->dbus);
	p->dbus = NULL;
	p->n_dbus = 0;
}

static json_object *rule_json(const policy_profile *p, const pdbus *d)
{
	json_object *o = json_object_new_object(), *m, *args = NULL;
	_cleanup_free_ char *origin = NULL;
	if (!o || asprintf(&origin, "profile '%s' (%s#%s, priority %d)", p->name, p->file, d->pointer,
			   p->priority) < 0) {
		json_object_put(o);
		return NULL;
	}
	if (d->all_methods) {
		m = json_object_new_string("*");
	} else {
		m = json_object_new_array();
		for (size_t i = 0; m && i < d->n_methods; i++)
			json_object_array_add(m, json_object_new_string(d->methods[i]));
	}
	if (d->n_args && (args = json_object_new_object()))
		for (size_t i = 0; i < d->n_args; i++)
			json_object_object_add(args, d->args[i].param, pcons_to_json(&d->args[i]));
	if (!m || (d->n_args && !args)) {
		json_object_put(m);
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "bus", json_object_new_string(d->bus));
	json_object_object_add(o, "destination", json_object_new_string(d->destination));
	json_object_object_add(o, "path_prefix", json_object_new_string(d->path_prefix));
	json_object_object_add(o, "interface", json_object_new_string(d->interface));
	json_object_object_add(o, "methods", m);
	if (args)
		json_object_object_add(o, "args", args);
	json_object_object_add(o, "allow", json_object_new_boolean(d->allow));
	json_object_object_add(o, "priority", json_object_new_int64(p->priority));
	json_object_object_add(o, "origin", json_object_new_string(origin));
	return o;
}

json_object *dbus_rules_json(const policy_effective *e)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; arr && i < e->n_profiles; i++) {
		const policy_profile *p = e->profiles[i];
		for (size_t k = 0; k < p->n_dbus; k++) {
			json_object *o = rule_json(p, &p->dbus[k]);
			if (!o) {
				json_object_put(arr);
				return NULL;
			}
			json_object_array_add(arr, o);
		}
	}
	return arr;
}

/* Could one call match both rules? Same bus, destination and interface,
 * one path prefix under the other, a method in common. For lint. */
bool dbus_overlap(const pdbus *x, const pdbus *y)
{
	if (strcmp(x->bus, y->bus) || strcmp(x->destination, y->destination) || strcmp(x->interface, y->interface))
		return false;
	if (!scm_path_under(x->path_prefix, y->path_prefix) && !scm_path_under(y->path_prefix, x->path_prefix))
		return false;
	if (x->all_methods || y->all_methods)
		return true;
	for (size_t i = 0; i < x->n_methods; i++)
		if (strv_contains(y->methods, x->methods[i]))
			return true;
	return false;
}
