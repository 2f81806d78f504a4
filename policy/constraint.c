/* constraint.c: argument constraints of allow rules, the forms a grant
 * carries to the provider (libscm's scm_grant_check, stubs/grant.c):
 * {"eq": V}, {"prefix": "s"}, {"path_prefix": "/dir"}, {"range": [lo, hi]}
 * (inclusive), {"in": [V, ...]}; V is a bool, number or string, compared
 * with its JSON type as libscm does (1 is not 1.0). Parsing and comparison
 * (for conflicts and reload re-checks) live here; evaluation against call
 * arguments (explain, check) is libscm's scm_constraint_check(), the very
 * code the provider skeleton runs, so the tools cannot disagree with it. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/constraint.h>

#include "internal.h"

#define SET_MAX 256

static int pval_from_json(json_object *j, pval *ret, bool numbers_only)
{
	pval v = { 0 };
	switch (j ? json_object_get_type(j) : json_type_null) {
	case json_type_boolean:
		if (numbers_only)
			return -EINVAL;
		v.kind = PV_BOOL;
		v.b = json_object_get_boolean(j);
		break;
	case json_type_int:
		v.kind = PV_INT;
		v.i = json_object_get_int64(j);
		/* json-c keeps 2^63..2^64-1 as uint64 and reads it back as
		 * INT64_MAX: a bound clamped so would silently mean another
		 * number, so such values are refused */
		if (v.i == INT64_MAX && json_object_get_uint64(j) > (uint64_t)INT64_MAX)
			return -ERANGE;
		break;
	case json_type_double:
		v.kind = PV_DOUBLE;
		v.d = json_object_get_double(j);
		if (!isfinite(v.d))
			return -EINVAL;
		break;
	case json_type_string:
		if (numbers_only)
			return -EINVAL;
		v.kind = PV_STRING;
		v.s = strdup(json_object_get_string(j));
		if (!v.s)
			return -ENOMEM;
		break;
	default:
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int pval_parse(struct json_object *j, pval *ret)
{
	return pval_from_json(j, ret, false);
}

static double pval_num(const pval *v)
{
	return v->kind == PV_INT ? (double)v->i : v->d;
}

static bool pval_equal(const pval *a, const pval *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case PV_BOOL:
		return a->b == b->b;
	case PV_INT:
		return a->i == b->i;
	case PV_DOUBLE:
		return a->d == b->d;
	case PV_STRING:
		return strcmp(a->s, b->s) == 0;
	}
	return false;
}

static int pval_cmp_num(const pval *a, const pval *b)
{
	if (a->kind == PV_INT && b->kind == PV_INT)
		return a->i < b->i ? -1 : a->i > b->i;
	double x = pval_num(a), y = pval_num(b);
	return x < y ? -1 : x > y;
}

struct json_object *pval_to_json(const pval *v)
{
	switch (v->kind) {
	case PV_BOOL:
		return json_object_new_boolean(v->b);
	case PV_INT:
		return json_object_new_int64(v->i);
	case PV_DOUBLE:
		return json_object_new_double(v->d);
	case PV_STRING:
		return json_object_new_string(v->s);
	}
	return NULL;
}

void pcons_done(pcons *c)
{
	free(c->param);
	free(c->v.s);
	for (size_t i = 0; i < c->n_set; i++)
		free(c->set[i].s);
	free(c->set);
	*c = (pcons){ 0 };
}

int pcons_from_json(struct json_object *j, pcons *ret, scm_error **ret_err)
{
	pcons c = { 0 };
	if (!json_object_is_type(j, json_type_object) || json_object_object_length(j) != 1)
		return scm_fail(ret_err, -EINVAL, "expected one of {\"eq\": V}, {\"prefix\": \"s\"}, "
				     "{\"path_prefix\": \"/dir\"}, {\"range\": [lo, hi]}, {\"in\": [V, ...]}");
	json_object_object_foreach(j, k, v)
	{
		if (strcmp(k, "eq") == 0) {
			c.kind = PC_EQ;
			if (pval_from_json(v, &c.v, false) < 0)
				return scm_fail(ret_err, -EINVAL, "eq: expected a bool, number or string "
						     "(integers from -2^63 to 2^63-1)");
		} else if (strcmp(k, "prefix") == 0) {
			c.kind = PC_PREFIX;
			if (!json_object_is_type(v, json_type_string) || pval_from_json(v, &c.v, false) < 0)
				return scm_fail(ret_err, -EINVAL, "prefix: expected a string");
		} else if (strcmp(k, "path_prefix") == 0) {
			c.kind = PC_PATH_PREFIX;
			const char *why = NULL;
			if (!json_object_is_type(v, json_type_string))
				return scm_fail(ret_err, -EINVAL, "path_prefix: expected an absolute directory path");
			/* canonical, so "/srv/disks/" and "/srv/disks" are one
			 * constraint for the merge, and ".." never reaches a grant */
			int r = path_canon(json_object_get_string(v), &c.v.s, &why);
			if (r < 0)
				return scm_fail(ret_err, r == -ENOMEM ? -ENOMEM : -EINVAL, "path_prefix: \"%.200s\" %s", json_object_get_string(v),
					 why ? why : "cannot be stored");
			c.v.kind = PV_STRING;
		} else if (strcmp(k, "range") == 0) {
			c.kind = PC_RANGE;
			if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2 ||
			    pval_from_json(json_object_array_get_idx(v, 0), &c.lo, true) < 0 ||
			    pval_from_json(json_object_array_get_idx(v, 1), &c.hi, true) < 0) {
				return scm_fail(ret_err, -EINVAL, "range: expected [lo, hi] with two numbers "
						     "(integers from -2^63 to 2^63-1)");
			}
			if (pval_cmp_num(&c.lo, &c.hi) > 0)
				return scm_fail(ret_err, -EINVAL, "range: lo is greater than hi");
		} else if (strcmp(k, "in") == 0) {
			c.kind = PC_IN;
			size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
			if (n == 0 || n > SET_MAX)
				return scm_fail(ret_err, -EINVAL, "in: expected an array of 1 to %d values", SET_MAX);
			c.set = calloc(n, sizeof(pval));
			if (!c.set)
				return scm_fail(ret_err, -ENOMEM, "out of memory");
			for (size_t i = 0; i < n; i++) {
				if (pval_from_json(json_object_array_get_idx(v, i), &c.set[i], false) < 0) {
					pcons_done(&c);
					return scm_fail(ret_err, -EINVAL, "in/%zu: expected a bool, number or string "
							     "(integers from -2^63 to 2^63-1)", i);
				}
				c.n_set++;
			}
		} else {
			return scm_fail(ret_err, -EINVAL, "unknown constraint \"%.40s\" (eq, prefix, path_prefix, range, in)", k);
		}
	}
	*ret = c;
	return 0;
}

bool pcons_equal(const pcons *a, const pcons *b)
{
	if (strcmp(a->param, b->param) || a->kind != b->kind)
		return false;
	switch (a->kind) {
	case PC_EQ:
	case PC_PREFIX:
	case PC_PATH_PREFIX:
		return pval_equal(&a->v, &b->v);
	case PC_RANGE:
		return pval_cmp_num(&a->lo, &b->lo) == 0 && pval_cmp_num(&a->hi, &b->hi) == 0;
	case PC_IN:
		if (a->n_set != b->n_set)
			return false;
		for (size_t i = 0; i < a->n_set; i++)
			if (!pval_equal(&a->set[i], &b->set[i]))
				return false;
		return true;
	}
	return false;
}

/* Two rules at the same priority agree when they would produce the same
 * grant entry: same action, the same constraints and the same settings. */
bool prule_same_effect(const prule *a, const prule *b)
{
	if (a->allow != b->allow || a->n_args != b->n_args || a->n_settings != b->n_settings)
		return false;
	for (size_t i = 0; i < a->n_args; i++)
		if (!pcons_equal(&a->args[i], &b->args[i]))
			return false;
	for (size_t i = 0; i < a->n_settings; i++)
		if (strcmp(a->settings[i].name, b->settings[i].name) ||
		    !pval_equal(&a->settings[i].value, &b->settings[i].value))
			return false;
	return true;
}

/* Does constraint c admit value v? Asked of libscm's check, so the reload
 * re-check judges values exactly as providers do. */
static bool pcons_admits(const pcons *c, const pval *v)
{
	json_object *cj = pcons_to_json(c), *vj = pval_to_json(v);
	bool ok = cj && vj && !scm_constraint_check(cj, vj);
	json_object_put(cj);
	json_object_put(vj);
	return ok;
}

bool pcons_match_all(const pcons *c, size_t n, struct json_object *args, char *buf, size_t bufsz)
{
	for (size_t i = 0; i < n; i++) {
		json_object *a = NULL;
		if (!args || !json_object_is_type(args, json_type_object) ||
		    !json_object_object_get_ex(args, c[i].param, &a)) {
			snprintf(buf, bufsz, "parameter \"%s\" is constrained but missing", c[i].param);
			return false;
		}
		json_object *cj = pcons_to_json(&c[i]);
		const char *why = cj ? scm_constraint_check(cj, a) : "cannot be checked (out of memory)";
		if (why) {
			snprintf(buf, bufsz, "parameter \"%s\" = %s does not satisfy %s: it %s", c[i].param,
				 json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
				 cj ? json_object_to_json_string_ext(cj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "?",
				 why);
			json_object_put(cj);
			return false;
		}
		json_object_put(cj);
	}
	return true;
}

struct json_object *pcons_to_json(const pcons *c)
{
	json_object *o = json_object_new_object(), *v = NULL;
	if (!o)
		return NULL;
	switch (c->kind) {
	case PC_EQ:
		v = pval_to_json(&c->v);
		json_object_object_add(o, "eq", v);
		break;
	case PC_PREFIX:
		v = pval_to_json(&c->v);
		json_object_object_add(o, "prefix", v);
		break;
	case PC_PATH_PREFIX:
		v = pval_to_json(&c->v);
		json_object_object_add(o, "path_prefix", v);
		break;
	case PC_RANGE:
		v = json_object_new_array();
		if (v) {
			json_object_array_add(v, pval_to_json(&c->lo));
			json_object_array_add(v, pval_to_json(&c->hi));
		}
		json_object_object_add(o, "range", v);
		break;
	case PC_IN:
		v = json_object_new_array();
		for (size_t i = 0; v && i < c->n_set; i++)
			json_object_array_add(v, pval_to_json(&c->set[i]));
		json_object_object_add(o, "in", v);
		break;
	}
	if (!v) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Sound, not complete: true only when every value old_c admits is
 * admitted by new_c, so a kept channel never has more than the new policy
 * allows. A case it cannot prove just costs a revocation and a reconnect. */
bool pcons_within(const pcons *old_c, const pcons *new_c)
{
	switch (old_c->kind) {
	case PC_EQ:
		return pcons_admits(new_c, &old_c->v);
	case PC_IN:
		for (size_t i = 0; i < old_c->n_set; i++)
			if (!pcons_admits(new_c, &old_c->set[i]))
				return false;
		return true;
	case PC_PREFIX:
		return new_c->kind == PC_PREFIX &&
		       strncmp(old_c->v.s, new_c->v.s, strlen(new_c->v.s)) == 0;
	case PC_PATH_PREFIX:
		/* every clean path under old's dir is under new's dir */
		return new_c->kind == PC_PATH_PREFIX && scm_path_under(old_c->v.s, new_c->v.s);
	case PC_RANGE:
		return new_c->kind == PC_RANGE && pval_cmp_num(&new_c->lo, &old_c->lo) <= 0 &&
		       pval_cmp_num(&old_c->hi, &new_c->hi) <= 0;
	}
	return false;
}
