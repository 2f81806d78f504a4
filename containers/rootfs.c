/* rootfs.c: builds the container's file system view, in the child, inside
 * its new mount namespace: the root (on the quick path a tmpfs with the
 * host's /usr and /etc bound read-only, else the bundle's rootfs), the
 * spec's mounts, a minimal /dev, the endpoint bind, masked and read-only
 * paths, then pivot_root. Each step is one or two system calls on paths
 * the parent already validated; errors name the step and the path. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

static int fail(char *buf, size_t len, int err, const char *fmt, ...) _printf_(4, 5);
static int fail(char *buf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ": %s", strerrordesc_np(err));
	return -err;
}

static int setattr(const char *path, unsigned flags, uint64_t set)
{
	struct mount_attr a = {.attr_set = set};
	return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &a, sizeof(a));
}

static uint64_t attrs_of(unsigned long ms)
{
	uint64_t a = 0;
	if (ms & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
	if (ms & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
	if (ms & MS_NODEV) a |= MOUNT_ATTR_NODEV;
	if (ms & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
	return a;
}

/* A mount point of the right kind (a file for a file bind). */
static int make_target(const char *path, bool file)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return S_ISLNK(st.st_mode) ? -ELOOP : 0;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	if (file) {
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = 0;
			int r = mkdir_p(dir, 0755);
			if (r < 0)
				return r;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return -errno;
		close(fd);
		return 0;
	}
	return mkdir_p(dir, 0755);
}

static int bind(const char *src, const char *dst, bool rec, uint64_t attrs, char *e, size_t el)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return fail(e, el, errno, "bind %s", src);
	int r = make_target(dst, !S_ISDIR(st.st_mode));
	if (r < 0)
		return fail(e, el, -r, "mount point %s", dst);
	/* Symlinks in the target are not followed out of the new root: the
	 * kernel resolves them, so refuse any (make_target checked the last
	 * component; spec paths are clean of "..". */
	if (mount(src, dst, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
		return fail(e, el, errno, "bind %s on %s", src, dst);
	if (attrs && setattr(dst, rec ? AT_RECURSIVE : 0, attrs) < 0)
		return fail(e, el, errno, "mount_setattr %s", dst);
	return 0;
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

/* A minimal /dev. As real root, mknod (one call per node); in a user
 * namespace mknod is refused, so the host's nodes are bound in. */
static int populate_dev(const char *dev, bool can_mknod, char *e, size_t el)
{
	char src[64], dst[4300];
	const dev_t numbers[] = {makedev(1, 3), makedev(1, 5), makedev(1, 7),
				 makedev(1, 8), makedev(1, 9), makedev(5, 0)};
	for (size_t i = 0; can_mknod && dev_nodes[i]; i++) {
		snprintf(dst, sizeof(dst), "%s/%s", dev, dev_nodes[i]);
		if (mknod(dst, S_IFCHR | 0666, numbers[i]) < 0 || chmod(dst, 0666) < 0)
			return fail(e, el, errno, "mknod %s", dst);
	}
	for (const char *const *n = dev_nodes; !can_mknod && *n; n++) {
		snprintf(src, sizeof(src), "/dev/%s", *n);
		snprintf(dst, sizeof(dst), "%s/%s", dev, *n);
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
		if (fd < 0)
			return fail(e, el, errno, "create %s", dst);
		close(fd);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			return fail(e, el, errno, "bind %s", src);
	}
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	};
	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		snprintf(dst, sizeof(dst), "%s/%s", dev, links[i][1]);
		if (symlink(links[i][0], dst) < 0 && errno != EEXIST)
			return fail(e, el, errno, "symlink %s", dst);
	}
	snprintf(dst, sizeof(dst), "%s/pts", dev);
	(void)mkdir(dst, 0755);
	snprintf(dst, sizeof(dst), "%s/shm", dev);
	(void)mkdir(dst, 01777);
	return 0;
}

static int do_mount(const launch_plan *p, const container_mount *m, const char *target, char *e,
		    size_t el)
{
	const char *t = m->type;
	unsigned long fl = m->flags & ~(MS_BIND | MS_REC);
	int r;
	if (strcmp(t, "bind") == 0)
		return bind(m->source, target, m->recursive, attrs_of(fl), e, el);
	if ((r = make_target(target, false)) < 0)
		return fail(e, el, -r, "mount point %s", target);
	if (strcmp(t, "cgroup") == 0 || strcmp(t, "cgroup2") == 0) {
		/* Best effort: a cgroup view is a convenience, not isolation. */
		(void)mount("cgroup2", target, "cgroup2", fl, NULL);
		return 0;
	}
	if (mount(m->source ? m->source : t, target, t, fl, m->data) == 0)
		goto mounted;
	r = errno;
	if (strcmp(t, "devpts") == 0 && m->data && strstr(m->data, "gid=")) {
		/* gid 5 is not mapped in a rootless user namespace. */
		char data[256];
		size_t n = 0;
		for (const char *c = m->data; *c;) {
			size_t l = strcspn(c, ",");
			if (strncmp(c, "gid=", 4) != 0 && n + l + 2 < sizeof(data))
				n += (size_t)snprintf(data + n, sizeof(data) - n, "%s%.*s",
						      n ? "," : "", (int)l, c);
			c += l + (c[l] == ',');
		}
		data[n] = 0;
		if (mount("devpts", target, "devpts", fl, data) == 0)
			goto mounted;
	}
	if (strcmp(t, "sysfs") == 0 && p->userns) {
		/* A fresh sysfs needs the net namespace's owner; fall back to
		 * a read-only view of the host's. */
		if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) == 0 &&
		    setattr(target, AT_RECURSIVE, MOUNT_ATTR_RDONLY | attrs_of(fl)) == 0)
			return 0;
	}
	if (strcmp(t, "mqueue") == 0 && p->userns)
		return 0; /* not ours to mount rootless; the directory stays */
	return fail(e, el, r, "mount %s on %s", t, target);
mounted:
	if (strcmp(t, "tmpfs") == 0 && strcmp(m->destination, "/dev") == 0)
		return populate_dev(target, !p->userns, e, el);
	return 0;
}

static int mask(const char *path, char *e, size_t el)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(e, el, errno, "mask %s", path);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=0,mode=0500") < 0)
			return fail(e, el, errno, "mask %s", path);
		return 0;
	}
	if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0)
		return fail(e, el, errno, "mask %s", path);
	return 0;
}

static int make_readonly(const char *path, char *e, size_t el)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(e, el, errno, "read-only %s", path);
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    setattr(path, AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0)
		return fail(e, el, errno, "read-only %s", path);
	return 0;
}

static bool in_list(const char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

#define RO_NOSUID_NODEV (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)

/* The quick path's root (docs/containers.md, "Host view"): a small private
 * tmpfs holding mount points, with /usr and /etc bound read-only, nosuid,
 * nodev; /bin, /sbin and /lib* as the host has them (links into /usr are
 * links here too); /etc's secrets (rootfs-plan.c) covered by an empty
 * file no one may open, or an empty directory; the runtime's own tree.
 * The tmpfs turns read-only once everything is mounted. */
static int quick_root(const launch_plan *p, const char *root, char *e, size_t el)
{
	static const char *const top[] = {"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
	char host[64], t[4200], link[4096];
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=1024") < 0)
		return fail(e, el, errno, "tmpfs root on %s", root);
	for (size_t i = 0; i < ELEMENTSOF(top); i++) {
		struct stat st;
		snprintf(host, sizeof(host), "/%s", top[i]);
		snprintf(t, sizeof(t), "%s/%s", root, top[i]);
		if (lstat(host, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(host, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (symlink(link, t) < 0)
				return fail(e, el, errno, "symlink %s", t);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (mkdir(t, 0755) < 0 || mount(host, t, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    setattr(t, AT_RECURSIVE, RO_NOSUID_NODEV) < 0)
			return fail(e, el, errno, "bind %s", host);
	}
	/* Before the spec's mounts, which may cover part of it (scmd hides
	 * its runtime directory when it lies in there); a tree under /tmp or
	 * /run is covered by the private ones. */
	if (p->self_tree) {
		int r;
		snprintf(t, sizeof(t), "%s%s", root, p->self_tree);
		if ((r = bind(p->self_tree, t, true, RO_NOSUID_NODEV, e, el)) < 0)
			return r;
	}
	if (!p->etc_masks || !p->etc_masks[0])
		return 0;
	/* One empty file, mode 0, bound over each secret, then unlinked (the
	 * binds keep it): reading one fails with EACCES, not an empty read. */
	char empty[4200];
	snprintf(empty, sizeof(empty), "%s/.scm-empty", root);
	int fd = open(empty, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0)
		return fail(e, el, errno, "create %s", empty);
	close(fd);
	for (char **m = p->etc_masks; *m; m++) {
		struct stat st;
		snprintf(t, sizeof(t), "%s%s", root, *m);
		if (lstat(t, &st) < 0 || S_ISLNK(st.st_mode))
			continue; /* gone since the plan, or a link into what is masked anyway */
		int k = S_ISDIR(st.st_mode)
				? mount("tmpfs", t, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
					"size=0,nr_inodes=1,mode=0")
				: mount(empty, t, NULL, MS_BIND, NULL);
		if (k < 0 || (!S_ISDIR(st.st_mode) && setattr(t, 0, RO_NOSUID_NODEV | MOUNT_ATTR_NOEXEC) < 0))
			return fail(e, el, errno, "hide %s", *m);
	}
	if (unlink(empty) < 0)
		return fail(e, el, errno, "unlink %s", empty);
	return 0;
}

int rootfs_setup(const launch_plan *p, char *e, size_t el)
{
	const container_spec *s = p->spec;
	const char *root = p->stage;
	char target[4200];
	int r;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(e, el, errno, "make / private");
	if (!s->root_path) {
		if ((r = quick_root(p, root, e, el)) < 0)
			return r;
	} else if (mount(s->root_path, root, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		   setattr(root, AT_RECURSIVE, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0)
		return fail(e, el, errno, "bind %s", s->root_path);

	for (size_t i = 0; i < s->n_mounts; i++) {
		snprintf(target, sizeof(target), "%s%s", root, s->mounts[i].destination);
		if ((r = do_mount(p, &s->mounts[i], target, e, el)) < 0)
			return r;
	}
	/* Whatever the spec said, no mount it made honours setuid bits or
	 * device nodes; /dev keeps its nodes (binds of the host's in a user
	 * namespace, where a tmpfs is nodev anyway; mknod'd as real root). */
	for (size_t i = 0; i < s->n_mounts; i++) {
		const char *d = s->mounts[i].destination;
		if (strncmp(d, "/dev", 4) == 0 && (d[4] == 0 || d[4] == '/'))
			continue;
		snprintf(target, sizeof(target), "%s%s", root, d);
		/* EINVAL: not a mount (a best-effort cgroup view that was not made) */
		if (setattr(target, AT_RECURSIVE, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0 && errno != ENOENT &&
		    errno != EINVAL)
			return fail(e, el, errno, "nosuid, nodev on %s", d);
	}
	/* Read-only, so the container cannot chmod, chown or rename the host's
	 * socket inode: scmd's endpoint is a directory of its own holding
	 * scm.sock (bound at /run/scm); a bare socket is bound alone. */
	if (p->opts->endpoint) {
		snprintf(target, sizeof(target), "%s%s", root, CONTAINER_ENDPOINT_PATH);
		if (p->endpoint_dir)
			*strrchr(target, '/') = 0;
		if ((r = bind(p->opts->endpoint, target, false, RO_NOSUID_NODEV | MOUNT_ATTR_NOEXEC, e,
			      el)) < 0)
			return r;
	}
	/* Default masks and read-only paths always apply; the spec's add
	 * (each path once: every mount here is paid again at teardown). */
	for (int pass = 0; pass < 2; pass++) {
		const char *const *v = pass ? (const char *const *)s->masked_paths
					    : container_default_masked_paths();
		for (size_t i = 0; v && v[i]; i++) {
			if (pass && in_list(container_default_masked_paths(), v[i]))
				continue;
			snprintf(target, sizeof(target), "%s%s", root, v[i]);
			if ((r = mask(target, e, el)) < 0)
				return r;
		}
		v = pass ? (const char *const *)s->readonly_paths : container_default_readonly_paths();
		for (size_t i = 0; v && v[i]; i++) {
			if (pass && in_list(container_default_readonly_paths(), v[i]))
				continue;
			snprintf(target, sizeof(target), "%s%s", root, v[i]);
			if ((r = make_readonly(target, e, el)) < 0)
				return r;
		}
	}
	if ((!s->root_path || s->root_readonly) && setattr(root, 0, MOUNT_ATTR_RDONLY) < 0)
		return fail(e, el, errno, "read-only root");
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return fail(e, el, errno, "sethostname");

	/* pivot_root(".", ".") stacks the old root under the new one; the
	 * detach then drops every host mount from this namespace. */
	if (chdir(root) < 0)
		return fail(e, el, errno, "chdir %s", root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(e, el, errno, "pivot_root %s", root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(e, el, errno, "detach the old root");
	if (chdir("/") < 0)
		return fail(e, el, errno, "chdir /");
	return 0;
}
