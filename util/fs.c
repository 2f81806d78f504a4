/* fs.c: mkdir -p. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scmutil.h"

int mkdir_p_parents(const char *path, mode_t parents_mode, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, parents_mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	return mkdir_p_parents(path, mode, mode);
}
