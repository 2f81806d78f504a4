/* util.c: small helpers of the policy engine: names and globs, origin
 * strings, string vectors, the merge order of rules. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Service, method and parameter names: what an IDL can spell, bounded, so
 * they are safe in messages, DOT files and JSON pointers without escaping. */
bool name_valid(const char *s, bool glob)
{
	size_t n = 0;
	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-' || c == '.')
			continue;
		if (glob && (c == '*' || c == '?'))
			continue;
		return false;
	}
	return n <= SCM_NAME_MAX;
}

/* One spelling per path: "/x/", "/x/." and "/x//" are all "/x", so a
 * profile cannot make a second mount key (or constraint) for the same
 * place by respelling it and win the merge with it. ".." is refused, not
 * resolved: resolving it by name would be a guess about symlinks. */
int path_canon(const char *in, char **ret, const char **ret_why)
{
	size_t n = strlen(in);
	if (in[0] != '/') {
		*ret_why = "is not an absolute path";
		return -EINVAL;
	}
	if (n > 4096) {
		*ret_why = "is longer than 4096 bytes";
		return -EINVAL;
	}
	char *out = malloc(n + 2), *o = out;
	if (!out)
		return -ENOMEM;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t l = (size_t)(e - p);
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			*ret_why = "has a \"..\" component";
			return -EINVAL;
		}
		if (l && !(l == 1 && p[0] == '.')) {
			*o++ = '/';
			memcpy(o, p, l);
			o += l;
		}
		p = e;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	*ret = out;
	return 0;
}

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

int strv_add(char ***v, size_t *n, const char *s)
{
	char *d = strdup(s);
	if (!d)
		return -ENOMEM;
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));
	if (!nv) {
		free(d);
		return -ENOMEM;
	}
	nv[(*n)++] = d;
	*v = nv;
	return 0;
}

void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
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
