/* clipboard.c: the clipboard rules of profiles ("clipboard": [{"from",
 * "to", "action"}]), merged like every other rule: priority from high to
 * low, then profile name, then position in the file; the first rule that
 * matches a flow decides it, and a rule of the other action at the same
 * priority that matches it too is a conflict, which denies.
 *
 * scmd does not decide flows itself: it hands a container's effective
 * rules to the graphics proxy in the grant of the container's gfx channel
 * (scm/policy-hook.c), and the proxy decides each transfer with both
 * ends' rules through scm_clip_decide(), which explain uses here too. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <scm-internal/clipflow.h>
#include <scm/macro.h>

#include "internal.h"

/* Is there a name both globs match? A walk over (i, j) positions of the
 * two patterns, memoised: at most 129 x 129 states. "@viewer" is matched
 * by itself only (scm_clip_match), so it overlaps itself only. */
static bool overlap_at(const char *a, size_t i, size_t na, const char *b, size_t j, size_t nb, signed char *memo)
{
	signed char *m = &memo[i * (nb + 1) + j];
	bool r;
	if (*m)
		return *m > 0;
	if (i == na && j == nb)
		r = true;
	else if (i < na && a[i] == '*')
		/* the star takes nothing, or one character of b's part */
		r = overlap_at(a, i + 1, na, b, j, nb, memo) || (j < nb && overlap_at(a, i, na, b, j + 1, nb, memo));
	else if (j < nb && b[j] == '*')
		r = overlap_at(a, i, na, b, j + 1, nb, memo) || (i < na && overlap_at(a, i + 1, na, b, j, nb, memo));
	else if (i == na || j == nb)
		r = false;
	else
		r = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && overlap_at(a, i + 1, na, b, j + 1, nb, memo);
	*m = r ? 1 : -1;
	return r;
}

bool clip_overlap(const char *a, const char *b)
{
	bool va = strcmp(a, SCM_CLIP_VIEWER) == 0, vb = strcmp(b, SCM_CLIP_VIEWER) == 0;
	if (va || vb)
		return va && vb;
	size_t na = strlen(a), nb = strlen(b);
	if (na > SCM_NAME_MAX || nb > SCM_NAME_MAX)
		return true; /* cannot happen (parse refuses them); say "may" */
	signed char memo[(SCM_NAME_MAX + 1) * (SCM_NAME_MAX + 1)];
	memset(memo, 0, (na + 1) * (nb + 1));
	return overlap_at(a, 0, na, b, 0, nb, memo);
}

json_object *clip_rules_json(const policy_effective *e)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; arr && i < e->n_profiles; i++) {
		const policy_profile *p = e->profiles[i];
		for (size_t k = 0; k < p->n_clips; k++) {
			const pclip *c = &p->clips[k];
			json_object *o = json_object_new_object();
			_cleanup_free_ char *origin = NULL;
			if (asprintf(&origin, "profile '%s' (%s#%s, priority %d)", p->name, p->file, c->pointer,
				     p->priority) < 0)
				origin = NULL;
			if (!o || !origin) {
				json_object_put(o);
				json_object_put(arr);
				return NULL;
			}
			json_object_object_add(o, "from", json_object_new_string(c->from));
			json_object_object_add(o, "to", json_object_new_string(c->to));
			json_object_object_add(o, "allow", json_object_new_boolean(c->allow));
			json_object_object_add(o, "priority", json_object_new_int64(p->priority));
			json_object_object_add(o, "origin", json_object_new_string(origin));
			json_object_array_add(arr, o);
		}
	}
	return arr;
}

/* The kinds of rule a grant can carry, and what builds each: one entry a
 * kind, so a new kind is a line here and a parser, never a special case
 * in scmd or a provider's name. */
static const struct {
	const char *kind;
	json_object *(*build)(const policy_effective *e);
} grant_rule_kinds[] = {
	{ "clipboard", clip_rules_json },
	{ "dbus", dbus_rules_json },
};

bool policy_grant_rule_known(const char *kind)
{
	for (size_t i = 0; i < sizeof(grant_rule_kinds) / sizeof(grant_rule_kinds[0]); i++)
		if (strcmp(grant_rule_kinds[i].kind, kind) == 0)
			return true;
	return false;
}

int policy_grant_rules(const policy_effective *e, const char *kind, json_object **ret, scm_error **ret_err)
{
	for (size_t i = 0; i < sizeof(grant_rule_kinds) / sizeof(grant_rule_kinds[0]); i++) {
		if (strcmp(grant_rule_kinds[i].kind, kind) != 0)
			continue;
		json_object *j = grant_rule_kinds[i].build(e);
		if (!j)
			return scm_fail(ret_err, -ENOMEM, "out of memory");
		*ret = j;
		return 0;
	}
	return scm_fail(ret_err, SCM_E_INVALID, "no kind of profile rule is called '%s' (known: clipboard, dbus)", kind);
}

/* {"service":"@clipboard","from","to","decision","origin","rule":{..}|null,
 *  "matching":[every rule that matches the flow, merge order]} */
int clip_explain(const policy_effective *e, const char *from, const char *to, json_object **ret,
		 scm_error **ret_err)
{
	char why[1024];
	if (!from || !to || (!name_valid(from, SCM_NAME_MAX, NAME_FILE) && strcmp(from, SCM_CLIP_VIEWER)) ||
	    (!name_valid(to, SCM_NAME_MAX, NAME_FILE) && strcmp(to, SCM_CLIP_VIEWER)))
		return scm_fail(ret_err, SCM_E_INVALID,
				"explain @clipboard FROM TO: FROM and TO are endpoint names or \"@viewer\"");
	json_object *rules = clip_rules_json(e), *matching = json_object_new_array(), *o = json_object_new_object();
	scm_clip_rules cr;
	int pr = !rules || !matching || !o ? scm_fail(ret_err, -ENOMEM, "out of memory")
					      : scm_clip_rules_parse(rules, &cr, ret_err);
	if (pr != 0) {
		json_object_put(rules);
		json_object_put(matching);
		json_object_put(o);
		return pr;
	}
	bool allow = scm_clip_decide(&cr, from, to, why, sizeof(why));
	json_object *rule = NULL;
	for (size_t i = 0; i < cr.n; i++) {
		if (!scm_clip_match(cr.v[i].from, from) || !scm_clip_match(cr.v[i].to, to))
			continue;
		json_object *r = json_object_array_get_idx(rules, i);
		if (!rule)
			rule = json_object_get(r);
		json_object_array_add(matching, json_object_get(r));
	}
	scm_clip_rules_done(&cr);
	json_object_put(rules);
	json_object_object_add(o, "service", json_object_new_string("@clipboard"));
	json_object_object_add(o, "from", json_object_new_string(from));
	json_object_object_add(o, "to", json_object_new_string(to));
	json_object_object_add(o, "decision", json_object_new_string(allow ? "allow" : "deny"));
	json_object_object_add(o, "origin", json_object_new_string(why));
	json_object_object_add(o, "rule", rule);
	json_object_object_add(o, "matching", matching);
	json_object_object_add(
		o, "note",
		json_object_new_string(strcmp(from, SCM_CLIP_VIEWER) && strcmp(to, SCM_CLIP_VIEWER)
					       ? "this is one end's decision: a flow between two apps needs both"
					       : "the viewer has no profile: the app's decision is the flow's"));
	*ret = o;
	return 0;
}

static const char *gs(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

void clip_explain_print(json_object *x, FILE *f)
{
	json_object *m = NULL;
	fprintf(f, "clipboard %s -> %s: %s\n", gs(x, "from") ? gs(x, "from") : "?", gs(x, "to") ? gs(x, "to") : "?",
		gs(x, "decision") ? gs(x, "decision") : "?");
	if (gs(x, "origin"))
		fprintf(f, "  why: %s\n", gs(x, "origin"));
	if (json_object_object_get_ex(x, "matching", &m) && json_object_array_length(m) > 1) {
		fprintf(f, "  also matching (decided by the first):\n");
		for (size_t i = 1; i < json_object_array_length(m); i++) {
			json_object *r = json_object_array_get_idx(m, i), *a;
			json_object_object_get_ex(r, "allow", &a);
			fprintf(f, "    %s %s -> %s: %s\n", json_object_get_boolean(a) ? "allow" : "deny",
				gs(r, "from"), gs(r, "to"), gs(r, "origin"));
		}
	}
	if (gs(x, "note"))
		fprintf(f, "  note: %s\n", gs(x, "note"));
}
