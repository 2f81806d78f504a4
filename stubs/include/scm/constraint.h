/* constraint.h: the argument constraints of a grant, one implementation
 * shared by libscm's provider skeleton (scm_grant_check) and the policy
 * tools (scmctl policy check/explain), so both decide every value alike. */
#pragma once
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* Checks one argument value against one constraint object ({"eq": V},
 * {"prefix": "s"}, {"path_prefix": "/dir"}, {"range": [lo, hi]},
 * {"in": [V, ...]}). NULL when v satisfies c, else a short reason ("is out
 * of the allowed range"). Integers are compared exactly over the whole
 * int64 and uint64 range; a string holding a NUL never satisfies a prefix
 * or a path; a malformed or unknown constraint never allows. */
const char *scm_constraint_check(struct json_object *c, struct json_object *v);

/* True when path is absolute, has no ".", ".." or empty component, and
 * continues dir at a component boundary (dir "/" admits every such path). */
bool scm_path_under(const char *path, const char *dir);

#ifdef __cplusplus
}
#endif
