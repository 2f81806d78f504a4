/* rootfs-resolve.c: paths inside a container's root, resolved by fd.
 *
 * A bundle's rootfs belongs to whoever wrote the bundle: any component of
 * a mount destination may be a symlink ("run -> /etc"), and the root that
 * follows it by name creates, mounts and masks on the host. So every path
 * inside the root is resolved beneath one directory fd with openat2's
 * RESOLVE_IN_ROOT (absolute links and ".." stay inside, as they will once
 * the root is pivoted), and what we create is created one component at a
 * time with mkdirat/openat on the parent's fd, never through a link. The
 * mount then lands on "/proc/self/fd/N" or on the fd itself (move_mount),
 * so nothing is looked up by name twice. Where openat2 is missing (Linux
 * before 5.6), a component walk with O_NOFOLLOW resolves the links itself,
 * inside the root, the way systemd's chase() does. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

#define MAX_LINKS 40

static bool same_inode(int a, int b)
{
	struct stat x, y;
	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev &&
	       x.st_ino == y.st_ino;
}

/* The fallback: one component at a time, each opened O_PATH|O_NOFOLLOW;
 * a link's text is spliced in front of what is left (an absolute one
 * restarts at the root) and ".." never climbs above the root. */
int rootfs_open_walk(int rootfd, const char *path, int *ret_fd)
{
	/* unwalked: the components not yet opened, links spliced in */
	char *unwalked = malloc(PATH_MAX * 2), *link = malloc(PATH_MAX);
	int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC), links = 0, r = 0;
	if (!unwalked || !link || cur < 0) {
		r = cur < 0 ? -errno : -ENOMEM;
		goto out;
	}
	snprintf(unwalked, PATH_MAX * 2, "%s", path);
	char *p = unwalked;
	while (*p) {
		size_t n = strcspn(p, "/");
		char name[NAME_MAX + 1];
		if (n > NAME_MAX) {
			r = -ENAMETOOLONG;
			goto out;
		}
		memcpy(name, p, n);
		name[n] = 0;
		p += n + (p[n] == '/');
		if (n == 0 || strcmp(name, ".") == 0)
			continue;
		int next;
		if (strcmp(name, "..") == 0) {
			if (same_inode(cur, rootfd))
				continue;
			next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else
			next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = -errno;
			goto out;
		}
		struct stat st;
		if (fstat(next, &st) < 0) {
			r = -errno;
			close(next);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t l = readlinkat(next, "", link, PATH_MAX - 1);
			close(next);
			if (l < 0 || ++links > MAX_LINKS) {
				r = l < 0 ? -errno : -ELOOP;
				goto out;
			}
			link[l] = 0;
			size_t rest = strlen(p);
			if ((size_t)l + 1 + rest + 1 > PATH_MAX * 2) {
				r = -ENAMETOOLONG;
				goto out;
			}
			memmove(unwalked + l + 1, p, rest + 1);
			memcpy(unwalked, link, (size_t)l);
			unwalked[l] = '/';
			p = unwalked;
			if (link[0] == '/') {
				close(cur);
				if ((cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
					r = -errno;
					goto out;
				}
			}
			continue;
		}
		if (*p && !S_ISDIR(st.st_mode)) {
			close(next);
			r = -ENOTDIR;
			goto out;
		}
		close(cur);
		cur = next;
	}
	*ret_fd = cur;
	cur = -1;
out:
	if (cur >= 0)
		close(cur);
	free(unwalked);
	free(link);
	return r;
}

int rootfs_open(int rootfd, const char *path, int *ret_fd)
{
	static bool no_openat2;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (!no_openat2) {
		int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		/* EAGAIN: a rename raced the walk; the kernel asks to retry. */
		if (errno == EAGAIN)
			continue;
		if (errno != ENOSYS)
			return -errno;
		no_openat2 = true;
	}
	return rootfs_open_walk(rootfd, path, ret_fd);
}

/* The first component of *p (skipping slashes), advancing *p past it. */
static size_t next_name(const char **p, char name[NAME_MAX + 1])
{
	while (**p == '/')
		(*p)++;
	size_t n = strcspn(*p, "/");
	if (n > NAME_MAX)
		return SIZE_MAX;
	memcpy(name, *p, n);
	name[n] = 0;
	*p += n;
	return n;
}

int rootfs_mkdirs(int rootfd, const char *path, int *ret_fd)
{
	char prefix[PATH_MAX], name[NAME_MAX + 1];
	size_t plen = 0;
	int parent = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;
	if (parent < 0)
		return -errno;
	for (const char *p = path;;) {
		size_t n = next_name(&p, name);
		if (n == SIZE_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		if (n == 0) {
			*ret_fd = parent;
			return 0;
		}
		if (plen + n + 2 > sizeof(prefix)) {
			r = -ENAMETOOLONG;
			break;
		}
		plen += (size_t)snprintf(prefix + plen, sizeof(prefix) - plen, "/%s", name);
		int fd = -1;
		r = rootfs_open(rootfd, prefix, &fd);
		if (r == -ENOENT && strcmp(name, "..") != 0 && strcmp(name, ".") != 0) {
			/* Missing: made here, in the resolved parent. If the name
			 * is there after all, it is a link leading nowhere inside
			 * the root (or a race): never created through. */
			if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = fd < 0 ? (errno == ENOTDIR ? -ELOOP : -errno) : 0;
			struct stat st;
			if (r == 0 && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				r = -ELOOP;
		}
		if (r < 0) {
			safe_close(fd);
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0)
			r = -errno;
		else if (!S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		if (r < 0) {
			close(fd);
			break;
		}
		close(parent);
		parent = fd;
	}
	close(parent);
	return r;
}

int rootfs_mkfile(int rootfd, const char *path, int *ret_fd)
{
	int r = rootfs_open(rootfd, path, ret_fd);
	if (r != -ENOENT)
		return r;
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	if (!slash || slash[1] == 0 || (size_t)(slash - path) >= sizeof(dir))
		return -EINVAL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	_cleanup_close_ int parent = -1;
	if ((r = rootfs_mkdirs(rootfd, dir, &parent)) < 0)
		return r;
	const char *name = slash + 1;
	int fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno != EEXIST)
		return -errno;
	safe_close(fd);
	/* Ours now, or there already: either way, reopened without following. */
	if ((fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
		close(fd);
		return -ELOOP;
	}
	*ret_fd = fd;
	return 0;
}

int container_rootfs_mountpoint(int rootfd, const char *path, bool file)
{
	int fd = -1;
	int r = file ? rootfs_mkfile(rootfd, path, &fd) : rootfs_mkdirs(rootfd, path, &fd);
	safe_close(fd);
	return r;
}
