/* decide.c: decisions from a compiled effective profile: connects (a hash
 * lookup returning precomputed strings), single calls (what the provider
 * skeleton would say), and the re-check of a live channel's grant after a
 * reload. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

/* A service no exact rule and no IDL named: only globs can match it. Its
 * entry is compiled on the spot (rare: unknown services). */
static int compile_slow(const policy_effective *e, const char *service, eservice *ret)
{
	const prule **cands = calloc(e->n_globs + 1, sizeof(prule *));
	size_t n = 0;
	if (!cands)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_globs; i++)
		if (glob_match(e->globs[i]->service, service))
			cands[n++] = e->globs[i];
	int r = eservice_compile(e, service, cands, n, ret);
	free(cands);
	return r;
}

/* The entry for service: from the table, or compiled into *tmp (which the
 * caller then owns). */
static int find_service(const policy_effective *e, const char *service, eservice **tmp,
			const eservice **ret)
{
	const eservice *s = effective_lookup(e, service);
	if (s) {
		*ret = s;
		return 0;
	}
	eservice *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	int r = compile_slow(e, service, t);
	if (r < 0) {
		free(t);
		return r;
	}
	*tmp = t;
	*ret = t;
	return 0;
}

int policy_decide(const policy_effective *e, const char *service, policy_decision *ret)
{
	const eservice *s;
	eservice *tmp = NULL;
	if (!service || !name_valid(service, SCM_NAME_MAX, NAME_RULE)) {
		*ret = (policy_decision){ .allowed = false, .origin = "denied: not a valid service name" };
		return SCM_E_DENIED;
	}
	int r = find_service(e, service, &tmp, &s);
	if (r < 0)
		return r;
	*ret = (policy_decision){ .allowed = s->allowed, .origin = s->origin,
				  .grant_json = s->allowed ? s->grant_json : NULL, .priv_ = tmp };
	return s->allowed ? 0 : SCM_E_DENIED;
}

void policy_decision_clear(policy_decision *d)
{
	if (!d)
		return;
	if (d->priv_) {
		eservice_done(d->priv_);
		free(d->priv_);
	}
	*d = (policy_decision){ 0 };
}

static const emethod *find_method(const eservice *s, const char *method)
{
	const emethod *star = NULL;
	for (size_t i = 0; i < s->n_methods; i++) {
		if (strcmp(s->methods[i].name, method) == 0)
			return &s->methods[i];
		if (strcmp(s->methods[i].name, "*") == 0)
			star = &s->methods[i];
	}
	/* "*" only stands for methods of a service with no IDL: an IDL-known
	 * service has no methods beyond those listed */
	return s->in_idl ? NULL : star;
}

int policy_check_call(const policy_effective *e, const char *service, const char *method,
		      struct json_object *args, char **ret_reason)
{
	eservice *tmp = NULL;
	const eservice *s;
	char buf[512];
	int verdict = SCM_E_DENIED;
	if (!service || !method || !name_valid(service, SCM_NAME_MAX, NAME_RULE) || !name_valid(method, SCM_NAME_MAX, NAME_RULE)) {
		snprintf(buf, sizeof(buf), "not a valid service or method name");
		goto out_reason;
	}
	int r = find_service(e, service, &tmp, &s);
	if (r < 0)
		return r;
	const emethod *m = find_method(s, method);
	bool star_granted = s->grant_json && strncmp(s->grant_json, "{\"methods\":\"*\"", 14) == 0;
	if (m && m->state == EM_ALLOW && strcmp(m->name, "*") == 0 && !star_granted) {
		/* what the grant cannot carry is not allowed (see build_grant) */
		snprintf(buf, sizeof(buf), "denied (fail closed): %s has no IDL and denies some methods, so "
					   "\"*\" cannot be granted; name the methods", service);
	} else if (!m || m->state == EM_DEFAULT_DENY) {
		snprintf(buf, sizeof(buf), "denied by default: no rule allows %s.%s", service, method);
	} else if (m->state == EM_CONFLICT) {
		const prule *other = m->ties[0];
		for (size_t i = 0; i < m->n_ties; i++)
			if (!prule_same_effect(m->winner, m->ties[i])) {
				other = m->ties[i];
				break;
			}
		_cleanup_free_ char *a = rule_origin(m->winner), *b = rule_origin(other);
		snprintf(buf, sizeof(buf), "denied (fail closed): %s conflicts with %s at equal priority",
			 a ? a : "?", b ? b : "?");
	} else if (m->state == EM_DENY) {
		_cleanup_free_ char *o = rule_origin(m->winner);
		snprintf(buf, sizeof(buf), "denied by %s", o ? o : "?");
	} else if (!pcons_match_all(m->winner->args, m->winner->n_args, args, buf, sizeof(buf))) {
		/* buf holds the failed constraint */
	} else {
		_cleanup_free_ char *o = rule_origin(m->winner);
		snprintf(buf, sizeof(buf), "allowed by %s", o ? o : "?");
		verdict = 0;
	}
	if (tmp) {
		eservice_done(tmp);
		free(tmp);
	}
out_reason:
	if (ret_reason && !(*ret_reason = strdup(buf)))
		return -ENOMEM;
	return verdict;
}

static int recheck(const policy_effective *e, const char *service, json_object *g, char *why,
		   size_t whysz, bool *keep)
{
	json_object *ms, *cs = NULL;
	eservice *tmp = NULL;
	const eservice *s;
	*keep = false;
	if (!json_object_is_type(g, json_type_object) || !json_object_object_get_ex(g, "methods", &ms))
		return -EINVAL;
	bool wildcard = json_object_is_type(ms, json_type_string) && strcmp(json_object_get_string(ms), "*") == 0;
	if (!wildcard && !json_object_is_type(ms, json_type_array))
		return -EINVAL;
	if (json_object_object_get_ex(g, "constraints", &cs) && !json_object_is_type(cs, json_type_object))
		return -EINVAL;
	int r = find_service(e, service, &tmp, &s);
	if (r < 0)
		return r;
	*keep = true;
	/* settings took effect when the channel opened: another value needs
	 * a new channel */
	json_object *os = NULL, *ns = s->settings_json ? json_tokener_parse(s->settings_json) : NULL;
	json_object_object_get_ex(g, "settings", &os);
	if ((os || ns) && !(os && ns && json_object_equal(os, ns))) {
		snprintf(why, whysz, "the settings of %s changed", service);
		*keep = false;
		ms = NULL;
	}
	json_object_put(ns);
	/* The rules a grant carries (scmd adds them, and the engine's own
	 * grant has none) are compared on their own, below: take them out
	 * of the comparison of whole grants. */
	json_object *ors = NULL;
	if (json_object_object_get_ex(g, "rules", &ors)) {
		json_object_get(ors);
		json_object_object_del(g, "rules");
	}
	if (*keep && wildcard) {
		/* "every method": kept only if the new grant is the very same */
		json_object *ng = s->grant_json ? json_tokener_parse(s->grant_json) : NULL;
		*keep = ng && json_object_equal(ng, g);
		json_object_put(ng);
		if (!*keep)
			snprintf(why, whysz, "the grant for every method of %s changed", service);
		ms = NULL;
	}
	for (size_t i = 0; ms && *keep && i < json_object_array_length(ms); i++) {
		json_object *mj = json_object_array_get_idx(ms, i), *oc = NULL;
		const char *mn = json_object_get_string(mj);
		const emethod *m = mn ? find_method(s, mn) : NULL;
		if (!json_object_is_type(mj, json_type_string) || !m || m->state != EM_ALLOW) {
			snprintf(why, whysz, "method %s.%s is no longer allowed", service, mn ? mn : "?");
			*keep = false;
			break;
		}
		if (cs)
			json_object_object_get_ex(cs, mn, &oc);
		/* every constraint the new rule imposes must already have held,
		 * at least as strictly, in the old grant */
		for (size_t k = 0; *keep && k < m->winner->n_args; k++) {
			const pcons *nc = &m->winner->args[k];
			json_object *ocj = NULL;
			pcons old = { 0 };

			if (!oc || !json_object_object_get_ex(oc, nc->param, &ocj) ||
			    pcons_from_json(ocj, &old, NULL) < 0 || !pcons_within(&old, nc)) {
				snprintf(why, whysz, "method %s.%s: parameter %s is now constrained more tightly",
					 service, mn, nc->param);
				*keep = false;
			}
			pcons_done(&old);
		}
	}
	/* A grant may carry the caller's rules of some kinds (its "rules"
	 * member, asked for by the interface: e.g. the graphics proxy's
	 * clipboard rules). The provider decides by them for as long as the
	 * channel lives, so any change cuts it (fail closed). */
	if (*keep && ors && json_object_is_type(ors, json_type_object)) {
		json_object_object_foreach(ors, kind, old_rules)
		{
			json_object *now = NULL;
			if (!*keep)
				break;
			if (policy_grant_rules(e, kind, &now, NULL) != 0 || !json_object_equal(now, old_rules)) {
				snprintf(why, whysz, "the %s rules for %s changed", kind, service);
				*keep = false;
			}
			json_object_put(now);
		}
	}
	json_object_put(ors);
	if (tmp) {
		eservice_done(tmp);
		free(tmp);
	}
	return 0;
}

int policy_grant_recheck(const policy_effective *e, const char *service, const char *grant_json,
			 bool *ret_keep, char **ret_reason, scm_error **ret_err)
{
	char why[512] = "still allowed";
	bool keep;
	if (!service || !grant_json)
		return scm_fail(ret_err, SCM_E_INVALID, "recheck needs a service and a grant");
	json_object *g = json_tokener_parse(grant_json);
	if (!g)
		return scm_fail(ret_err, SCM_E_INVALID, "grant of %.80s is not JSON", service);
	int r = recheck(e, service, g, why, sizeof(why), &keep);
	json_object_put(g);
	if (r == -EINVAL)
		return scm_fail(ret_err, SCM_E_INVALID, "grant of %.80s: expected {\"methods\": [..], "
							"\"constraints\": {..}}", service);
	if (r < 0)
		return scm_fail(ret_err, r, "recheck of %.80s failed", service);
	if (ret_reason && !(*ret_reason = strdup(why)))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	*ret_keep = keep;
	return 0;
}
