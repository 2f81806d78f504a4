/* rules.h: the dbus rules a grant carries (policy/dbus.c builds them, in
 * merge order) and the decision on one call. Pure: no bus, no libdbus, so
 * the unit test and the fuzz target drive it alone. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

typedef struct br_rule {
	char *bus, *destination, *path_prefix, *interface;
	char **methods; /* NULL: every method */
	struct json_object *args; /* {"argN": constraint} or NULL */
	bool allow;
	int64_t priority;
	char *origin;
} br_rule;

typedef struct br_rules {
	br_rule *v;
	size_t n;
} br_rules;

typedef struct br_target {
	const char *bus, *destination, *path, *interface, *method;
} br_target;

/* Parses the grant's "dbus" rules; -EINVAL with *ret_why (static) when
 * the list is not what policy/dbus.c writes, -ENOMEM. */
int br_rules_parse(struct json_object *arr, br_rules *ret, const char **ret_why);
void br_rules_done(br_rules *r);

/* Decides a call with its JSON arguments (an array, positional): true when
 * allowed, else false with why filled (the rule, or "no rule"). */
bool br_decide(const br_rules *r, const br_target *t, struct json_object *args, char *why, size_t whysz);
/* As br_decide, leaving the winning rule's argument constraints out: may
 * this member be reached at all (a signal subscription, whose arguments
 * are checked signal by signal). */
bool br_decide_member(const br_rules *r, const br_target *t, char *why, size_t whysz);
