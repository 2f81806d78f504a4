/* rootfs-plan.c: work for the rootfs that the parent does before the
 * clone. On the quick path as real root, the new root is the host's / bound
 * alone plus the host mounts directly under it that the container will
 * see: mounts under /proc, /sys, /dev, /run and /tmp would only be copied
 * to be hidden by the container's own, and copying (and tearing down) a
 * mount is a good part of launch time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch-internal.h"
#include "spec-internal.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else
			*o++ = *s;
	}
	*o = 0;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

int rootfs_host_submounts(const char *stage, char ***ret)
{
	static const char *const hidden[] = {"/proc", "/sys", "/dev", "/run", "/tmp", NULL};
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[8192];
	int root_id = -1;
	size_t n = 0, cap = 16;
	_cleanup_(strv_freep) char **v = calloc(cap + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	struct {
		int id, parent;
		char *path;
	} *all = NULL;
	size_t n_all = 0;
	int r = 0;
	while (fgets(line, sizeof(line), f)) {
		int id, parent;
		char mp[4096];
		if (sscanf(line, "%d %d %*s %*s %4095s", &id, &parent, mp) != 3)
			continue;
		unescape(mp);
		if (strcmp(mp, "/") == 0)
			root_id = id; /* the last one stacked on / is what we see */
		void *grown = realloc(all, (n_all + 1) * sizeof(*all));
		if (!grown) {
			r = -ENOMEM;
			goto out;
		}
		all = grown;
		all[n_all].id = id;
		all[n_all].parent = parent;
		if (!(all[n_all++].path = strdup(mp))) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n_all; i++) {
		bool skip = all[i].parent != root_id || strcmp(all[i].path, "/") == 0 ||
			    under(all[i].path, stage) || under(stage, all[i].path);
		for (const char *const *h = hidden; !skip && *h; h++)
			skip = under(all[i].path, *h);
		if (skip)
			continue;
		if (n == cap) {
			char **grown = realloc(v, (2 * cap + 1) * sizeof(char *));
			if (!grown) {
				r = -ENOMEM;
				goto out;
			}
			v = grown;
			cap *= 2;
		}
		v[n++] = TAKE_PTR(all[i].path);
		v[n] = NULL;
	}
	*ret = TAKE_PTR(v);
out:
	for (size_t i = 0; i < n_all; i++)
		free(all[i].path);
	free(all);
	return r;
}
