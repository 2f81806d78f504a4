/* lint.c: checks profiles before they are loaded.
 *
 * Errors (lint fails, a store that has them is not loaded): services,
 * methods and parameters the interfaces do not know, constraints that do
 * not fit a parameter's type, rules of equal priority that conflict within
 * a profile, between profiles of a directory, or within a given
 * combination. Warnings: globs that match nothing; and, for a given
 * combination only, rules every method of which is decided by higher rules
 * (shadowed), denies that change nothing (dead), sandbox settings
 * overridden by a different value. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <scm/macro.h>

#include "internal.h"

typedef struct linter {
	policy_lint_report *rep;
	const policy_idl_set *idl;
	const prule **rules; /* the rules under review, sorted by address */
	size_t n_rules;
	const void **pairs; /* conflict pairs already reported: a hash set of (a, b), a < b */
	size_t n_pairs, cap_pairs;
	int err;
} linter;

static void add(linter *l, policy_severity sev, const policy_profile *p, const char *pointer,
		const char *kind, const char *fmt, ...) _printf_(6, 7);
static void add(linter *l, policy_severity sev, const policy_profile *p, const char *pointer,
		const char *kind, const char *fmt, ...)
{
	policy_lint_report *r = l->rep;
	policy_finding f = { .severity = sev };
	va_list ap;
	if (l->err)
		return;
	policy_finding *nf = realloc(r->findings, (r->n_findings + 1) * sizeof(*nf));
	if (!nf) {
		l->err = -ENOMEM;
		return;
	}
	r->findings = nf;
	va_start(ap, fmt);
	if (vasprintf(&f.message, fmt, ap) < 0)
		f.message = NULL;
	va_end(ap);
	f.file = strdup(p->file);
	f.pointer = strdup(pointer);
	f.kind = strdup(kind);
	f.line = profile_line(p, pointer, &f.col);
	if (!f.message || !f.file || !f.pointer || !f.kind) {
		free(f.message);
		free(f.file);
		free(f.pointer);
		free(f.kind);
		l->err = -ENOMEM;
		return;
	}
	r->findings[r->n_findings++] = f;
	if (sev == POLICY_LINT_ERROR)
		r->n_errors++;
	else
		r->n_warnings++;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const prule *const *)a, y = (uintptr_t) * (const prule *const *)b;
	return x < y ? -1 : x > y;
}

static size_t rule_idx(const linter *l, const prule *r)
{
	const prule **hit = bsearch(&r, l->rules, l->n_rules, sizeof(prule *), ptr_cmp);
	return (size_t)(hit - l->rules);
}

static bool type_is_num(const char *t)
{
	return strcmp(t, "int") == 0 || strcmp(t, "uint") == 0 || strcmp(t, "double") == 0;
}

static bool value_fits(const pval *v, const char *t)
{
	switch (v->kind) {
	case PV_BOOL:
		return strcmp(t, "bool") == 0;
	case PV_STRING:
		return strcmp(t, "string") == 0;
	default:
		return type_is_num(t);
	}
}

static void check_args(linter *l, const prule *r, const pidl_service *svc, const pidl_method *m)
{
	for (size_t i = 0; i < r->n_args; i++) {
		const pcons *c = &r->args[i];
		char ptr[300];
		snprintf(ptr, sizeof(ptr), "%s/args/%s", r->pointer, c->param);
		const pidl_param *p = pidl_find_param(m, c->param);
		if (!p) {
			if (m->params_known)
				add(l, POLICY_LINT_ERROR, r->profile, ptr, "unknown-param",
				    "%s.%s has no parameter \"%s\"", svc->name, m->name, c->param);
			continue;
		}
		bool ok = true;
		switch (c->kind) {
		case PC_PREFIX:
		case PC_PATH_PREFIX:
			ok = strcmp(p->type, "string") == 0;
			break;
		case PC_RANGE:
			ok = type_is_num(p->type);
			break;
		case PC_EQ:
			ok = value_fits(&c->v, p->type);
			break;
		case PC_IN:
			for (size_t k = 0; k < c->n_set; k++)
				ok = ok && value_fits(&c->set[k], p->type);
			break;
		}
		if (!ok)
			add(l, POLICY_LINT_ERROR, r->profile, ptr, "bad-constraint",
			    "%s.%s parameter \"%s\" is of type %s, which this constraint cannot match",
			    svc->name, m->name, c->param, p->type);
		/* a string prefix admits "/srv/disks/../../etc/x": on a path the
		 * only honest constraint is path_prefix */
		else if (c->kind == PC_PREFIX && p->is_path)
			add(l, POLICY_LINT_ERROR, r->profile, ptr, "prefix-on-path",
			    "%s.%s parameter \"%s\" is a file path: \"prefix\" admits \"%s../../etc/x\"; use "
			    "{\"path_prefix\": \"%s\"}, which admits only clean paths inside it",
			    svc->name, m->name, c->param, c->v.s, c->v.s);
	}
}

/* Settings the interface does not declare, or values that do not fit
 * it, would deny the service at connect (fail closed): say so here. */
static void check_settings_idl(linter *l, const prule *r, const pidl_service *svc)
{
	for (size_t i = 0; i < r->n_settings; i++) {
		char ptr[300];
		const char *why = rsetting_check(svc, &r->settings[i]);
		snprintf(ptr, sizeof(ptr), "%.100s/settings/%.128s", r->pointer, r->settings[i].name);
		if (why)
			add(l, POLICY_LINT_ERROR, r->profile, ptr, "bad-setting",
			    "service \"%s\": setting \"%s\" %s (the grant would be denied)", svc->name,
			    r->settings[i].name, why);
	}
}

/* A glob that matches no service now may match one registered later
 * (scmd lints again then, but fail closed here too): a "prefix" on a
 * parameter that is a file path in any known interface is refused as
 * if the glob matched it. */
static void check_args_unmatched(linter *l, const prule *r)
{
	for (size_t i = 0; i < r->n_args; i++) {
		const pcons *c = &r->args[i];
		if (c->kind != PC_PREFIX)
			continue;
		const char *where = NULL;
		for (size_t s = 0; s < l->idl->n && !where; s++) {
			const pidl_service *svc = &l->idl->services[s];
			for (size_t k = 0; k < svc->n_methods && !where; k++) {
				const pidl_param *p = pidl_find_param(&svc->methods[k], c->param);
				if (p && p->is_path)
					where = svc->name;
			}
		}
		if (!where)
			continue;
		char ptr[300];
		snprintf(ptr, sizeof(ptr), "%s/args/%s", r->pointer, c->param);
		add(l, POLICY_LINT_ERROR, r->profile, ptr, "prefix-on-path",
		    "glob \"%s\" matches no service yet, but parameter \"%s\" is a file path in %s and "
		    "may be one in a service registered later: \"prefix\" admits \"%s../../etc/x\"; use "
		    "{\"path_prefix\": \"%s\"}",
		    r->service, c->param, where, c->v.s, c->v.s);
	}
}

/* One rule against the interfaces. */
static void check_rule_idl(linter *l, const prule *r)
{
	char ptr[300];
	if (!r->glob) {
		const pidl_service *svc = pidl_find(l->idl, r->service);
		snprintf(ptr, sizeof(ptr), "%s/service", r->pointer);
		if (!svc) {
			add(l, POLICY_LINT_ERROR, r->profile, ptr, "unknown-service",
			    "no interface defines service \"%s\"", r->service);
			return;
		}
		for (size_t i = 0; i < r->n_methods; i++) {
			snprintf(ptr, sizeof(ptr), "%s/methods/%zu", r->pointer, i);
			if (!pidl_find_method(svc, r->methods[i]))
				add(l, POLICY_LINT_ERROR, r->profile, ptr, "unknown-method",
				    "service \"%s\" has no method \"%s\"", r->service, r->methods[i]);
		}
		for (size_t i = 0; i < svc->n_methods; i++) {
			bool named = r->all_methods;
			for (size_t k = 0; !named && k < r->n_methods; k++)
				named = strcmp(r->methods[k], svc->methods[i].name) == 0;
			if (named)
				check_args(l, r, svc, &svc->methods[i]);
		}
		check_settings_idl(l, r, svc);
		return;
	}
	bool any = false;
	bool *method_known = calloc(r->n_methods + 1, sizeof(bool));
	if (!method_known) {
		l->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < l->idl->n; i++) {
		const pidl_service *svc = &l->idl->services[i];
		if (!glob_match(r->service, svc->name))
			continue;
		any = true;
		check_settings_idl(l, r, svc);
		for (size_t k = 0; k < r->n_methods; k++)
			method_known[k] = method_known[k] || pidl_find_method(svc, r->methods[k]);
		for (size_t k = 0; k < svc->n_methods; k++) {
			bool named = r->all_methods;
			for (size_t j = 0; !named && j < r->n_methods; j++)
				named = strcmp(r->methods[j], svc->methods[k].name) == 0;
			if (named)
				check_args(l, r, svc, &svc->methods[k]);
		}
	}
	snprintf(ptr, sizeof(ptr), "%s/service", r->pointer);
	if (!any) {
		add(l, POLICY_LINT_WARNING, r->profile, ptr, "dead",
		    "glob \"%s\" matches no known service", r->service);
		check_args_unmatched(l, r);
	}
	/* a method no matched service has is a typo that would deny (or
	 * allow) nothing: "deny v* opn" must not leave "open" to lower rules */
	for (size_t k = 0; any && k < r->n_methods; k++) {
		snprintf(ptr, sizeof(ptr), "%s/methods/%zu", r->pointer, k);
		if (!method_known[k])
			add(l, POLICY_LINT_ERROR, r->profile, ptr, "unknown-method",
			    "no service matching \"%s\" has a method \"%s\"", r->service, r->methods[k]);
	}
	free(method_known);
}

static size_t pair_hash(const void *a, const void *b)
{
	uint64_t h = ((uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)(uintptr_t)b * 0xc2b2ae3d27d4eb4full);
	return (size_t)(h ^ (h >> 29));
}

/* Has the conflict between rules a and b been reported? Records it if
 * not. A hash set of unordered pairs: a directory of many profiles at one
 * priority has many of them, and a list made lint quadratic in them. */
static bool pair_seen(linter *l, const void *a, const void *b)
{
	if ((uintptr_t)a > (uintptr_t)b) {
		const void *t = a;
		a = b;
		b = t;
	}
	if (2 * (l->n_pairs + 1) > l->cap_pairs) {
		size_t cap = l->cap_pairs ? 2 * l->cap_pairs : 64;
		const void **np = calloc(2 * cap, sizeof(void *));
		if (!np) {
			l->err = -ENOMEM;
			return true;
		}
		for (size_t i = 0; i < l->cap_pairs; i++) {
			if (!l->pairs[2 * i])
				continue;
			size_t j = pair_hash(l->pairs[2 * i], l->pairs[2 * i + 1]) & (cap - 1);
			while (np[2 * j])
				j = (j + 1) & (cap - 1);
			np[2 * j] = l->pairs[2 * i];
			np[2 * j + 1] = l->pairs[2 * i + 1];
		}
		free(l->pairs);
		l->pairs = np;
		l->cap_pairs = cap;
	}
	size_t j = pair_hash(a, b) & (l->cap_pairs - 1);
	for (; l->pairs[2 * j]; j = (j + 1) & (l->cap_pairs - 1))
		if (l->pairs[2 * j] == a && l->pairs[2 * j + 1] == b)
			return true;
	l->pairs[2 * j] = a;
	l->pairs[2 * j + 1] = b;
	l->n_pairs++;
	return false;
}

/* How a merged set is judged. A profile directory holds profiles for many
 * containers, and only the profiles a container carries are ever merged:
 * so each profile is checked alone (LINT_ALONE), and the profiles of each
 * priority as a group for conflicts between any two of them
 * (LINT_DIRECTORY): they must agree wherever they overlap, since any
 * container may carry both and nothing else. Shadowed and dead rules
 * depend on the combination, so only a given one (--profiles A,B: what a
 * container carries) reports them (LINT_COMBINED). */
typedef enum lint_mode { LINT_ALONE, LINT_DIRECTORY, LINT_COMBINED } lint_mode;

static void conflict(linter *l, lint_mode mode, const char *svc, const char *method, const prule *a,
		     const prule *other)
{
	_cleanup_free_ char *o = rule_origin(other);
	add(l, POLICY_LINT_ERROR, a->profile, a->pointer, "conflict",
	    "%s %s.%s conflicts with %s %s at equal priority %d (%s; give one profile a higher priority)",
	    a->allow ? "allow" : "deny", svc, method, other->allow ? "allow" : "deny", o ? o : "?",
	    a->profile->priority,
	    mode == LINT_DIRECTORY ? "a container that carries both is denied" : "both deny at run time");
}

/* A directory merge holds one priority group: every rule of the method is
 * a tie, and any two of them from different profiles that disagree are
 * a conflict for a container carrying just those two, whichever the
 * merge happened to pick as the winner. */
static void group_conflicts(linter *l, const char *svc, const emethod *m)
{
	size_t n = m->n_ties + 1;
	for (size_t i = 0; i < n; i++) {
		const prule *a = i ? m->ties[i - 1] : m->winner;
		for (size_t k = i + 1; k < n; k++) {
			const prule *b = m->ties[k - 1];
			if (a->profile == b->profile || prule_same_effect(a, b) || pair_seen(l, a, b))
				continue;
			conflict(l, LINT_DIRECTORY, svc, m->name, a, b);
		}
	}
}

static void check_services(linter *l, const policy_effective *e, lint_mode mode)
{
	bool *matched = calloc(l->n_rules + 1, sizeof(bool)), *used = calloc(l->n_rules + 1, sizeof(bool)),
	     *deny_useful = calloc(l->n_rules + 1, sizeof(bool));
	const prule **shadowed_by = calloc(l->n_rules + 1, sizeof(prule *));
	if (!matched || !used || !deny_useful || !shadowed_by) {
		l->err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < e->n_services; i++) {
		const eservice *s = &e->services[i];
		for (size_t k = 0; k < s->n_methods; k++) {
			const emethod *m = &s->methods[k];
			if (!m->winner)
				continue;
			size_t w = rule_idx(l, m->winner);
			matched[w] = used[w] = true;
			for (size_t t = 0; t < m->n_ties; t++) {
				const prule *o = m->ties[t];
				size_t ti = rule_idx(l, o);
				matched[ti] = used[ti] = true;
				if (m->state != EM_CONFLICT)
					continue;
				/* the rules of a conflict are not dead: they are wrong */
				deny_useful[w] = deny_useful[ti] = true;
				if (mode == LINT_DIRECTORY || prule_same_effect(m->winner, o) || pair_seen(l, m->winner, o))
					continue;
				conflict(l, mode, s->name, m->name, m->winner, o);
			}
			if (mode == LINT_DIRECTORY && m->state == EM_CONFLICT)
				group_conflicts(l, s->name, m);
			for (size_t o = 0; o < m->n_overrode; o++) {
				size_t oi = rule_idx(l, m->overrode[o]);
				matched[oi] = true;
				if (!shadowed_by[oi])
					shadowed_by[oi] = m->winner;
				/* a deny that never overrides an allow changes nothing:
				 * default deny already says the same */
				if (m->state == EM_DENY && m->overrode[o]->allow)
					deny_useful[w] = true;
			}
		}
	}
	if (mode == LINT_DIRECTORY)
		goto out;
	for (size_t i = 0; i < l->n_rules; i++) {
		const prule *r = l->rules[i];
		if (!matched[i])
			continue; /* not in e, or a glob matching nothing (said elsewhere) */
		if (!used[i]) {
			_cleanup_free_ char *by = rule_origin(shadowed_by[i]);
			add(l, POLICY_LINT_WARNING, r->profile, r->pointer, "shadowed",
			    "never decides anything: every method it covers is decided by higher rules, "
			    "e.g. %s", by ? by : "?");
		} else if (!r->allow && !deny_useful[i] && mode == LINT_COMBINED) {
			add(l, POLICY_LINT_WARNING, r->profile, r->pointer, "dead",
			    "deny changes nothing: no lower-priority rule allows what it denies "
			    "(default deny already applies)");
		}
	}
out:
	free(matched);
	free(used);
	free(deny_useful);
	free(shadowed_by);
}

/* What a container carrying just x's and y's profiles gets for their
 * conflicting setting (as sandbox.c's merge decides it). */
static const char *pair_fail_closed(const psetting *x, const psetting *y, char *buf, size_t n)
{
	if (!strncmp(x->key, "syscall:", 8) || !strncmp(x->key, "cap:", 4))
		return "deny";
	if (!strncmp(x->key, "mount:", 6))
		return "";
	if (!strcmp(x->key, "network"))
		return "none";
	unsigned long long a = strtoull(x->value, NULL, 10), b = strtoull(y->value, NULL, 10);
	snprintf(buf, n, "%llu", a < b ? a : b);
	return buf;
}

static void check_settings(linter *l, const policy_effective *e, lint_mode mode)
{
	for (size_t i = 0; i < e->n_settings; i++) {
		const esetting *es = &e->settings[i];
		/* combined: the winner against each tie; a directory group:
		 * every pair, since a container may carry any two of them */
		size_t n = es->n_ties + 1;
		for (size_t a = 0; a < (mode == LINT_DIRECTORY ? n : 1); a++)
			for (size_t t = a; t < es->n_ties; t++) {
				const psetting *x = a ? es->ties[a - 1] : es->winner, *y = es->ties[t];
				if (strcmp(y->value, x->value) == 0)
					continue;
				_cleanup_free_ char *other = setting_origin(y);
				char fcv[32];
				add(l, POLICY_LINT_ERROR, x->profile, x->pointer, "conflict",
				    "%s = %s conflicts with %s = %s in %s at equal priority %d (%s %s)", x->key,
				    x->value, y->key, y->value, other ? other : "?", x->profile->priority,
				    mode == LINT_DIRECTORY ? "a container that carries both gets" : "fails closed:",
				    mode == LINT_DIRECTORY ? pair_fail_closed(x, y, fcv, sizeof(fcv)) : es->value);
			}
		for (size_t o = 0; mode == LINT_COMBINED && o < es->n_overrode; o++) {
			if (strcmp(es->overrode[o]->value, es->value) == 0)
				continue;
			_cleanup_free_ char *by = setting_origin(es->winner);
			add(l, POLICY_LINT_WARNING, es->overrode[o]->profile, es->overrode[o]->pointer,
			    "shadowed", "%s = %s is overridden by %s = %s from %s", es->overrode[o]->key,
			    es->overrode[o]->value, es->winner->key, es->value, by ? by : "?");
		}
	}
}

/* Two clipboard rules at equal priority with different actions that some
 * flow matches both: the flow is denied (fail closed), as for services.
 * Within one profile too: its order does not make the first one win. */
static void check_clipboard(linter *l, const policy_effective *e, lint_mode mode)
{
	for (size_t i = 0; i < e->n_profiles; i++)
		for (size_t j = i; j < e->n_profiles && e->profiles[j]->priority == e->profiles[i]->priority; j++) {
			const policy_profile *p = e->profiles[i], *q = e->profiles[j];
			for (size_t a = 0; a < p->n_clips; a++)
				for (size_t b = p == q ? a + 1 : 0; b < q->n_clips; b++) {
					const pclip *x = &p->clips[a], *y = &q->clips[b];
					if (x->allow == y->allow || !clip_overlap(x->from, y->from) ||
					    !clip_overlap(x->to, y->to) || pair_seen(l, x, y))
						continue;
					add(l, POLICY_LINT_ERROR, p, x->pointer, "conflict",
					    "clipboard %s %s -> %s conflicts with %s %s -> %s in profile '%s' (%s#%s) at "
					    "equal priority %d (%s; give one profile a higher priority)",
					    x->allow ? "allow" : "deny", x->from, x->to, y->allow ? "allow" : "deny",
					    y->from, y->to, q->name, q->file, y->pointer, p->priority,
					    mode == LINT_DIRECTORY ? "a container that carries both is denied the flows both match"
								   : "the flows both match are denied");
				}
		}
}

/* D-Bus rules likewise (dbus_overlap: policy/dbus.c). */
static void check_dbus(linter *l, const policy_effective *e)
{
	for (size_t i = 0; i < e->n_profiles; i++)
		for (size_t j = i; j < e->n_profiles && e->profiles[j]->priority == e->profiles[i]->priority; j++) {
			const policy_profile *p = e->profiles[i], *q = e->profiles[j];
			for (size_t a = 0; a < p->n_dbus; a++)
				for (size_t b = p == q ? a + 1 : 0; b < q->n_dbus; b++) {
					const pdbus *x = &p->dbus[a], *y = &q->dbus[b];
					if (x->allow == y->allow || !dbus_overlap(x, y) || pair_seen(l, x, y))
						continue;
					add(l, POLICY_LINT_ERROR, p, x->pointer, "conflict",
					    "dbus %s on %s %s conflicts with %s in profile '%s' (%s#%s) at equal priority "
					    "%d (the calls both match are denied; give one profile a higher priority)",
					    x->allow ? "allow" : "deny", x->destination, x->interface,
					    y->allow ? "allow" : "deny", q->name, q->file, y->pointer, p->priority);
				}
		}
}

static void check_merged(linter *l, const policy_store *s, const char *const *names, size_t n,
			 lint_mode mode)
{
	policy_effective *e = NULL;
	if (l->err)
		return;
	if (effective_build(s, names, n, l->idl, EB_SPARSE | EB_BORROW_IDL, &e, NULL) != 0) {
		l->err = -ENOMEM;
		return;
	}
	check_services(l, e, mode);
	check_settings(l, e, mode);
	check_clipboard(l, e, mode);
	check_dbus(l, e);
	policy_effective_unref(e);
}

static int finding_cmp(const void *a, const void *b)
{
	const policy_finding *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	c = strcmp(x->pointer, y->pointer);
	return c ? c : strcmp(x->message, y->message);
}

static int prio_cmp(const void *a, const void *b)
{
	const policy_profile *x = *(const policy_profile *const *)a, *y = *(const policy_profile *const *)b;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

int policy_lint(const policy_store *s, const policy_idl_set *idl, const char *const *names, size_t n,
		policy_lint_report **ret, scm_error **ret_err)
{
	linter l = { .idl = idl };
	const policy_profile **profs = calloc((names ? n : s->n) + 1, sizeof(policy_profile *));
	size_t n_profs = 0;
	if (!profs || !(l.rep = calloc(1, sizeof(*l.rep)))) {
		free(profs);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < (names ? n : s->n); i++) {
		const policy_profile *p = names ? policy_store_get(s, names[i]) : s->profiles[i];
		if (!p) {
			free(profs);
			policy_lint_report_free(l.rep);
			return scm_fail(ret_err, SCM_E_NOT_FOUND, "no profile named \"%.80s\"", names[i]);
		}
		profs[n_profs++] = p;
		l.n_rules += p->n_rules;
	}
	l.rules = calloc(l.n_rules + 1, sizeof(prule *));
	if (!l.rules) {
		l.err = -ENOMEM;
	} else {
		size_t k = 0;
		for (size_t i = 0; i < n_profs; i++)
			for (size_t j = 0; j < profs[i]->n_rules; j++)
				l.rules[k++] = &profs[i]->rules[j];
		qsort(l.rules, k, sizeof(prule *), ptr_cmp);
		for (size_t i = 0; idl && i < k; i++)
			check_rule_idl(&l, l.rules[i]);
	}
	if (names) {
		check_merged(&l, s, names, n, LINT_COMBINED);
	} else {
		for (size_t i = 0; i < n_profs; i++)
			check_merged(&l, s, (const char *const *)&profs[i]->name, 1, LINT_ALONE);
		/* Each priority group merged on its own, every disagreeing
		 * pair of its rules reported: a container may carry exactly
		 * those two profiles, and then nothing higher masks their
		 * conflict. Merging the whole directory instead let a third,
		 * higher profile hide it from lint while scmd still denied the
		 * pair at run time. Conflicts already reported alone are not
		 * repeated (pair_seen). */
		const policy_profile **byprio = calloc(n_profs + 1, sizeof(*byprio));
		const char **group = calloc(n_profs + 1, sizeof(char *));
		if (!byprio || !group)
			l.err = -ENOMEM;
		else
			memcpy(byprio, profs, n_profs * sizeof(*byprio));
		if (byprio && group)
			qsort(byprio, n_profs, sizeof(*byprio), prio_cmp);
		for (size_t i = 0, k; byprio && group && i < n_profs && !l.err; i = k) {
			size_t n_group = 0;
			for (k = i; k < n_profs && byprio[k]->priority == byprio[i]->priority; k++)
				group[n_group++] = byprio[k]->name;
			if (n_group > 1)
				check_merged(&l, s, group, n_group, LINT_DIRECTORY);
		}
		free(group);
		free(byprio);
	}
	free(l.rules);
	free(l.pairs);
	free(profs);
	if (l.err) {
		policy_lint_report_free(l.rep);
		return scm_fail(ret_err, l.err, "lint failed: out of memory");
	}
	if (l.rep->n_findings)
		qsort(l.rep->findings, l.rep->n_findings, sizeof(policy_finding), finding_cmp);
	*ret = l.rep;
	return 0;
}

policy_lint_report *policy_lint_report_free(policy_lint_report *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_findings; i++) {
		free(r->findings[i].file);
		free(r->findings[i].pointer);
		free(r->findings[i].kind);
		free(r->findings[i].message);
	}
	free(r->findings);
	free(r);
	return NULL;
}

void policy_lint_report_print(const policy_lint_report *r, FILE *f)
{
	for (size_t i = 0; i < r->n_findings; i++) {
		const policy_finding *x = &r->findings[i];
		const char *sev = x->severity == POLICY_LINT_ERROR ? "error" : "warning";
		if (x->line)
			fprintf(f, "%s:%u:%u: %s: %s: %s [%s]\n", x->file, x->line, x->col, sev,
				x->pointer[0] ? x->pointer : "/", x->message, x->kind);
		else
			fprintf(f, "%s: %s: %s: %s [%s]\n", x->file, sev, x->pointer[0] ? x->pointer : "/",
				x->message, x->kind);
	}
}
