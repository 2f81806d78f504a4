/* rules.c: the bridge's decision on one call, from the grant's rules.
 *
 * The rules come in merge order (policy/dbus.c): the first that matches
 * the target (bus, destination, object path under the prefix, interface,
 * method) decides; an equal-priority rule of the other action that
 * matches too makes a conflict, which denies, as everywhere in scm; no
 * match denies. The winning allow rule's argument constraints are then
 * checked with scm_constraint_check(), the function every provider uses,
 * on the positional arguments (arg0 is args[0]); a constraint on an
 * argument the call does not have, or on a container value, refuses. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "scm/constraint.h"

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

void br_rules_done(br_rules *r)
{
	for (size_t i = 0; i < r->n; i++) {
		br_rule *x = &r->v[i];
		free(x->bus);
		free(x->destination);
		free(x->path_prefix);
		free(x->interface);
		for (size_t k = 0; x->methods && x->methods[k]; k++)
			free(x->methods[k]);
		free(x->methods);
		json_object_put(x->args);
		free(x->origin);
	}
	free(r->v);
	*r = (br_rules){ 0 };
}

static int parse_rule(json_object *o, br_rule *x, const char **why)
{
	json_object *m, *a, *v;
	const char *s[5] = { str(o, "bus"), str(o, "destination"), str(o, "path_prefix"), str(o, "interface"),
			     str(o, "origin") };
	for (int i = 0; i < 5; i++)
		if (!s[i])
			return *why = "a rule lacks bus, destination, path_prefix, interface or origin", -EINVAL;
	if (!json_object_object_get_ex(o, "allow", &v) || !json_object_is_type(v, json_type_boolean))
		return *why = "a rule lacks allow", -EINVAL;
	x->allow = json_object_get_boolean(v);
	x->priority = json_object_object_get_ex(o, "priority", &v) ? json_object_get_int64(v) : 0;
	if (!(x->bus = strdup(s[0])) || !(x->destination = strdup(s[1])) || !(x->path_prefix = strdup(s[2])) ||
	    !(x->interface = strdup(s[3])) || !(x->origin = strdup(s[4])))
		return -ENOMEM;
	if (!json_object_object_get_ex(o, "methods", &m))
		return *why = "a rule lacks methods", -EINVAL;
	if (json_object_is_type(m, json_type_array)) {
		size_t n = json_object_array_length(m);
		if (!(x->methods = calloc(n + 1, sizeof(char *))))
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(m, i);
			if (!json_object_is_type(e, json_type_string))
				return *why = "a method is not a string", -EINVAL;
			if (!(x->methods[i] = strdup(json_object_get_string(e))))
				return -ENOMEM;
		}
	} else if (!json_object_is_type(m, json_type_string) || strcmp(json_object_get_string(m), "*") != 0) {
		return *why = "methods is neither a list nor \"*\"", -EINVAL;
	}
	if (json_object_object_get_ex(o, "args", &a)) {
		if (!json_object_is_type(a, json_type_object))
			return *why = "args is not an object", -EINVAL;
		x->args = json_object_get(a);
	}
	return 0;
}

int br_rules_parse(json_object *arr, br_rules *ret, const char **ret_why)
{
	br_rules r = { 0 };
	const char *why = "the rules are not a list";
	if (!json_object_is_type(arr, json_type_array)) {
		*ret_why = why;
		return -EINVAL;
	}
	size_t n = json_object_array_length(arr);
	if (!(r.v = calloc(n ? n : 1, sizeof(br_rule))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		r.n++;
		int e = json_object_is_type(o, json_type_object) ? parse_rule(o, &r.v[i], &why)
								  : (why = "a rule is not an object", -EINVAL);
		if (e < 0) {
			br_rules_done(&r);
			*ret_why = why;
			return e;
		}
	}
	*ret = r;
	return 0;
}

static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strcmp(prefix, "/") == 0)
		return path[0] == '/';
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool matches(const br_rule *x, const br_target *t)
{
	if (strcmp(x->bus, t->bus) || strcmp(x->destination, t->destination) || strcmp(x->interface, t->interface) ||
	    !path_under(t->path, x->path_prefix))
		return false;
	if (!x->methods)
		return true;
	for (size_t i = 0; x->methods[i]; i++)
		if (strcmp(x->methods[i], t->method) == 0)
			return true;
	return false;
}

static bool decide(const br_rules *r, const br_target *t, json_object *args, bool check_args, char *why, size_t whysz)
{
	const br_rule *win = NULL;
	for (size_t i = 0; i < r->n; i++) {
		const br_rule *x = &r->v[i];
		if (!matches(x, t))
			continue;
		if (!win) {
			win = x;
			continue;
		}
		if (x->priority == win->priority && x->allow != win->allow) {
			snprintf(why, whysz, "%s.%s on %s %s: %s and %s disagree at the same priority (a conflict denies)",
				 t->interface, t->method, t->destination, t->path, win->origin, x->origin);
			return false;
		}
	}
	if (!win) {
		snprintf(why, whysz, "%s.%s on %s %s (bus %s): no dbus rule of the caller's profiles allows it "
			 "(deny by default)", t->interface, t->method, t->destination, t->path, t->bus);
		return false;
	}
	if (!win->allow) {
		snprintf(why, whysz, "%s.%s on %s %s: denied by %s", t->interface, t->method, t->destination, t->path,
			 win->origin);
		return false;
	}
	if (win->args && check_args) {
		json_object_object_foreach(win->args, k, c)
		{
			size_t pos = strncmp(k, "arg", 3) == 0 ? strtoul(k + 3, NULL, 10) : SIZE_MAX;
			json_object *v = json_object_is_type(args, json_type_array) &&
							 pos < json_object_array_length(args)
						 ? json_object_array_get_idx(args, pos)
						 : NULL;
			const char *bad = v ? scm_constraint_check(c, v) : "is missing";
			if (bad) {
				snprintf(why, whysz, "%s.%s on %s %s: %s%s%.120s %s (constrained by %s)", t->interface,
					 t->method, t->destination, t->path, k, v ? " " : "",
					 v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "", bad,
					 win->origin);
				return false;
			}
		}
	}
	snprintf(why, whysz, "allowed by %s", win->origin);
	return true;
}

bool br_decide(const br_rules *r, const br_target *t, json_object *args, char *why, size_t whysz)
{
	return decide(r, t, args, true, why, whysz);
}

bool br_decide_member(const br_rules *r, const br_target *t, char *why, size_t whysz)
{
	return decide(r, t, NULL, false, why, whysz);
}
