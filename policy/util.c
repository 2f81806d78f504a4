/* util.c: small helpers of the policy engine: globs, origin strings, the
 * merge order of rules (names, paths and string vectors are util/'s). */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool glob_match(const char *pattern, const char *s)
{
	return fnmatch(pattern, s, 0) == 0;
}

char *rule_origin(const prule *r)
{
	char *s = NULL;
	if (asprintf(&s, "profile '%s' (%s#%s, priority %d)", r->profile->name, r->profile->file,
		     r->pointer, r->profile->priority) < 0)
		return NULL;
	return s;
}

char *setting_origin(const psetting *st)
{
	char *s = NULL;
	if (asprintf(&s, "profile '%s' (%s#%s, priority %d)", st->profile->name, st->profile->file,
		     st->pointer, st->profile->priority) < 0)
		return NULL;
	return s;
}

unsigned profile_line(const policy_profile *p, const char *pointer, unsigned *ret_col)
{
	const jscan_pos *pos = jscan_lookup(&p->pos, pointer);
	if (!pos)
		return 0;
	if (ret_col)
		*ret_col = pos->col;
	return pos->line;
}

/* The one order of the merge: priority high to low, then profile name,
 * then position in the profile. It never depends on the order of files or
 * of the caller's list, which is what makes the result deterministic. */
int prule_priority_cmp(const prule *a, const prule *b)
{
	if (a->profile->priority != b->profile->priority)
		return a->profile->priority > b->profile->priority ? -1 : 1;
	int c = strcmp(a->profile->name, b->profile->name);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}
