/* merge.c: a container's profiles -> its effective profile.
 *
 * Rules are taken in one fixed order (priority high to low, then profile
 * name, then position; see prule_priority_cmp), so the result never depends
 * on the order of files or names. For every (service, method) the first
 * matching rule wins; rules after it at the same priority must have the
 * same effect or the method is a conflict, denied (fail closed); rules at
 * lower priorities are recorded as overridden; no rule means denied.
 * Every service known at build time (the IDL set plus exact names in rules)
 * is compiled to a grant string and entered in a hash table, so a connect
 * decision is one lookup. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a: short keys, no need for more */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

const eservice *effective_lookup(const policy_effective *e, const char *service)
{
	if (!e->n_slots)
		return NULL;
	size_t mask = e->n_slots - 1;
	for (size_t i = hash_name(service) & mask;; i = (i + 1) & mask) {
		uint32_t v = e->slots[i];
		if (!v)
			return NULL;
		if (strcmp(e->services[v - 1].name, service) == 0)
			return &e->services[v - 1];
	}
}

static bool rule_has_method(const prule *r, const char *m)
{
	if (r->all_methods)
		return true;
	size_t lo = 0, hi = r->n_methods;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->methods[mid], m);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int decide_method(const char *name, const prule *const *cands, size_t n, emethod *ret)
{
	emethod m = { .state = EM_DEFAULT_DENY };
	bool star = strcmp(name, "*") == 0;
	if (!(m.name = strdup(name)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const prule *r = cands[i];
		if (star ? !r->all_methods : !rule_has_method(r, name))
			continue;
		const prule ***list;
		size_t *cnt;
		if (!m.winner) {
			m.winner = r;
			m.state = r->allow ? EM_ALLOW : EM_DENY;
			continue;
		}
		if (r->profile->priority == m.winner->profile->priority) {
			if (!prule_same_effect(r, m.winner))
				m.state = EM_CONFLICT;
			list = &m.ties;
			cnt = &m.n_ties;
		} else {
			list = &m.overrode;
			cnt = &m.n_overrode;
		}
		const prule **nl = realloc(*list, (*cnt + 1) * sizeof(prule *));
		if (!nl) {
			free(m.ties);
			free(m.overrode);
			free(m.name);
			return -ENOMEM;
		}
		nl[(*cnt)++] = r;
		*list = nl;
	}
	*ret = m;
	return 0;
}

void eservice_done(eservice *s)
{
	for (size_t i = 0; i < s->n_methods; i++) {
		free(s->methods[i].name);
		free(s->methods[i].ties);
		free(s->methods[i].overrode);
	}
	free(s->methods);
	free(s->name);
	free(s->origin);
	free(s->grant_json);
	free(s->settings_json);
	*s = (eservice){ 0 };
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends "what origin" to a "; "-separated origin text, once per origin. */
static int origin_add(char **text, const char *what, const prule *r)
{
	_cleanup_free_ char *o = rule_origin(r);
	char *n = NULL;
	if (!o)
		return -ENOMEM;
	if (*text && strstr(*text, o))
		return 0;
	if (asprintf(&n, "%s%s%s %s", *text ? *text : "", *text ? "; " : "", what, o) < 0)
		return -ENOMEM;
	free(*text);
	*text = n;
	return 0;
}

/* The grant for the provider: {"methods": [...], "constraints": {...}}.
 * A service without IDL whose "*" entry allows, with no method denied,
 * gets "methods": "*" (libscm expands it against the provider's own
 * interface) and the "*" rule's constraints under "*". */
static int build_grant(eservice *s, json_object *settings)
{
	json_object *g = json_object_new_object(), *ms = json_object_new_array(),
		    *cs = json_object_new_object();
	const emethod *star = NULL;
	bool all_allowed = true;
	int r = -ENOMEM;
	if (!g || !ms || !cs) {
		json_object_put(ms);
		json_object_put(cs);
		goto out;
	}
	for (size_t i = 0; i < s->n_methods; i++) {
		if (strcmp(s->methods[i].name, "*") == 0)
			star = &s->methods[i];
		all_allowed = all_allowed && s->methods[i].state == EM_ALLOW;
	}
	bool wildcard = !s->in_idl && star && all_allowed;
	json_object_object_add(g, "methods", wildcard ? json_object_new_string("*") : ms);
	if (wildcard)
		json_object_put(ms);
	json_object_object_add(g, "constraints", cs);
	if (settings) {
		json_object_object_add(g, "settings", json_object_get(settings));
		if (!(s->settings_json = strdup(json_object_to_json_string_ext(settings, JSON_C_TO_STRING_PLAIN))))
			goto out;
	}
	for (size_t i = 0; i < s->n_methods; i++) {
		const emethod *m = &s->methods[i];
		if (m->state != EM_ALLOW || (m == star && !wildcard))
			continue;
		if (!wildcard)
			json_object_array_add(ms, json_object_new_string(m->name));
		if (m->winner->n_args == 0)
			continue;
		json_object *mc = json_object_new_object();
		if (!mc)
			goto out;
		json_object_object_add(cs, m->name, mc);
		for (size_t k = 0; k < m->winner->n_args; k++)
			json_object_object_add(mc, m->winner->args[k].param, pcons_to_json(&m->winner->args[k]));
	}
	if (!(s->grant_json = strdup(json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE))))
		goto out;
	r = 0;
out:
	json_object_put(g);
	return r;
}

static int build_origin(eservice *s)
{
	const emethod *conflict = NULL;
	char *text = NULL;
	for (size_t i = 0; i < s->n_methods; i++) {
		const emethod *m = &s->methods[i];
		if (m->state == EM_ALLOW && origin_add(&text, "allowed by", m->winner) < 0)
			goto oom;
		if (m->state == EM_CONFLICT && !conflict)
			conflict = m;
	}
	if (!s->allowed) {
		free(text);
		text = NULL;
		if (conflict) {
			_cleanup_free_ char *a = rule_origin(conflict->winner);
			_cleanup_free_ char *b = rule_origin(conflict->ties[0]);
			if (!a || !b || asprintf(&text, "denied (fail closed): method %s: %s conflicts with %s "
							"at equal priority", conflict->name, a, b) < 0)
				goto oom;
		} else {
			for (size_t i = 0; i < s->n_methods; i++)
				if (s->methods[i].state == EM_DENY &&
				    origin_add(&text, "denied by", s->methods[i].winner) < 0)
					goto oom;
			if (!text && asprintf(&text, "denied by default: no rule allows service %s", s->name) < 0)
				goto oom;
		}
	}
	s->origin = text;
	return 0;
oom:
	free(text);
	return -ENOMEM;
}

int eservice_compile(const policy_effective *e, const char *name, const prule *const *cands,
		     size_t n_cands, eservice *ret)
{
	eservice s = { 0 };
	char **names = NULL;
	size_t n_names = 0;
	bool star = false;
	int r = -ENOMEM;
	const pidl_service *idl = pidl_find(e->idl, name);
	if (!(s.name = strdup(name)))
		goto out;
	s.in_idl = idl != NULL;
	/* the methods to decide: the interface's, plus any a rule names */
	for (size_t i = 0; idl && i < idl->n_methods; i++)
		if (strv_add(&names, &n_names, idl->methods[i].name) < 0)
			goto out;
	for (size_t i = 0; i < n_cands; i++) {
		star = star || cands[i]->all_methods;
		for (size_t k = 0; k < cands[i]->n_methods; k++)
			if (strv_add(&names, &n_names, cands[i]->methods[k]) < 0)
				goto out;
	}
	if (n_names)
		qsort(names, n_names, sizeof(char *), str_cmp);
	s.methods = calloc(n_names + 2, sizeof(emethod));
	if (!s.methods)
		goto out;
	for (size_t i = 0; i < n_names; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if ((r = decide_method(names[i], cands, n_cands, &s.methods[s.n_methods])) < 0)
			goto out;
		s.n_methods++;
	}
	if (star && !idl) {
		if ((r = decide_method("*", cands, n_cands, &s.methods[s.n_methods])) < 0)
			goto out;
		s.n_methods++;
	}
	/* allowed = the grant names at least one method: "*" counts only
	 * where it can go into the grant (no IDL, no method denied) */
	bool all_allow = true, star_allow = false;
	for (size_t i = 0; i < s.n_methods; i++) {
		bool is_star = strcmp(s.methods[i].name, "*") == 0;
		all_allow = all_allow && s.methods[i].state == EM_ALLOW;
		star_allow = star_allow || (is_star && s.methods[i].state == EM_ALLOW);
		if (s.methods[i].state == EM_ALLOW && !is_star)
			s.allowed = true;
	}
	if (!s.in_idl && star_allow && all_allow)
		s.allowed = true;
	r = build_origin(&s);
	json_object *settings = NULL;
	char *denied = NULL;
	if (r == 0 && s.allowed)
		r = grant_settings(&s, idl, &settings, &denied);
	if (r == 0 && denied) {
		free(s.origin);
		s.origin = denied;
		s.allowed = false;
	}
	if (r == 0 && s.allowed)
		r = build_grant(&s, settings);
	json_object_put(settings);
out:
	strv_free(names);
	if (r < 0) {
		eservice_done(&s);
		return r;
	}
	*ret = s;
	return 0;
}

typedef struct named_rule {
	const char *name;
	const prule *rule;
} named_rule;

static int named_rule_cmp(const void *a, const void *b)
{
	const named_rule *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : prule_priority_cmp(x->rule, y->rule);
}

static int profile_order_cmp(const void *a, const void *b)
{
	const policy_profile *x = *(const policy_profile *const *)a, *y = *(const policy_profile *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Compiles every known service: exact-name rules of that name and the glob
 * rules that match it, merged in rule order. */
static int compile_all(policy_effective *e, const named_rule *exact, size_t n_exact)
{
	const policy_idl_set *idl = e->idl;
	size_t cap = idl->n + n_exact, a = 0, b = 0;
	const prule **cands = calloc(n_exact + e->n_globs + 1, sizeof(prule *));
	e->services = calloc(cap + 1, sizeof(eservice));
	if (!cands || !e->services) {
		free(cands);
		return -ENOMEM;
	}
	while (a < idl->n || b < n_exact) {
		const char *name;
		int c = a >= idl->n ? 1 : b >= n_exact ? -1 : strcmp(idl->services[a].name, exact[b].name);
		name = c <= 0 ? idl->services[a].name : exact[b].name;
		if (c <= 0)
			a++;
		size_t eb = b;
		if (c >= 0)
			while (eb < n_exact && strcmp(exact[eb].name, name) == 0)
				eb++;
		/* merge exact[b..eb) with the matching globs, both in rule order */
		size_t n = 0, g = 0, x = b;
		for (;;) {
			while (g < e->n_globs && !glob_match(e->globs[g]->service, name))
				g++;
			bool hx = x < eb, hg = g < e->n_globs;
			if (!hx && !hg)
				break;
			if (hx && (!hg || prule_priority_cmp(exact[x].rule, e->globs[g]) < 0))
				cands[n++] = exact[x++].rule;
			else
				cands[n++] = e->globs[g++];
		}
		b = eb;
		if (n == 0 && (e->flags & EB_SPARSE))
			continue;
		int r = eservice_compile(e, name, cands, n, &e->services[e->n_services]);
		if (r < 0) {
			free(cands);
			return r;
		}
		e->n_services++;
	}
	free(cands);
	return 0;
}

static int build_hash(policy_effective *e)
{
	size_t n = 16;
	while (n < e->n_services * 2)
		n *= 2;
	if (!(e->slots = calloc(n, sizeof(uint32_t))))
		return -ENOMEM;
	e->n_slots = n;
	for (size_t i = 0; i < e->n_services; i++) {
		size_t k = hash_name(e->services[i].name) & (n - 1);
		while (e->slots[k])
			k = (k + 1) & (n - 1);
		e->slots[k] = (uint32_t)(i + 1);
	}
	return 0;
}

static int count_conflicts(policy_effective *e)
{
	for (size_t i = 0; i < e->n_services; i++)
		for (size_t k = 0; k < e->services[i].n_methods; k++)
			e->n_conflicts += e->services[i].methods[k].state == EM_CONFLICT;
	for (size_t i = 0; i < e->n_settings; i++)
		e->n_conflicts += e->settings[i].conflict;
	return 0;
}

int policy_effective_build(const policy_store *store, const char *const *names, size_t n,
			   const policy_idl_set *idl, policy_effective **ret, scm_error **ret_err)
{
	return effective_build(store, names, n, idl, 0, ret, ret_err);
}

int effective_build(const policy_store *store, const char *const *names, size_t n,
		    const policy_idl_set *idl, unsigned flags, policy_effective **ret, scm_error **ret_err)
{
	named_rule *exact = NULL;
	size_t n_exact = 0, n_rules = 0;
	int r;
	for (size_t i = 0; i < n; i++) {
		if (!policy_store_get(store, names[i]))
			return scm_fail(ret_err, SCM_E_NOT_FOUND, "no profile named \"%.80s\"", names[i]);
		for (size_t k = 0; k < i; k++)
			if (strcmp(names[i], names[k]) == 0)
				return scm_fail(ret_err, SCM_E_INVALID, "profile \"%.80s\" is listed twice", names[i]);
	}
	policy_effective *e = calloc(1, sizeof(*e));
	if (!e)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	e->ref = 1;
	/* nothing to borrow without an IDL set: the empty one made below is ours */
	e->flags = idl ? flags : flags & ~(unsigned)EB_BORROW_IDL;
	e->store = (policy_store *)store;
	__atomic_add_fetch(&e->store->ref, 1, __ATOMIC_SEQ_CST);
	if (idl && (flags & EB_BORROW_IDL))
		e->idl = (policy_idl_set *)idl;
	else
		e->idl = idl ? pidl_copy(idl) : policy_idl_set_new();
	e->profiles = calloc(n + 1, sizeof(policy_profile *));
	if (!e->idl || !e->profiles)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		e->profiles[e->n_profiles++] = policy_store_get(store, names[i]);
		n_rules += e->profiles[i]->n_rules;
	}
	qsort(e->profiles, e->n_profiles, sizeof(policy_profile *), profile_order_cmp);
	/* profiles in merge order and rules in file order: concatenated, the
	 * rules are already in merge order */
	e->globs = calloc(n_rules + 1, sizeof(prule *));
	exact = calloc(n_rules + 1, sizeof(named_rule));
	if (!e->globs || !exact)
		goto oom;
	for (size_t i = 0; i < e->n_profiles; i++)
		for (size_t k = 0; k < e->profiles[i]->n_rules; k++) {
			const prule *pr = &e->profiles[i]->rules[k];
			if (pr->glob)
				e->globs[e->n_globs++] = pr;
			else
				exact[n_exact++] = (named_rule){ pr->service, pr };
		}
	qsort(exact, n_exact, sizeof(named_rule), named_rule_cmp);
	if ((r = compile_all(e, exact, n_exact)) < 0 || (r = build_hash(e)) < 0 ||
	    (r = sandbox_merge(e)) < 0 || (r = count_conflicts(e)) < 0)
		goto fail;
	free(exact);
	*ret = e;
	return 0;
oom:
	r = -ENOMEM;
fail:
	free(exact);
	policy_effective_unref(e);
	return scm_fail(ret_err, r, "cannot build the effective profile: %s", strerror(-r));
}

policy_effective *policy_effective_ref(policy_effective *e)
{
	if (e)
		__atomic_add_fetch(&e->ref, 1, __ATOMIC_SEQ_CST);
	return e;
}

policy_effective *policy_effective_unref(policy_effective *e)
{
	if (!e || __atomic_sub_fetch(&e->ref, 1, __ATOMIC_SEQ_CST) > 0)
		return NULL;
	for (size_t i = 0; i < e->n_services; i++)
		eservice_done(&e->services[i]);
	free(e->services);
	free(e->slots);
	free(e->globs);
	free(e->profiles);
	sandbox_done(e);
	if (!(e->flags & EB_BORROW_IDL))
		policy_idl_set_free(e->idl);
	policy_store_free(e->store);
	free(e);
	return NULL;
}

size_t policy_effective_conflicts(const policy_effective *e)
{
	return e->n_conflicts;
}
