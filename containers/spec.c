/* spec.c: container_spec lifetime: loading a bundle, the quick-path spec
 * built in code (its root is assembled by rootfs.c: /usr, /etc and the
 * like, read-only), and freeing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec-internal.h"

extern char **environ;

container_spec *container_spec_free(container_spec *s)
{
	if (!s)
		return NULL;
	strv_free(s->args);
	strv_free(s->env);
	free(s->cwd);
	free(s->additional_gids);
	free(s->rlimits);
	free(s->root_path);
	free(s->hostname);
	for (size_t i = 0; i < ELEMENTSOF(s->ns_join); i++)
		free(s->ns_join[i]);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		free(s->mounts[i].data);
	}
	free(s->mounts);
	free(s->uid_mappings);
	free(s->gid_mappings);
	for (size_t i = 0; i < s->n_seccomp_rules; i++)
		free(s->seccomp_rules[i].name);
	free(s->seccomp_rules);
	strv_free(s->masked_paths);
	strv_free(s->readonly_paths);
	strv_free(s->profiles);
	strv_free(s->provides);
	free(s);
	return NULL;
}

#define CONFIG_MAX (4u << 20)

int container_spec_load(const char *bundle, container_spec **ret, scm_error **ret_err)
{
	char abs[PATH_MAX];
	if (!realpath(bundle, abs)) {
		int r = -errno;
		ctr_fail(ret_err, r == -ENOENT || r == -ENOTDIR ? CONTAINER_E_ROOTFS : r, "%s: %s", bundle, strerror(-r));
		return r == -ENOENT || r == -ENOTDIR ? CONTAINER_E_ROOTFS : r;
	}
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/config.json", abs) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX) {
		int r = fd < 0 || errno ? -errno : -EFBIG;
		if (fd >= 0 && !S_ISREG(st.st_mode))
			r = -EINVAL;
		else if (fd >= 0 && st.st_size > CONFIG_MAX)
			r = -EFBIG;
		ctr_fail(ret_err, CONTAINER_E_SPEC, "%s: %s", path, strerror(-r));
		return CONTAINER_E_SPEC;
	}
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	buf[got] = 0;
	return container_spec_parse(buf, got, abs, ret, ret_err);
}

static const char *const default_masked[] = {
	"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/proc/acpi", "/proc/latency_stats", "/proc/timer_stats",
	"/proc/asound", NULL};
static const char *const default_readonly[] = {"/proc/sys", "/proc/sysrq-trigger",
					       "/proc/irq", "/proc/bus", "/proc/fs", NULL};

const char *const *container_default_masked_paths(void);
const char *const *container_default_readonly_paths(void);
const char *const *container_default_masked_paths(void)
{
	return default_masked;
}
const char *const *container_default_readonly_paths(void)
{
	return default_readonly;
}

static int add_mount(container_spec *s, const char *dest, const char *type, const char *source,
		     unsigned long flags, const char *data)
{
	container_mount *m = &s->mounts[s->n_mounts];
	*m = (container_mount){.flags = flags, .readonly = flags & MS_RDONLY};
	if (!(m->destination = strdup(dest)) || !(m->type = strdup(type)) ||
	    !(m->source = strdup(source)) || (data && !(m->data = strdup(data)))) {
		free(m->destination);
		free(m->type);
		free(m->source);
		return -ENOMEM;
	}
	s->n_mounts++;
	return 0;
}

char *rootfs_self_tree(void);

/* Keep the caller's directory when the container sees the same one: under
 * /usr, /etc or the runtime's own tree (rootfs-plan.c). */
static char *quick_cwd(void)
{
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof(buf)))
		return strdup("/");
	_cleanup_free_ char *self = rootfs_self_tree();
	const char *const shown[] = {"/usr", "/etc", self, NULL};
	for (const char *const *h = shown; *h; h++) {
		size_t n = strlen(*h);
		if (strncmp(buf, *h, n) == 0 && (buf[n] == 0 || buf[n] == '/'))
			return strdup(buf);
	}
	return strdup("/");
}

int container_spec_quick(char *const *argv, container_spec **ret)
{
	if (!argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	_cleanup_(container_spec_freep) container_spec *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->quick = true;
	s->resources = (container_resources){-1, -1, -1, -1, -1, 0};
	s->no_new_privileges = true;
	s->root_readonly = true;
	s->namespaces = CONTAINER_NS_MOUNT | CONTAINER_NS_PID | CONTAINER_NS_IPC | CONTAINER_NS_UTS |
			CONTAINER_NS_NET | CONTAINER_NS_CGROUP;
	if (!(s->args = strv_copy(argv)) || !(s->env = strv_copy(environ)) ||
	    !(s->cwd = quick_cwd()) || !(s->masked_paths = strv_copy((char **)default_masked)) ||
	    !(s->readonly_paths = strv_copy((char **)default_readonly)) ||
	    !(s->profiles = calloc(1, sizeof(char *))) || !(s->provides = calloc(1, sizeof(char *))))
		return -ENOMEM;
	/* Room for the sandbox's binds too (container_sandbox_check). */
	s->mounts = calloc(8 + 64, sizeof(container_mount));
	if (!s->mounts)
		return -ENOMEM;
	const unsigned long nsd = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	int r;
	if ((r = add_mount(s, "/proc", "proc", "proc", nsd, NULL)) ||
	    (r = add_mount(s, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")) ||
	    (r = add_mount(s, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
			   "newinstance,ptmxmode=0666,mode=0620,gid=5")) ||
	    (r = add_mount(s, "/dev/shm", "tmpfs", "shm", nsd, "mode=1777,size=64m,nr_inodes=16k")) ||
	    (r = add_mount(s, "/sys", "sysfs", "sysfs", nsd | MS_RDONLY, NULL)) ||
	    (r = add_mount(s, "/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
			   "mode=1777,size=256m,nr_inodes=64k")) ||
	    (r = add_mount(s, "/run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
			   "mode=755,size=32m,nr_inodes=8k")))
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}
