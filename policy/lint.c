/* lint.c: checks a set of profiles as if one container carried them all.
 *
 * Errors (lint fails, a store that has them is not loaded): services,
 * methods and parameters the interfaces do not know, constraints that do
 * not fit a parameter's type, rules of equal priority that conflict.
 * Warnings: rules every method of which is decided by higher rules
 * (shadowed), rules that match nothing or change nothing (dead), sandbox
 * settings overridden by a different value. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <scm/macro.h>

#include "internal.h"

typedef struct linter {
	policy_lint_report *rep;
	const policy_effective *e;
	const policy_idl_set *idl;
	const prule **rules; /* every rule, sorted by address */
	size_t n_rules;
	bool *matched, *used;
	const prule **shadowed_by;
	const void **pairs; /* conflict pairs already reported */
	size_t n_pairs;
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
		return;
	}
	bool any = false;
	for (size_t i = 0; i < l->idl->n; i++) {
		const pidl_service *svc = &l->idl->services[i];
		if (!glob_match(r->service, svc->name))
			continue;
		any = true;
		for (size_t k = 0; k < svc->n_methods; k++) {
			bool named = r->all_methods;
			for (size_t j = 0; !named && j < r->n_methods; j++)
				named = strcmp(r->methods[j], svc->methods[k].name) == 0;
			if (named)
				check_args(l, r, svc, &svc->methods[k]);
		}
	}
	snprintf(ptr, sizeof(ptr), "%s/service", r->pointer);
	if (!any)
		add(l, POLICY_LINT_WARNING, r->profile, ptr, "dead",
		    "glob \"%s\" matches no known service", r->service);
}

static bool pair_seen(linter *l, const void *a, const void *b)
{
	for (size_t i = 0; i < l->n_pairs; i += 2)
		if ((l->pairs[i] == a && l->pairs[i + 1] == b) || (l->pairs[i] == b && l->pairs[i + 1] == a))
			return true;
	const void **np = realloc(l->pairs, (l->n_pairs + 2) * sizeof(void *));
	if (!np) {
		l->err = -ENOMEM;
		return true;
	}
	np[l->n_pairs++] = a;
	np[l->n_pairs++] = b;
	l->pairs = np;
	return false;
}

static void check_services(linter *l)
{
	const policy_effective *e = l->e;
	for (size_t i = 0; i < e->n_services; i++) {
		const eservice *s = &e->services[i];
		for (size_t k = 0; k < s->n_methods; k++) {
			const emethod *m = &s->methods[k];
			if (!m->winner)
				continue;
			size_t w = rule_idx(l, m->winner);
			l->matched[w] = l->used[w] = true;
			for (size_t t = 0; t < m->n_ties; t++) {
				size_t ti = rule_idx(l, m->ties[t]);
				l->matched[ti] = l->used[ti] = true;
				if (m->state != EM_CONFLICT || prule_same_effect(m->winner, m->ties[t]) ||
				    pair_seen(l, m->winner, m->ties[t]))
					continue;
				_cleanup_free_ char *other = rule_origin(m->ties[t]);
				add(l, POLICY_LINT_ERROR, m->winner->profile, m->winner->pointer, "conflict",
				    "%s %s.%s conflicts with %s %s at equal priority %d (both deny at run time; "
				    "give one profile a higher priority)",
				    m->winner->allow ? "allow" : "deny", s->name, m->name,
				    m->ties[t]->allow ? "allow" : "deny", other ? other : "?",
				    m->winner->profile->priority);
			}
			for (size_t o = 0; o < m->n_overrode; o++) {
				size_t oi = rule_idx(l, m->overrode[o]);
				l->matched[oi] = true;
				if (!l->shadowed_by[oi])
					l->shadowed_by[oi] = m->winner;
			}
		}
	}
	/* a deny that wins somewhere but never overrides an allow changes
	 * nothing: default deny already says the same */
	bool *deny_useful = calloc(l->n_rules + 1, sizeof(bool));
	if (!deny_useful) {
		l->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < e->n_services; i++)
		for (size_t k = 0; k < e->services[i].n_methods; k++) {
			const emethod *m = &e->services[i].methods[k];
			if (m->state == EM_CONFLICT) {
				/* reported as a conflict already */
				deny_useful[rule_idx(l, m->winner)] = true;
				for (size_t t = 0; t < m->n_ties; t++)
					deny_useful[rule_idx(l, m->ties[t])] = true;
			}
			if (m->state != EM_DENY)
				continue;
			for (size_t o = 0; o < m->n_overrode; o++)
				if (m->overrode[o]->allow)
					deny_useful[rule_idx(l, m->winner)] = true;
		}
	for (size_t i = 0; i < l->n_rules; i++) {
		const prule *r = l->rules[i];
		if (!l->matched[i])
			continue; /* globs matching nothing: check_rule_idl() said so */
		if (!l->used[i]) {
			_cleanup_free_ char *by = rule_origin(l->shadowed_by[i]);
			add(l, POLICY_LINT_WARNING, r->profile, r->pointer, "shadowed",
			    "never decides anything: every method it covers is decided by higher rules, "
			    "e.g. %s", by ? by : "?");
		} else if (!r->allow && !deny_useful[i]) {
			add(l, POLICY_LINT_WARNING, r->profile, r->pointer, "dead",
			    "deny changes nothing: no lower-priority rule allows what it denies "
			    "(default deny already applies)");
		}
	}
	free(deny_useful);
}

static void check_settings(linter *l)
{
	const policy_effective *e = l->e;
	for (size_t i = 0; i < e->n_settings; i++) {
		const esetting *es = &e->settings[i];
		for (size_t t = 0; t < es->n_ties; t++) {
			if (strcmp(es->ties[t]->value, es->winner->value) == 0)
				continue;
			_cleanup_free_ char *other = setting_origin(es->ties[t]);
			add(l, POLICY_LINT_ERROR, es->winner->profile, es->winner->pointer, "conflict",
			    "%s = %s conflicts with %s = %s in %s at equal priority %d (fails closed: %s)",
			    es->winner->key, es->winner->value, es->ties[t]->key, es->ties[t]->value,
			    other ? other : "?", es->winner->profile->priority, es->value);
		}
		for (size_t o = 0; o < es->n_overrode; o++) {
			if (strcmp(es->overrode[o]->value, es->value) == 0)
				continue;
			_cleanup_free_ char *by = setting_origin(es->winner);
			add(l, POLICY_LINT_WARNING, es->overrode[o]->profile, es->overrode[o]->pointer,
			    "shadowed", "%s = %s is overridden by %s = %s from %s", es->overrode[o]->key,
			    es->overrode[o]->value, es->winner->key, es->value, by ? by : "?");
		}
	}
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

int policy_lint(const policy_store *s, const policy_idl_set *idl, policy_lint_report **ret,
		scm_error **ret_err)
{
	linter l = { .idl = idl };
	policy_effective *e = NULL;
	const char **names = calloc(s->n + 1, sizeof(char *));
	int r;
	if (!names || !(l.rep = calloc(1, sizeof(*l.rep)))) {
		free(names);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->n; i++) {
		names[i] = s->profiles[i]->name;
		l.n_rules += s->profiles[i]->n_rules;
	}
	r = policy_effective_build(s, names, s->n, idl, &e, ret_err);
	free(names);
	if (r) {
		policy_lint_report_free(l.rep);
		return r;
	}
	l.e = e;
	l.rules = calloc(l.n_rules + 1, sizeof(prule *));
	l.matched = calloc(l.n_rules + 1, sizeof(bool));
	l.used = calloc(l.n_rules + 1, sizeof(bool));
	l.shadowed_by = calloc(l.n_rules + 1, sizeof(prule *));
	if (!l.rules || !l.matched || !l.used || !l.shadowed_by) {
		l.err = -ENOMEM;
	} else {
		size_t n = 0;
		for (size_t i = 0; i < s->n; i++)
			for (size_t k = 0; k < s->profiles[i]->n_rules; k++)
				l.rules[n++] = &s->profiles[i]->rules[k];
		qsort(l.rules, n, sizeof(prule *), ptr_cmp);
		for (size_t i = 0; idl && i < n; i++)
			check_rule_idl(&l, l.rules[i]);
		check_services(&l);
		check_settings(&l);
	}
	free(l.rules);
	free(l.matched);
	free(l.used);
	free(l.shadowed_by);
	free(l.pairs);
	policy_effective_unref(e);
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
