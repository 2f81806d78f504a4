/* rootfs.c: builds the container's file system view, in the child, inside
 * its new mount namespace: the root (on the quick path a small tmpfs with
 * the host's /usr, /etc and /lib* bound read-only, else the bundle's
 * rootfs), the spec's mounts, a minimal /dev, the endpoint bind, masked
 * and read-only paths, then pivot_root. Paths inside the root are
 * resolved by fd beneath it (rootfs-resolve.c), never as root + path
 * strings; mounts land on those fds. Masks are the container's own empty
 * files, not a host inode. Each step is a few system calls; errors name
 * the step and the path. */
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
#include "scmutil.h"
#include "spec-internal.h"

/* Fills the child's error record (where and what) and returns -err. */
#define fail(e, err, ...) launch_note((e), (err), __VA_ARGS__)

static int setattr_fd(int fd, unsigned flags, uint64_t set)
{
	struct mount_attr a = {.attr_set = set};
	return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, &a, sizeof(a));
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

/* What the steps share: the new root as an fd (every path inside is
 * resolved beneath it, rootfs-resolve.c) and the container's private
 * tmpfs, made on first use, that holds the empty file and directory masks
 * are cloned from and, as real root, the device nodes /dev gets. */
typedef struct rootfs_ctx {
	int root;
	int priv;
	bool priv_attached;
} rootfs_ctx;

static const char *fdpath(char buf[32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/* Puts a detached tree on the inode target is open on. */
static int attach(int tree, int target)
{
	return (int)syscall(SYS_move_mount, tree, "", target, "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int priv_fs(rootfs_ctx *x)
{
	if (x->priv >= 0)
		return 0;
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "nr_inodes", "32", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0555", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	_cleanup_close_ int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0)
		return -errno;
	/* empty, empty.d: /proc masks (read as empty); hidden, hidden.d:
	 * the quick path's /etc secrets (mode 0: opening one fails). */
	static const struct { const char *name; mode_t mode; } ents[] = {
		{"empty", S_IFREG | 0444}, {"empty.d", S_IFDIR | 0500},
		{"hidden", S_IFREG}, {"hidden.d", S_IFDIR},
	};
	for (size_t i = 0; i < ELEMENTSOF(ents); i++) {
		mode_t perm = ents[i].mode & 07777;
		int k = S_ISDIR(ents[i].mode) ? mkdirat(m, ents[i].name, perm)
					      : mknodat(m, ents[i].name, S_IFREG | perm, 0);
		if (k < 0 || fchmodat(m, ents[i].name, perm, 0) < 0)
			return -errno;
	}
	x->priv = TAKE_FD(m);
	return 0;
}

/* Mounts NAME of the private tmpfs on target, with attrs. Linux 6.15 and
 * later clone from the detached tmpfs directly; older kernels clone only
 * from a mount in our namespace, so there it is attached for the length
 * of the setup, stacked on the new root where no lookup sees it (every
 * path starts at the root fd, beneath the stack), and detached at the
 * end. */
static int graft(rootfs_ctx *x, const char *name, int target, uint64_t attrs)
{
	int r = priv_fs(x);
	if (r < 0)
		return r;
	_cleanup_close_ int t = (int)syscall(SYS_open_tree, x->priv, name,
					     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t < 0 && errno == EINVAL && !x->priv_attached) {
		if (attach(x->priv, x->root) < 0)
			return -errno;
		x->priv_attached = true;
		t = (int)syscall(SYS_open_tree, x->priv, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	}
	if (t < 0 || setattr_fd(t, 0, attrs) < 0 || attach(t, target) < 0)
		return -errno;
	return 0;
}

/* A mount point of the right kind (a file for a file bind), as an fd. */
static int make_target(const rootfs_ctx *x, const char *dest, bool file, int *ret_fd)
{
	int fd = -1, r = file ? rootfs_mkfile(x->root, dest, &fd) : rootfs_mkdirs(x->root, dest, &fd);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0 || file == S_ISDIR(st.st_mode)) {
		r = fstat(fd, &st) < 0 ? -errno : file ? -EISDIR : -ENOTDIR;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int fail_target(struct launch_record *e, int err, const char *dest)
{
	if (err == ELOOP)
		return fail(e, err, "mount point %s: a link on the way leads nowhere inside the "
				  "root, and nothing is created through a link", dest);
	return fail(e, err, "mount point %s", dest);
}

/* A host path (the runtime's to name) bound at dest inside the root. The
 * clone gets its attributes before it is attached, so it is never visible
 * writable or with devices for a moment. */
static int bind(const rootfs_ctx *x, const char *src, const char *dest, bool rec, uint64_t attrs,
		struct launch_record *e)
{
	_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src,
						OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
							(rec ? AT_RECURSIVE : 0));
	struct stat st;
	if (tree < 0 || fstat(tree, &st) < 0)
		return fail(e, errno, "bind %s", src);
	_cleanup_close_ int tfd = -1;
	int r = make_target(x, dest, !S_ISDIR(st.st_mode), &tfd);
	if (r < 0)
		return fail_target(e, -r, dest);
	if (attrs && setattr_fd(tree, rec ? AT_RECURSIVE : 0, attrs) < 0)
		return fail(e, errno, "mount_setattr %s", dest);
	if (attach(tree, tfd) < 0)
		return fail(e, errno, "bind %s on %s", src, dest);
	return 0;
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

/* A minimal /dev, in a tmpfs mounted nodev: a node the container makes
 * there (given CAP_MKNOD) opens nothing. Ours are binds: as real root,
 * of nodes made in the private tmpfs; in a user namespace (mknod is
 * refused there) of the host's. Read-only binds: the devices still read
 * and write (a read-only mount does not stop device I/O), but the inode
 * cannot be touched or chmod'ed (with a host node, the host's inode). */
static int populate_dev(rootfs_ctx *x, int dev, bool can_mknod, struct launch_record *e)
{
	char src[64];
	const dev_t numbers[] = {makedev(1, 3), makedev(1, 5), makedev(1, 7),
				 makedev(1, 8), makedev(1, 9), makedev(5, 0)};
	const uint64_t attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
	int r;
	for (size_t i = 0; dev_nodes[i]; i++) {
		const char *n = dev_nodes[i];
		int fd = openat(dev, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0)
			return fail(e, errno, "create /dev/%s", n);
		close(fd);
		_cleanup_close_ int t = openat(dev, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (t < 0)
			return fail(e, errno, "open /dev/%s", n);
		if (can_mknod) {
			if ((r = priv_fs(x)) < 0)
				return fail(e, -r, "private tmpfs");
			if (mknodat(x->priv, n, S_IFCHR | 0666, numbers[i]) < 0 ||
			    fchmodat(x->priv, n, 0666, 0) < 0)
				return fail(e, errno, "mknod /dev/%s", n);
			if ((r = graft(x, n, t, attrs)) < 0)
				return fail(e, -r, "bind /dev/%s", n);
			continue;
		}
		snprintf(src, sizeof(src), "/dev/%s", n);
		_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src,
							OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0 || setattr_fd(tree, 0, attrs) < 0 || attach(tree, t) < 0)
			return fail(e, errno, "bind %s", src);
	}
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	};
	for (size_t i = 0; i < ELEMENTSOF(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
			return fail(e, errno, "symlink /dev/%s", links[i][1]);
	(void)mkdirat(dev, "pts", 0755);
	if (mkdirat(dev, "shm", 01777) == 0)
		(void)fchmodat(dev, "shm", 01777, 0);
	return 0;
}

static int do_mount(rootfs_ctx *x, const launch_plan *p, const container_mount *m, struct launch_record *e)
{
	const char *t = m->type, *dest = m->destination;
	unsigned long fl = m->flags & ~(MS_BIND | MS_REC);
	char tp[32];
	int r;
	/* No device node in what a spec mounts opens anything (docs:
	 * "Devices"), but in devpts and, when the spec's rules allow devices
	 * (a devices cgroup enforces them), binds. The /dev tmpfs is nodev
	 * too: its nodes are binds, mounts of their own. */
	bool is_dev = strcmp(t, "devpts") == 0 || (strcmp(t, "bind") == 0 && devices_allowed(p->spec));
	fl |= MS_NOSUID | (is_dev ? 0 : MS_NODEV);
	if (strcmp(t, "bind") == 0)
		return bind(x, m->source, dest, m->recursive, attrs_of(fl), e);
	_cleanup_close_ int tfd = -1;
	if ((r = make_target(x, dest, false, &tfd)) < 0)
		return fail_target(e, -r, dest);
	fdpath(tp, tfd);
	if (strcmp(t, "cgroup") == 0 || strcmp(t, "cgroup2") == 0) {
		/* Best effort: a cgroup view is a convenience, not isolation. */
		(void)mount("cgroup2", tp, "cgroup2", fl, NULL);
		return 0;
	}
	if (mount(m->source ? m->source : t, tp, t, fl, m->data) == 0)
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
		if (mount("devpts", tp, "devpts", fl, data) == 0)
			goto mounted;
	}
	if (strcmp(t, "sysfs") == 0 && p->userns) {
		/* A fresh sysfs needs the net namespace's owner; fall back to
		 * a read-only view of the host's. */
		_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/sys",
							OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (tree >= 0 &&
		    setattr_fd(tree, AT_RECURSIVE, MOUNT_ATTR_RDONLY | attrs_of(fl)) == 0 &&
		    attach(tree, tfd) == 0)
			return 0;
	}
	if (strcmp(t, "mqueue") == 0 && p->userns)
		return 0; /* not ours to mount rootless; the directory stays */
	return fail(e, r, "mount %s on %s", t, dest);
mounted:
	if (strcmp(t, "tmpfs") == 0 && strcmp(dest, "/dev") == 0) {
		/* The fd is the directory under the mount; resolving again
		 * lands on the new tmpfs. */
		_cleanup_close_ int dev = -1;
		if ((r = rootfs_open(x->root, dest, &dev)) < 0)
			return fail(e, -r, "open %s", dest);
		return populate_dev(x, dev, !p->userns, e);
	}
	return 0;
}

/* A masked path shows an empty read-only file or directory of the
 * container's own private tmpfs: never a host inode (a bind of the host's
 * /dev/null let a container chmod or touch it). */
static int mask(rootfs_ctx *x, const char *path, struct launch_record *e)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = rootfs_open(x->root, path, &fd);
	if (r == -ENOENT)
		return 0;
	if (r < 0 || fstat(fd, &st) < 0)
		return fail(e, r < 0 ? -r : errno, "mask %s", path);
	r = graft(x, S_ISDIR(st.st_mode) ? "empty.d" : "empty", fd,
		  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (r < 0)
		return fail(e, -r, "mask %s", path);
	return 0;
}

static int make_readonly(rootfs_ctx *x, const char *path, struct launch_record *e)
{
	_cleanup_close_ int fd = -1;
	int r = rootfs_open(x->root, path, &fd);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return fail(e, -r, "read-only %s", path);
	_cleanup_close_ int tree = (int)syscall(SYS_open_tree, fd, "",
						OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
							AT_EMPTY_PATH);
	if (tree < 0 ||
	    setattr_fd(tree, AT_RECURSIVE,
		       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0 ||
	    attach(tree, fd) < 0)
		return fail(e, errno, "read-only %s", path);
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

/* Hides one of /etc's secrets (rootfs-plan.c) under a mode-0 empty file or
 * directory of the private tmpfs, so reading it fails with EACCES rather
 * than reading empty. The last component is not followed: a link there
 * points at what is hidden anyway, or outside what the view shows. */
static int hide(rootfs_ctx *x, const char *path, struct launch_record *e)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	if (!slash || slash[1] == 0 || (size_t)(slash - path) >= sizeof(dir))
		return fail(e, EINVAL, "hide %s", path);
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	_cleanup_close_ int parent = -1, fd = -1;
	int r = rootfs_open(x->root, dir[0] ? dir : "/", &parent);
	if (r == -ENOENT)
		return 0; /* gone since the plan */
	if (r < 0)
		return fail(e, -r, "hide %s", path);
	struct stat st;
	if ((fd = openat(parent, slash + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : fail(e, errno, "hide %s", path);
	if (fstat(fd, &st) < 0)
		return fail(e, errno, "hide %s", path);
	if (S_ISLNK(st.st_mode))
		return 0;
	r = graft(x, S_ISDIR(st.st_mode) ? "hidden.d" : "hidden", fd,
		  RO_NOSUID_NODEV | MOUNT_ATTR_NOEXEC);
	return r < 0 ? fail(e, -r, "hide %s", path) : 0;
}

/* The quick path's root (docs/containers.md, "Host view"), on the small
 * private tmpfs x->root is open on: mount points, /usr and /etc bound
 * read-only, nosuid, nodev; /bin, /sbin and /lib* as the host has them
 * (links into /usr are links here too); /etc's secrets hidden; the
 * runtime's own tree. The tmpfs turns read-only once everything is
 * mounted. The host paths are ours to name; every target is resolved
 * beneath the root fd like any other. */
static int quick_root(rootfs_ctx *x, const launch_plan *p, struct launch_record *e)
{
	static const char *const top[] = {"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
	char host[64], link[4096];
	int r;
	for (size_t i = 0; i < ELEMENTSOF(top); i++) {
		struct stat st;
		snprintf(host, sizeof(host), "/%s", top[i]);
		if (lstat(host, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(host, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (symlinkat(link, x->root, top[i]) < 0)
				return fail(e, errno, "symlink %s", host);
			continue;
		}
		if (S_ISDIR(st.st_mode) && (r = bind(x, host, host, true, RO_NOSUID_NODEV, e)) < 0)
			return r;
	}
	/* Before the spec's mounts, which may cover part of it (scmd hides
	 * its runtime directory when it lies in there); a tree under /tmp or
	 * /run is covered by the private tmpfs there and bound again on it
	 * (self_tree_again). */
	if (p->self_tree && (r = bind(x, p->self_tree, p->self_tree, true, RO_NOSUID_NODEV, e)) < 0)
		return r;
	for (char **m = p->etc_masks; m && *m; m++)
		if ((r = hide(x, *m, e)) < 0)
			return r;
	return 0;
}

/* The runtime's own tree lies under a mount just made on the quick path
 * (a source tree cloned to /tmp: the private /tmp covers it): bind it
 * again on that mount, before the spec's later mounts, which may hide a
 * part of it as they would have on the first bind. */
static int self_tree_again(rootfs_ctx *x, const launch_plan *p, const container_mount *m,
			   struct launch_record *e)
{
	if (!p->self_tree || strcmp(m->type, "bind") == 0 || !path_under(p->self_tree, m->destination))
		return 0;
	return bind(x, p->self_tree, p->self_tree, true, RO_NOSUID_NODEV, e);
}

static int setup(rootfs_ctx *x, const launch_plan *p, struct launch_record *e)
{
	const container_spec *s = p->spec;
	const char *root = p->stage;
	char target[4200];
	int r;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(e, errno, "make / private");
	if (!s->root_path) {
		/* Quick path: mount points only, on a tmpfs of its own. */
		if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
			  "mode=0755,size=64k,nr_inodes=1024") < 0)
			return fail(e, errno, "tmpfs root on %s", root);
	} else if (mount(s->root_path, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(e, errno, "bind %s", s->root_path);

	/* From here on, every path inside the root is resolved beneath this
	 * fd (the mount just made: it is opened after it). */
	if ((x->root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return fail(e, errno, "open %s", root);
	/* A bundle's rootfs may hold device nodes (a kmsg, a kvm): none
	 * opens unless the spec's device rules allow devices, and then its
	 * devices cgroup decides (docs: "Devices"). No setuid bit counts. */
	if (s->root_path &&
	    setattr_fd(x->root, AT_RECURSIVE,
		       MOUNT_ATTR_NOSUID | (devices_allowed(s) ? 0 : MOUNT_ATTR_NODEV)) < 0)
		return fail(e, errno, "nodev %s", root);
	if (!s->root_path && (r = quick_root(x, p, e)) < 0)
		return r;

	for (size_t i = 0; i < s->n_mounts; i++) {
		if ((r = do_mount(x, p, &s->mounts[i], e)) < 0)
			return r;
		if (!s->root_path && (r = self_tree_again(x, p, &s->mounts[i], e)) < 0)
			return r;
	}
	/* Read-only, so the container cannot chmod, chown or rename the host's
	 * socket inode: scmd's endpoint is a directory of its own holding
	 * scm.sock (bound at the directory of CONTAINER_ENDPOINT_PATH); a bare
	 * socket is bound alone. */
	if (p->opts->endpoint) {
		char dest[sizeof(CONTAINER_ENDPOINT_PATH)] = CONTAINER_ENDPOINT_PATH;
		if (p->endpoint_dir)
			*strrchr(dest, '/') = 0;
		if ((r = bind(x, p->opts->endpoint, dest, false, RO_NOSUID_NODEV | MOUNT_ATTR_NOEXEC, e)) < 0)
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
			if ((r = mask(x, v[i], e)) < 0)
				return r;
		}
		v = pass ? (const char *const *)s->readonly_paths : container_default_readonly_paths();
		for (size_t i = 0; v && v[i]; i++) {
			if (pass && in_list(container_default_readonly_paths(), v[i]))
				continue;
			if ((r = make_readonly(x, v[i], e)) < 0)
				return r;
		}
	}
	if (x->priv_attached && umount2(fdpath(target, x->priv), MNT_DETACH) < 0)
		return fail(e, errno, "detach the private tmpfs");
	x->priv = safe_close(x->priv);
	if ((!s->root_path || s->root_readonly) && setattr_fd(x->root, 0, MOUNT_ATTR_RDONLY) < 0)
		return fail(e, errno, "read-only root");
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return fail(e, errno, "sethostname");

	/* pivot_root(".", ".") stacks the old root under the new one; the
	 * detach then drops every host mount from this namespace. */
	if (fchdir(x->root) < 0)
		return fail(e, errno, "chdir %s", root);
	x->root = safe_close(x->root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(e, errno, "pivot_root %s", root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(e, errno, "detach the old root");
	if (chdir("/") < 0)
		return fail(e, errno, "chdir /");
	return 0;
}

int rootfs_setup(const launch_plan *p, struct launch_record *e)
{
	rootfs_ctx x = {.root = -1, .priv = -1};
	int r = setup(&x, p, e);
	safe_close(x.root);
	safe_close(x.priv);
	return r;
}
