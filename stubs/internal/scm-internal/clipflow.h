/* clipflow.h: clipboard flow rules, one implementation shared by the
 * graphics proxy (which enforces them) and the policy tools (scmctl policy
 * explain), so both decide every flow alike.
 *
 * A container's effective profile says which clipboard flows it takes
 * part in, as rules {"from": PATTERN, "to": PATTERN, "allow": BOOL} in
 * merge order (priority high to low). scmd hands them to the graphics
 * proxy in the grant of the container's gfx channel, whose interface asks
 * for them (IDL "grant_rules": ["clipboard"]), as the grant's
 * {"rules": {"clipboard": [RULE, ...]}} (scm_grant.rules), each rule
 * also carrying "priority" and "origin" (the profile, file and pointer).
 *
 * Patterns are endpoint names or globs (letters, digits, _ - . * ?) or
 * the pseudo-name "@viewer" (the viewers' own clipboard), which no glob
 * matches: a profile names the viewer or it does not reach it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scm/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

#define SCM_CLIP_VIEWER "@viewer"
#define SCM_CLIP_RULES_MAX 256

typedef struct scm_clip_rule {
	char *from, *to;
	bool allow;
	int64_t priority;
	char *origin; /* "" when the grant gave none */
} scm_clip_rule;

typedef struct scm_clip_rules {
	scm_clip_rule *v;
	size_t n;
} scm_clip_rules;

/* A pattern a rule may hold: "@viewer", or a name/glob of 1..128
 * characters from [A-Za-z0-9_.-*?]. */
bool scm_clip_pattern_valid(const char *p);
/* Whether pattern matches name: "*" and "?" never match "@viewer". */
bool scm_clip_match(const char *pattern, const char *name);

/* Parses a rule list as scmd puts it in a grant (NULL or a missing list:
 * no rules). SCM_E_INVALID (or -ENOMEM), with an observation naming the
 * element pushed on *ret_err, when it is malformed; the caller then knows
 * no rule (and so allows nothing). */
int scm_clip_rules_parse(struct json_object *arr, scm_clip_rules *ret, scm_error **ret_err);
void scm_clip_rules_done(scm_clip_rules *r);

/* One end's decision on the flow from -> to: the first rule (in merge
 * order) that matches both decides; another matching rule at the same
 * priority with the other action is a conflict, which denies (fail
 * closed); no rule: denied. why (optional) gets a one-line reason naming
 * the deciding rule's origin, for an allow as for a deny. It is the
 * decision's reason (for audit records and `policy explain`, like
 * policy/decide.c's reason), not an error: a denied flow is an answer,
 * so it is a caller's buffer and no scm_error chain. */
bool scm_clip_decide(const scm_clip_rules *r, const char *from, const char *to, char *why, size_t whysz);

#ifdef __cplusplus
}
#endif
