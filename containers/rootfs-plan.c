/* rootfs-plan.c: work for the quick path's root that the parent does before
 * the clone. The quick path shows what an application needs, in Flatpak's
 * spirit (docs/containers.md, "Host view"): /usr and the /bin, /sbin,
 * /lib* beside it, /etc without its secrets, and the runtime's own
 * installation tree when it lies outside /usr. Here we decide which /etc
 * entries are secrets and where that tree is; the child only mounts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Left out of the quick path's /etc whatever their mode. */
static const char *const etc_secrets[] = {
	"shadow", "gshadow", "shadow-", "gshadow-", "sudoers", "sudoers.d", "ssl/private",
	"security/opasswd", NULL};

static bool secret_name(const char *dir, const char *name)
{
	if (strcmp(dir, "/etc/ssh") == 0)
		return fnmatch("ssh_host_*_key", name, 0) == 0;
	for (const char *const *s = etc_secrets; *s; s++)
		if (strcmp(*s, name) == 0)
			return true;
	return false;
}

static int push(char ***v, size_t *n, const char *dir, const char *name)
{
	char **g = realloc(*v, (*n + 2) * sizeof(char *));
	if (!g)
		return -ENOMEM;
	*v = g;
	if (asprintf(&g[*n], "%s/%s", dir, name) < 0)
		return -ENOMEM;
	g[++*n] = NULL;
	return 0;
}

/* Root-owned entries others may not read are someone's secret: the named
 * ones and any such entry directly in /etc or /etc/ssh. Deeper files are
 * left to their modes, which the container's unprivileged ids cannot get
 * past (a root runtime maps it onto a subordinate range). */
static int etc_masks(char ***ret)
{
	static const char *const dirs[] = {"/etc", "/etc/ssh"};
	_cleanup_(strv_freep) char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	int r;
	if (!v)
		return -ENOMEM;
	for (const char *const *s = etc_secrets; *s; s++)
		if (strchr(*s, '/')) {
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "/etc/%s", *s);
			struct stat st;
			if (lstat(p, &st) == 0 && (r = push(&v, &n, "/etc", *s)) < 0)
				return r;
		}
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d))) {
			struct stat st;
			if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
				continue;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISLNK(st.st_mode))
				continue;
			bool hidden = st.st_uid == 0 && !(st.st_mode & S_IROTH);
			if ((hidden || secret_name(dirs[i], e->d_name)) && (r = push(&v, &n, dirs[i], e->d_name)) < 0) {
				closedir(d);
				return r;
			}
		}
		closedir(d);
	}
	*ret = TAKE_PTR(v);
	return 0;
}

/* The runtime's own tree, when it is outside /usr: build/ for
 * build/bin/scmd (the directory above bin/, sbin/ or libexec/), else the
 * program's own directory. Programs of a build tree must run in the
 * containers its runtime starts. */
char *rootfs_self_tree(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash || slash == exe)
		return NULL;
	*slash = 0;
	slash = strrchr(exe, '/');
	if (slash && slash != exe &&
	    (strcmp(slash, "/bin") == 0 || strcmp(slash, "/sbin") == 0 || strcmp(slash, "/libexec") == 0))
		*slash = 0;
	if (exe[0] != '/' || under(exe, "/usr"))
		return NULL;
	return strdup(exe);
}

char *container_self_tree(void)
{
	return rootfs_self_tree();
}

int rootfs_quick_plan(launch_plan *p)
{
	int r = etc_masks(&p->etc_masks);
	if (r < 0)
		return r;
	p->self_tree = rootfs_self_tree();
	return 0;
}

void rootfs_quick_plan_done(launch_plan *p)
{
	p->etc_masks = strv_free(p->etc_masks);
	free(p->self_tree);
	p->self_tree = NULL;
}
