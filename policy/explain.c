/* explain.c: the effective profile and single decisions as JSON, with the
 * origin of every rule and what it overrode, plus a text rendering. The
 * same JSON travels from scmd (policy.effective, policy.explain) to
 * scmctl, which prints it with policy_explain_print(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *rule_json(const prule *r)
{
	json_object *o = json_object_new_object();
	unsigned col = 0, line = profile_line(r->profile, r->pointer, &col);
	json_object_object_add(o, "profile", jstr(r->profile->name));
	json_object_object_add(o, "priority", json_object_new_int(r->profile->priority));
	json_object_object_add(o, "file", jstr(r->profile->file));
	json_object_object_add(o, "pointer", jstr(r->pointer));
	if (line)
		json_object_object_add(o, "line", json_object_new_int((int)line));
	json_object_object_add(o, "service", jstr(r->service));
	json_object_object_add(o, "action", jstr(r->allow ? "allow" : "deny"));
	if (r->all_methods) {
		json_object_object_add(o, "methods", jstr("*"));
	} else {
		json_object *ms = json_object_new_array();
		for (size_t i = 0; i < r->n_methods; i++)
			json_object_array_add(ms, jstr(r->methods[i]));
		json_object_object_add(o, "methods", ms);
	}
	if (r->n_args) {
		json_object *a = json_object_new_object();
		for (size_t i = 0; i < r->n_args; i++)
			json_object_object_add(a, r->args[i].param, pcons_to_json(&r->args[i]));
		json_object_object_add(o, "args", a);
	}
	_cleanup_free_ char *origin = rule_origin(r);
	json_object_object_add(o, "origin", jstr(origin));
	return o;
}

static json_object *rules_json(const prule *const *r, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, rule_json(r[i]));
	return a;
}

static const char *state_name(emethod_state s)
{
	switch (s) {
	case EM_ALLOW:
		return "allow";
	case EM_DENY:
		return "deny";
	case EM_CONFLICT:
		return "conflict";
	default:
		return "default-deny";
	}
}

static json_object *method_json(const emethod *m)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "method", jstr(m->name));
	json_object_object_add(o, "decision", jstr(state_name(m->state)));
	json_object_object_add(o, "rule", m->winner ? rule_json(m->winner) : NULL);
	if (m->n_ties)
		json_object_object_add(o, m->state == EM_CONFLICT ? "conflicts_with" : "agrees_with",
				       rules_json(m->ties, m->n_ties));
	json_object_object_add(o, "overrode", rules_json(m->overrode, m->n_overrode));
	return o;
}

static json_object *service_json(const eservice *s)
{
	json_object *o = json_object_new_object(), *ms = json_object_new_array();
	json_object_object_add(o, "service", jstr(s->name));
	json_object_object_add(o, "allowed", json_object_new_boolean(s->allowed));
	json_object_object_add(o, "origin", jstr(s->origin));
	json_object_object_add(o, "grant", s->grant_json ? json_tokener_parse(s->grant_json) : NULL);
	for (size_t i = 0; i < s->n_methods; i++)
		json_object_array_add(ms, method_json(&s->methods[i]));
	json_object_object_add(o, "methods", ms);
	return o;
}

static json_object *setting_json(const psetting *s)
{
	json_object *o = json_object_new_object();
	_cleanup_free_ char *origin = setting_origin(s);
	json_object_object_add(o, "profile", jstr(s->profile->name));
	json_object_object_add(o, "priority", json_object_new_int(s->profile->priority));
	json_object_object_add(o, "file", jstr(s->profile->file));
	json_object_object_add(o, "pointer", jstr(s->pointer));
	json_object_object_add(o, "value", jstr(s->value));
	json_object_object_add(o, "origin", jstr(origin));
	return o;
}

int policy_effective_to_json(const policy_effective *e, struct json_object **ret,
			     scm_error **ret_err)
{
	json_object *o = json_object_new_object(), *ps = json_object_new_array(),
		    *ss = json_object_new_array(), *sb = json_object_new_array();
	if (!o || !ps || !ss || !sb) {
		json_object_put(o);
		json_object_put(ps);
		json_object_put(ss);
		json_object_put(sb);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < e->n_profiles; i++) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "name", jstr(e->profiles[i]->name));
		json_object_object_add(p, "priority", json_object_new_int(e->profiles[i]->priority));
		json_object_object_add(p, "file", jstr(e->profiles[i]->file));
		json_object_array_add(ps, p);
	}
	json_object_object_add(o, "profiles", ps);
	for (size_t i = 0; i < e->n_services; i++)
		json_object_array_add(ss, service_json(&e->services[i]));
	json_object_object_add(o, "services", ss);
	/* glob rules also decide services unknown today */
	json_object_object_add(o, "globs", rules_json(e->globs, e->n_globs));
	for (size_t i = 0; i < e->n_settings; i++) {
		const esetting *es = &e->settings[i];
		json_object *s = json_object_new_object();
		json_object_object_add(s, "setting", jstr(es->winner->key));
		json_object_object_add(s, "value", jstr(es->value));
		json_object_object_add(s, "conflict", json_object_new_boolean(es->conflict));
		json_object_object_add(s, "rule", setting_json(es->winner));
		json_object *t = json_object_new_array(), *ov = json_object_new_array();
		for (size_t k = 0; k < es->n_ties; k++)
			json_object_array_add(t, setting_json(es->ties[k]));
		for (size_t k = 0; k < es->n_overrode; k++)
			json_object_array_add(ov, setting_json(es->overrode[k]));
		json_object_object_add(s, es->conflict ? "conflicts_with" : "agrees_with", t);
		json_object_object_add(s, "overrode", ov);
		json_object_array_add(sb, s);
	}
	json_object_object_add(o, "sandbox", sb);
	/* merge order: what a gfx grant carries (docs/policy.md) */
	json_object_object_add(o, "clipboard", clip_rules_json(e));
	/* merge order: what a dbus bridge grant carries (docs/dbus.md) */
	json_object_object_add(o, "dbus", dbus_rules_json(e));
	json_object_object_add(o, "conflicts", json_object_new_int64((int64_t)e->n_conflicts));
	*ret = o;
	return 0;
}

int policy_explain(const policy_effective *e, const char *service, const char *method,
		   const char *args_json, struct json_object **ret, scm_error **ret_err)
{
	json_object *args = NULL;
	policy_decision d = { 0 };
	/* "@clipboard FROM TO": a clipboard flow (no service has an '@'). */
	if (service && strcmp(service, "@clipboard") == 0)
		return clip_explain(e, method, args_json, ret, ret_err);
	if (!service || !name_valid(service, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "bad service name \"%.80s\"", service ? service : "");
	if (method && !name_valid(method, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "bad method name \"%.80s\"", method);
	if (args_json) {
		args = json_tokener_parse(args_json);
		if (!json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			return scm_fail(ret_err, SCM_E_INVALID, "arguments are not a JSON object: %.80s", args_json);
		}
	}
	int r = policy_decide(e, service, &d);
	if (r < 0) {
		json_object_put(args);
		return scm_fail(ret_err, r, "decision failed");
	}
	const eservice *s = d.priv_ ? d.priv_ : effective_lookup(e, service);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "service", jstr(service));
	json_object_object_add(o, "method", jstr(method));
	if (!method) {
		json_object_object_add(o, "decision", jstr(d.allowed ? "allow" : "deny"));
		json_object_object_add(o, "origin", jstr(d.origin));
		json_object_object_add(o, "grant", d.grant_json ? json_tokener_parse(d.grant_json) : NULL);
		json_object *ms = json_object_new_array();
		for (size_t i = 0; i < s->n_methods; i++)
			json_object_array_add(ms, method_json(&s->methods[i]));
		json_object_object_add(o, "methods", ms);
	} else {
		const emethod *m = NULL;
		for (size_t i = 0; i < s->n_methods && !m; i++)
			if (strcmp(s->methods[i].name, method) == 0)
				m = &s->methods[i];
		for (size_t i = 0; i < s->n_methods && !m && !s->in_idl; i++)
			if (strcmp(s->methods[i].name, "*") == 0)
				m = &s->methods[i];
		_cleanup_free_ char *reason = NULL;
		r = policy_check_call(e, service, method, args, &reason);
		if (r < 0) {
			json_object_put(o);
			json_object_put(args);
			policy_decision_clear(&d);
			return scm_fail(ret_err, r, "decision failed");
		}
		json_object_object_add(o, "decision", jstr(r == 0 ? "allow" : "deny"));
		json_object_object_add(o, "origin", jstr(reason));
		json_object_object_add(o, "state", jstr(m ? state_name(m->state) : "default-deny"));
		json_object_object_add(o, "rule", m && m->winner ? rule_json(m->winner) : NULL);
		if (m && m->n_ties)
			json_object_object_add(o, m->state == EM_CONFLICT ? "conflicts_with" : "agrees_with",
					       rules_json(m->ties, m->n_ties));
		json_object_object_add(o, "overrode", m ? rules_json(m->overrode, m->n_overrode)
							: json_object_new_array());
		json_object *a = json_object_new_object();
		bool constrained = m && m->state == EM_ALLOW && m->winner->n_args > 0;
		json_object_object_add(a, "constrained", json_object_new_boolean(constrained));
		json_object_object_add(a, "given", args ? json_object_get(args) : NULL);
		if (constrained)
			json_object_object_add(a, "ok", json_object_new_boolean(r == 0));
		json_object_object_add(o, "args", a);
	}
	json_object_put(args);
	policy_decision_clear(&d);
	*ret = o;
	return 0;
}

static const char *gs(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

static void print_rules(FILE *f, const char *title, json_object *o, const char *key)
{
	json_object *a;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) == 0)
		return;
	fprintf(f, "  %s:\n", title);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *r = json_object_array_get_idx(a, i);
		fprintf(f, "    %s %s: %s\n", gs(r, "action") ? gs(r, "action") : "?",
			gs(r, "service") ? gs(r, "service") : "?", gs(r, "origin") ? gs(r, "origin") : "?");
	}
}

void policy_explain_print(struct json_object *x, FILE *f)
{
	json_object *rule = NULL, *grant = NULL, *args = NULL, *ms = NULL;
	const char *svc = gs(x, "service"), *m = gs(x, "method");
	if (svc && strcmp(svc, "@clipboard") == 0) {
		clip_explain_print(x, f);
		return;
	}
	fprintf(f, "%s%s%s: %s\n", svc ? svc : "?", m ? "." : "", m ? m : "",
		gs(x, "decision") ? gs(x, "decision") : "?");
	if (gs(x, "origin"))
		fprintf(f, "  why: %s\n", gs(x, "origin"));
	if (json_object_object_get_ex(x, "rule", &rule) && rule) {
		json_object *ra = NULL;
		fprintf(f, "  rule: %s %s methods %s%s%s\n", gs(rule, "action"), gs(rule, "service"),
			json_object_to_json_string_ext(json_object_object_get_ex(rule, "methods", &ra) ? ra : NULL,
						       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			json_object_object_get_ex(rule, "args", &ra) ? " args " : "",
			json_object_object_get_ex(rule, "args", &ra) ? json_object_to_json_string_ext(ra, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "");
		fprintf(f, "  from: %s\n", gs(rule, "origin"));
	}
	print_rules(f, "conflicts with (equal priority, fails closed)", x, "conflicts_with");
	print_rules(f, "agrees with", x, "agrees_with");
	print_rules(f, "overrode", x, "overrode");
	if (json_object_object_get_ex(x, "args", &args) && args) {
		json_object *c = NULL, *ok = NULL;
		if (json_object_object_get_ex(args, "constrained", &c) && json_object_get_boolean(c))
			fprintf(f, "  arguments: %s\n",
				json_object_object_get_ex(args, "ok", &ok) && json_object_get_boolean(ok)
					? "satisfy the rule's constraints" : "do NOT satisfy the rule's constraints");
	}
	if (json_object_object_get_ex(x, "grant", &grant) && grant)
		fprintf(f, "  grant: %s\n", json_object_to_json_string_ext(grant, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (json_object_object_get_ex(x, "methods", &ms) && json_object_is_type(ms, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(ms); i++) {
			json_object *mm = json_object_array_get_idx(ms, i), *r2 = NULL;
			json_object_object_get_ex(mm, "rule", &r2);
			fprintf(f, "  %-16s %-12s %s\n", gs(mm, "method"), gs(mm, "decision"),
				r2 ? gs(r2, "origin") : "no rule");
		}
	}
}

static const char *gs0(json_object *o, const char *k)
{
	const char *s = gs(o, k);
	return s ? s : "";
}

void policy_effective_print(struct json_object *x, FILE *f)
{
	json_object *a, *v;
	if (json_object_object_get_ex(x, "profiles", &a)) {
		fprintf(f, "profiles (merge order):");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *p = json_object_array_get_idx(a, i), *pr;
			json_object_object_get_ex(p, "priority", &pr);
			fprintf(f, "%s %s (priority %d)", i ? "," : "", gs0(p, "name"), json_object_get_int(pr));
		}
		fprintf(f, "\n");
	}
	if (json_object_object_get_ex(x, "services", &a))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *s = json_object_array_get_idx(a, i), *ms, *al;
			json_object_object_get_ex(s, "allowed", &al);
			fprintf(f, "service %s: %s\n", gs0(s, "service"), json_object_get_boolean(al) ? "allowed" : "denied");
			if (!json_object_object_get_ex(s, "methods", &ms))
				continue;
			for (size_t k = 0; k < json_object_array_length(ms); k++) {
				json_object *m = json_object_array_get_idx(ms, k), *rule = NULL, *ov, *args = NULL;
				json_object_object_get_ex(m, "rule", &rule);
				fprintf(f, "  %-16s %-12s %s", gs0(m, "method"), gs0(m, "decision"),
				       rule ? gs0(rule, "origin") : "no rule");
				if (rule && json_object_object_get_ex(rule, "args", &args))
					fprintf(f, " args %s", json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
				fprintf(f, "\n");
				if (json_object_object_get_ex(m, "conflicts_with", &ov))
					for (size_t j = 0; j < json_object_array_length(ov); j++)
						fprintf(f, "      conflicts with %s\n", gs0(json_object_array_get_idx(ov, j), "origin"));
				if (json_object_object_get_ex(m, "overrode", &ov))
					for (size_t j = 0; j < json_object_array_length(ov); j++) {
						json_object *r = json_object_array_get_idx(ov, j);
						fprintf(f, "      overrode %s %s\n", gs0(r, "action"), gs0(r, "origin"));
					}
			}
		}
	if (json_object_object_get_ex(x, "sandbox", &a) && json_object_array_length(a)) {
		fprintf(f, "sandbox:\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *s = json_object_array_get_idx(a, i), *rule = NULL, *c = NULL, *ov;
			json_object_object_get_ex(s, "rule", &rule);
			json_object_object_get_ex(s, "conflict", &c);
			fprintf(f, "  %-28s %-12s %s%s\n", gs0(s, "setting"), gs0(s, "value"),
			       rule ? gs0(rule, "origin") : "", json_object_get_boolean(c) ? " CONFLICT (fails closed)" : "");
			if (json_object_object_get_ex(s, "overrode", &ov))
				for (size_t j = 0; j < json_object_array_length(ov); j++) {
					json_object *r = json_object_array_get_idx(ov, j);
					fprintf(f, "      overrode %s from %s\n", gs0(r, "value"), gs0(r, "origin"));
				}
		}
	}
	if (json_object_object_get_ex(x, "clipboard", &a) && json_object_array_length(a)) {
		fprintf(f, "clipboard (first match decides):\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *r = json_object_array_get_idx(a, i), *al = NULL;
			json_object_object_get_ex(r, "allow", &al);
			fprintf(f, "  %-5s %s -> %s  %s\n", json_object_get_boolean(al) ? "allow" : "deny", gs0(r, "from"),
				gs0(r, "to"), gs0(r, "origin"));
		}
	}
	if (json_object_object_get_ex(x, "conflicts", &v))
		fprintf(f, "conflicts: %d\n", json_object_get_int(v));
}
