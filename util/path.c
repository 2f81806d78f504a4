/* path.c: how paths are spelled. The grant rule path_prefix and the
 * policy engine's canonical keys both rest on these, so the tools and the
 * providers cannot disagree about what "under a directory" means. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scmutil.h"

bool path_is_clean(const char *path)
{
	if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../"))
		return false;
	size_t pl = strlen(path);
	return !((pl >= 2 && strcmp(path + pl - 2, "/.") == 0) ||
		 (pl >= 3 && strcmp(path + pl - 3, "/..") == 0));
}

/* The provider opens exactly the string it was given, so no later
 * resolution can climb out, short of a symlink inside dir, which is the
 * directory owner's business. */
bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (!path_is_clean(path))
		return false;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, dir, n) != 0)
		return false;
	return path[n] == '/' || (path[n] == '\0' && n > 1) || n == 1;
}

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
