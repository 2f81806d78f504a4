/* grant.c: argument constraints a provider enforces for scmd.
 *
 * This is the one implementation of the constraints: the provider skeleton
 * calls scm_grant_check() on every call, and the policy tools (scmctl
 * policy check/explain, policy/constraint.c) call scm_constraint_check()
 * and scm_path_under(), so a tool never says "allow" where a provider
 * says "deny" (a uint64 clamped to int64, a string cut at a NUL).
 *
 * A grant's constraints are {"METHOD" | "*": {"PARAM": CONSTRAINT}} with
 * CONSTRAINT one of {"eq": V}, {"prefix": "s"}, {"path_prefix": "/dir"},
 * {"range": [lo, hi]}, {"in": [V, ...]}. A constrained parameter that is
 * missing is a denial: the client cannot dodge a rule by leaving it out. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <string.h>

#include "scm/constraint.h"
#include "scm/macro.h"
#include "scm-internal/wire.h"
#include "scmutil.h"

/* The rule itself lives in util/path.c, the one copy the policy engine's
 * path canonicalization sits beside. */
bool scm_path_under(const char *path, const char *dir)
{
	return path_under(path, dir);
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* A string argument as the provider will see it: json-c keeps strings
 * with embedded NULs, which C code reads only up to the first one. Such a
 * string cannot be checked as a prefix or a path honestly: refuse it. */
static const char *plain_string(json_object *v)
{
	if (!json_object_is_type(v, json_type_string))
		return NULL;
	const char *s = json_object_get_string(v);
	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* An int held as uint64 above INT64_MAX (json-c keeps those apart). */
static bool is_big_uint(json_object *v)
{
	return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == INT64_MAX &&
	       json_object_get_uint64(v) > (uint64_t)INT64_MAX;
}

/* lo <= v <= hi, exactly for integers (no rounding through double, so
 * 2^53+1 is not 2^53) and failing closed on anything else: a NaN compares
 * false with every bound, so "outside" is never tested as "below or
 * above". Bounds that are not numbers make the constraint malformed. */
static const char *check_range(json_object *x, json_object *v)
{
	if (!is_number(v))
		return "is not a number";
	if (!json_object_is_type(x, json_type_array) || json_object_array_length(x) != 2)
		return "has a malformed range constraint";
	json_object *lo = json_object_array_get_idx(x, 0), *hi = json_object_array_get_idx(x, 1);
	if (!is_number(lo) || !is_number(hi))
		return "has a malformed range constraint";
	bool ints = json_object_is_type(v, json_type_int) && json_object_is_type(lo, json_type_int) &&
		    json_object_is_type(hi, json_type_int);
	if (ints && !is_big_uint(v) && !is_big_uint(lo) && !is_big_uint(hi)) {
		int64_t i = json_object_get_int64(v);
		return i >= json_object_get_int64(lo) && i <= json_object_get_int64(hi)
			       ? NULL
			       : "is out of the allowed range";
	}
	if (ints) {
		/* Some value is above INT64_MAX: compare as unsigned where
		 * both sides are non-negative. */
		bool vneg = !is_big_uint(v) && json_object_get_int64(v) < 0;
		bool loneg = !is_big_uint(lo) && json_object_get_int64(lo) < 0;
		bool hineg = !is_big_uint(hi) && json_object_get_int64(hi) < 0;
		if (hineg || vneg)
			return vneg && !hineg && loneg && json_object_get_int64(v) >= json_object_get_int64(lo)
				       ? NULL
				       : "is out of the allowed range";
		uint64_t u = json_object_get_uint64(v);
		bool above_lo = loneg || u >= json_object_get_uint64(lo);
		return above_lo && u <= json_object_get_uint64(hi) ? NULL : "is out of the allowed range";
	}
	double d = json_object_get_double(v);
	if (d >= json_object_get_double(lo) && d <= json_object_get_double(hi))
		return NULL;
	return "is out of the allowed range";
}

const char *scm_constraint_check(struct json_object *c, struct json_object *v)
{
	json_object *x;

	/* Exactly one form: {"eq": 1, "range": [..]} would be read as
	 * whichever key came first, which no reader of the grant expects. */
	if (!json_object_is_type(c, json_type_object) || json_object_object_length(c) != 1)
		return "has a malformed constraint";

	if (json_object_object_get_ex(c, "eq", &x))
		return json_object_equal(x, v) ? NULL : "is not the allowed value";
	if (json_object_object_get_ex(c, "prefix", &x)) {
		const char *p = plain_string(x), *sv = plain_string(v);
		if (!p)
			return "has a malformed prefix constraint";
		if (!sv)
			return "is not a string (or holds a NUL)";
		return strncmp(sv, p, strlen(p)) == 0 ? NULL : "does not have the allowed prefix";
	}
	if (json_object_object_get_ex(c, "path_prefix", &x)) {
		const char *dir = plain_string(x), *sv = plain_string(v);
		if (!dir || dir[0] != '/')
			return "has a malformed path_prefix constraint";
		if (!sv)
			return "is not a string (or holds a NUL)";
		return scm_path_under(sv, dir) ? NULL : "is not a clean path under the allowed directory";
	}
	if (json_object_object_get_ex(c, "range", &x))
		return check_range(x, v);
	if (json_object_object_get_ex(c, "in", &x)) {
		size_t n = json_object_is_type(x, json_type_array) ? json_object_array_length(x) : 0;
		for (size_t i = 0; i < n; i++)
			if (json_object_equal(json_object_array_get_idx(x, i), v))
				return NULL;
		return "is not one of the allowed values";
	}
	return "has a constraint this libscm does not know (failing closed)";
}

static int check_set(json_object *set, const char *method, json_object *args,
		     scm_error **ret_err)
{
	/* foreach on anything but an object walks a NULL table: a grant whose
	 * per-method set is malformed denies, it does not crash or allow. */
	if (!json_object_is_type(set, json_type_object))
		return scm_fail(ret_err, SCM_E_DENIED, "%s: the grant's constraints are malformed (failing closed)",
				method);
	json_object_object_foreach(set, param, c)
	{
		json_object *v = NULL;
		if (!args || !json_object_object_get_ex(args, param, &v))
			return scm_fail(ret_err, SCM_E_DENIED,
					"%s: parameter '%s' is constrained by policy and was not given",
					method, param);
		const char *why = scm_constraint_check(c, v);
		if (why)
			return scm_fail(ret_err, SCM_E_DENIED, "%s: parameter '%s' %s (policy allows %s)",
					method, param, why,
					json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
	}
	return 0;
}

int scm_grant_check(const scm_grant *g, const char *method, struct json_object *args,
		    scm_error **ret_err)
{
	json_object *set;
	int r;

	if (!g->constraints)
		return 0;
	if (!json_object_is_type(g->constraints, json_type_object))
		return scm_fail(ret_err, SCM_E_DENIED, "%s: the grant's constraints are malformed (failing closed)",
				method);
	if (json_object_object_get_ex(g->constraints, "*", &set)) {
		r = check_set(set, method, args, ret_err);
		if (r)
			return r;
	}
	if (json_object_object_get_ex(g->constraints, method, &set))
		return check_set(set, method, args, ret_err);
	return 0;
}
