/* settings.c: per-service grant settings. An allow rule may carry
 * "settings": {"NAME": value}; the service's interface declares which
 * names exist, their type and range (IDL "settings"), and the provider
 * reads the values from its grant (scm_grant.settings). Nothing here knows
 * any one service: a new knob is a line in an IDL file, not code in scmd
 * or in the engine.
 *
 * Merge: a grant carries, per setting, the value of the highest rule in
 * merge order among the allow rules that won a method of the grant, so the
 * result never depends on file or method order. A value the interface
 * does not declare, or that does not fit it, denies the service (fail
 * closed, named in the origin) and is a lint error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

#define SETTINGS_MAX 32
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static int rsetting_cmp(const void *a, const void *b)
{
	return strcmp(((const rsetting *)a)->name, ((const rsetting *)b)->name);
}

int rsettings_from_json(json_object *o, prule *r, const char **ret_key, const char **ret_why)
{
	*ret_key = NULL;
	*ret_why = NULL;
	if (!json_object_is_type(o, json_type_object)) {
		*ret_why = "expected an object {\"NAME\": value} of settings the service's interface declares";
		return -EINVAL;
	}
	if (!r->allow) {
		*ret_why = "a deny rule cannot carry settings (they configure a grant)";
		return -EINVAL;
	}
	size_t n = (size_t)json_object_object_length(o);
	if (n > SETTINGS_MAX) {
		*ret_why = "more than " STRINGIFY(SETTINGS_MAX) " settings";
		return -EINVAL;
	}
	if (!(r->settings = calloc(n ? n : 1, sizeof(rsetting))))
		return -ENOMEM;
	json_object_object_foreach(o, k, v)
	{
		rsetting *s = &r->settings[r->n_settings];
		*ret_key = k;
		if (!name_valid(k, SCM_NAME_MAX, NAME_RULE)) {
			*ret_why = "bad setting name: a-z 0-9 _ . - (it names a key of the service's settings)";
			return -EINVAL;
		}
		int res = pval_parse(v, &s->value);
		if (res < 0) {
			*ret_why = "expected a bool, number or string (integers from -2^63 to 2^63-1)";
			return res == -ENOMEM ? res : -EINVAL;
		}
		r->n_settings++;
		if (!(s->name = strdup(k)))
			return -ENOMEM;
	}
	*ret_key = NULL;
	qsort(r->settings, r->n_settings, sizeof(rsetting), rsetting_cmp);
	return 0;
}

void rsettings_done(prule *r)
{
	for (size_t i = 0; i < r->n_settings; i++) {
		free(r->settings[i].name);
		free(r->settings[i].value.s);
	}
	free(r->settings);
	r->settings = NULL;
	r->n_settings = 0;
}

const char *rsetting_check(const pidl_service *svc, const rsetting *s)
{
	json_object *v = pval_to_json(&s->value);
	const char *why = v ? pidl_setting_check(svc, s->name, v) : "cannot be checked (out of memory)";
	json_object_put(v);
	return why;
}

int grant_settings(const eservice *s, const pidl_service *idl, json_object **ret, char **ret_denied)
{
	const rsetting **pick = NULL;
	const prule **from = NULL;
	size_t n = 0;
	json_object *o = NULL;
	int r = -ENOMEM;
	*ret = NULL;
	*ret_denied = NULL;
	for (size_t i = 0; i < s->n_methods; i++) {
		const emethod *m = &s->methods[i];
		for (size_t k = 0; m->state == EM_ALLOW && k < m->winner->n_settings; k++) {
			const rsetting *st = &m->winner->settings[k];
			size_t j = 0;
			while (j < n && strcmp(pick[j]->name, st->name) != 0)
				j++;
			if (j < n) {
				/* the first winner in merge order sets each name */
				if (prule_priority_cmp(m->winner, from[j]) < 0) {
					pick[j] = st;
					from[j] = m->winner;
				}
				continue;
			}
			const rsetting **np = realloc(pick, (n + 1) * sizeof(*np));
			if (np)
				pick = np;
			const prule **nf = np ? realloc(from, (n + 1) * sizeof(*nf)) : NULL;
			if (!nf)
				goto out;
			from = nf;
			pick[n] = st;
			from[n++] = m->winner;
		}
	}
	for (size_t j = 0; j < n; j++) {
		const char *why = idl ? rsetting_check(idl, pick[j])
				      : "cannot be checked: no interface is known for the service";
		if (!why)
			continue;
		_cleanup_free_ char *origin = rule_origin(from[j]);
		json_object *v = pval_to_json(&pick[j]->value);
		int w = origin && v ? asprintf(ret_denied, "denied (fail closed): setting \"%s\" = %s of %s %s",
					       pick[j]->name, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
					       origin, why)
				    : -1;
		json_object_put(v);
		r = w < 0 ? -ENOMEM : 0;
		goto out;
	}
	if (n && !(o = json_object_new_object()))
		goto out;
	for (size_t j = 0; j < n; j++)
		json_object_object_add(o, pick[j]->name, pval_to_json(&pick[j]->value));
	*ret = o;
	r = 0;
out:
	free(pick);
	free(from);
	return r;
}
