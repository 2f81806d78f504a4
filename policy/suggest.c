/* suggest.c: from an audit log (JSON lines written by scmd) to the allow
 * rules that would have let its denied connects through, grouped by the
 * caller's profile set and service, for a human to review. Nothing is
 * applied. The log is untrusted input: every line is checked and a bad one
 * is an error naming its line number. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

#define LINE_MAX_BYTES (64u * 1024u)

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

static void add_unique(json_object *arr, const char *s)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), s) == 0)
			return;
	json_object_array_add(arr, json_object_new_string(s));
}

/* One denied connect into the groups object {"profiles|service": group}. */
static int fold(json_object *groups, json_object *ev, const char *name, size_t lineno,
		scm_error **ret_err)
{
	json_object *profs, *g;
	const char *svc = get_str(ev, "service"), *caller = get_str(ev, "caller"),
		   *method = get_str(ev, "method");
	if (!svc || !name_valid(svc, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: /service: expected a service name", name,
				lineno);
	if (method && !name_valid(method, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: /method: bad method name", name, lineno);
	if (!json_object_object_get_ex(ev, "profiles", &profs) || !json_object_is_type(profs, json_type_array))
		return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: /profiles: expected an array of names", name,
				lineno);
	/* The group's key: "profile,profile,|service". */
	char key[4096];
	size_t n = 0, l;
	for (size_t i = 0; i < json_object_array_length(profs); i++) {
		json_object *p = json_object_array_get_idx(profs, i);
		if (!json_object_is_type(p, json_type_string) || !name_valid(json_object_get_string(p), SCM_NAME_MAX, NAME_RULE))
			return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: /profiles/%zu: expected a profile name",
					name, lineno, i);
		l = strlen(json_object_get_string(p));
		if (n + l + 1 >= sizeof(key))
			return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: /profiles: too long", name, lineno);
		memcpy(key + n, json_object_get_string(p), l);
		key[n + l] = ',';
		n += l + 1;
	}
	l = strlen(svc);
	if (n + 1 + l >= sizeof(key))
		return scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: too long", name, lineno);
	key[n] = '|';
	memcpy(key + n + 1, svc, l + 1);
	if (!json_object_object_get_ex(groups, key, &g)) {
		g = json_object_new_object();
		json_object_object_add(g, "profiles", json_object_get(profs));
		json_object_object_add(g, "service", json_object_new_string(svc));
		json_object_object_add(g, "denials", json_object_new_int(0));
		json_object_object_add(g, "callers", json_object_new_array());
		json_object_object_add(g, "methods", json_object_new_array());
		json_object_object_add(g, "first_line", json_object_new_int64((int64_t)lineno));
		json_object_object_add(groups, key, g);
	}
	json_object *v;
	json_object_object_get_ex(g, "denials", &v);
	json_object_int_inc(v, 1);
	json_object_object_get_ex(g, "callers", &v);
	if (caller)
		add_unique(v, caller);
	json_object_object_get_ex(g, "methods", &v);
	add_unique(v, method ? method : "*");
	return 0;
}

static json_object *rule_for(json_object *g)
{
	json_object *ms, *r = json_object_new_object();
	json_object_object_get_ex(g, "methods", &ms);
	bool all = false;
	for (size_t i = 0; i < json_object_array_length(ms); i++)
		all = all || strcmp(json_object_get_string(json_object_array_get_idx(ms, i)), "*") == 0;
	json_object_object_add(r, "service", json_object_new_string(get_str(g, "service")));
	json_object_object_add(r, "methods", all ? json_object_new_string("*") : json_object_get(ms));
	json_object_object_add(r, "action", json_object_new_string("allow"));
	return r;
}

int policy_suggest(FILE *audit, const char *audit_name, struct json_object **ret,
		   scm_error **ret_err)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	json_object *groups = json_object_new_object();
	int r = 0;
	if (!groups)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	while ((len = getline(&line, &cap, audit)) >= 0) {
		lineno++;
		if ((size_t)len > LINE_MAX_BYTES) {
			r = scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: line longer than %u bytes", audit_name,
				     lineno, LINE_MAX_BYTES);
			break;
		}
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		json_tokener *tok = json_tokener_new_ex(SCM_JSON_DEPTH_MAX);
		if (!tok) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		json_object *ev = json_tokener_parse_ex(tok, line, (int)len);
		bool ok = ev && json_tokener_get_error(tok) == json_tokener_success;
		json_tokener_free(tok);
		if (!ok || !json_object_is_type(ev, json_type_object)) {
			json_object_put(ev);
			r = scm_fail(ret_err, SCM_E_INVALID, "%s:%zu: not a JSON object", audit_name, lineno);
			break;
		}
		const char *event = get_str(ev, "event"), *decision = get_str(ev, "decision");
		if (event && decision && strcmp(event, "connect") == 0 && strcmp(decision, "deny") == 0)
			r = fold(groups, ev, audit_name, lineno, ret_err);
		json_object_put(ev);
		if (r)
			break;
	}
	if (r == 0 && ferror(audit))
		r = scm_fail(ret_err, -EIO, "%s: read error", audit_name);
	if (r) {
		json_object_put(groups);
		return r;
	}
	json_object *out = json_object_new_array();
	json_object_object_foreach(groups, k, g)
	{
		(void)k;
		json_object *s = json_object_get(g);
		json_object_object_add(s, "rule", rule_for(g));
		json_object_array_add(out, s);
	}
	json_object_put(groups);
	*ret = out;
	return 0;
}
