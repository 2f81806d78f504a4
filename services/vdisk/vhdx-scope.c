/* vhdx-scope.c: files of a chain opened beneath a granted directory.
 *
 * A path checked by name and then opened by name is a race the attacker
 * wins (swap a symlink in between), so nothing here opens by name from the
 * root: the granted directory is a directory fd, every file is found
 * beneath it by openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or by a
 * walk of O_NOFOLLOW opens one component at a time where openat2 is
 * missing (Linux < 5.6). Locator paths are made relative to the grant
 * first, lexically: with no symbolic links followed, "a/../b" can only
 * mean "b", and a ".." above the grant is refused before any lookup, so
 * the lookup never touches anything outside. The file is first opened
 * O_PATH (opening a FIFO or a device may block or have effects), its type
 * checked on the fd, and only a regular file is reopened for I/O through
 * /proc/self/fd/N, with O_NONBLOCK for good measure. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vhdx-internal.h"

/* Length of dir without trailing slashes ("/" is 0). */
static size_t dir_len(const char *dir)
{
	size_t n = strlen(dir);
	while (n && dir[n - 1] == '/')
		n--;
	return n;
}

/* path minus the directory dir, when path is dir/... (NULL otherwise). */
static const char *under(const char *path, const char *dir)
{
	if (!dir)
		return NULL;
	size_t n = dir_len(dir);
	if (strncmp(path, dir, n) || path[n] != '/')
		return NULL;
	return path + n + 1;
}

/* Appends the components of p (separators '/' or '\\') to the stack in
 * out (a relative path without "." or ".."): -EXDEV when ".." climbs
 * above the start. */
static int push_components(char *out, size_t cap, const char *p)
{
	size_t len = strlen(out);
	while (*p) {
		while (*p == '/' || *p == '\\')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/\\");
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!len)
				return -EXDEV;
			while (len && out[len - 1] != '/')
				len--;
			if (len)
				len--;
			out[len] = 0;
		} else {
			if (len + 1 + n + 1 > cap)
				return -ENAMETOOLONG;
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
			out[len] = 0;
		}
		p += n;
	}
	return 0;
}

int vhdx_scope_rel(const struct vhdx_scope *s, const char *child_rel, const char *loc, char **ret_rel)
{
	size_t cap = strlen(loc) + (child_rel ? strlen(child_rel) : 0) + 2;
	_cleanup_free_ char *out = calloc(1, cap), *conv = strdup(loc);
	if (!out || !conv)
		return -ENOMEM;
	for (char *c = conv; *c; c++)
		if (*c == '\\')
			*c = '/';
	int r;
	if ((conv[0] && conv[1] == ':') || !strncmp(conv, "//", 2))
		return -EXDEV; /* a drive letter or \\?\Volume{...}: not on this host */
	if (conv[0] == '/') {
		/* absolute: only as a path under the grant */
		const char *rest = under(conv, s->dir);
		if (!rest)
			rest = under(conv, s->dir_real);
		if (!rest && dir_len(s->dir) == 0)
			rest = conv + 1;
		if (!rest)
			return -EXDEV;
		r = push_components(out, cap, rest);
	} else if (child_rel) {
		r = push_components(out, cap, child_rel);
		if (r >= 0) {
			/* child_rel is the child's file: drop its name */
			char *slash = strrchr(out, '/');
			if (slash)
				*slash = 0;
			else
				out[0] = 0;
			r = push_components(out, cap, conv);
		}
	} else {
		return -EXDEV;
	}
	if (r < 0)
		return r;
	if (!out[0])
		return -EXDEV;
	*ret_rel = TAKE_PTR(out);
	return 0;
}

char *vhdx_scope_full(const struct vhdx_scope *s, const char *rel, bool canonical)
{
	const char *dir = canonical && s->dir_real ? s->dir_real : s->dir;
	char *out;
	if (asprintf(&out, "%.*s/%s", (int)dir_len(dir), dir, rel) < 0)
		return NULL;
	return out;
}

static bool no_openat2(void)
{
	/* tests force the walk, to cover kernels without openat2 */
	const char *e = getenv("SCM_VDISK_NO_OPENAT2");
	return e && *e == '1';
}

/* One O_NOFOLLOW step per component: a symlink anywhere is refused
 * (O_DIRECTORY on a link fails, and the last one is an O_PATH fd of the
 * link itself, which fstat shows). rel has no "." or "..". */
static int walk(int dirfd, const char *rel)
{
	_cleanup_free_ char *p = strdup(rel);
	if (!p)
		return -ENOMEM;
	int cur = dirfd;
	char *save = NULL;
	char *comp = strtok_r(p, "/", &save);
	while (comp) {
		char *next = strtok_r(NULL, "/", &save);
		int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC | (next ? O_DIRECTORY : 0));
		int e = errno;
		if (cur != dirfd)
			close(cur);
		if (fd < 0)
			return e == ENOTDIR ? -ELOOP : -e;
		cur = fd;
		comp = next;
	}
	return cur == dirfd ? -EINVAL : cur;
}

int vhdx_reopen_fd(int fd, int mode, int *ret_fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int nfd = open(p, mode | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	struct stat a, b;
	if (fstat(fd, &a) < 0 || fstat(nfd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
	    !S_ISREG(b.st_mode)) {
		close(nfd);
		return -ESTALE;
	}
	int fl = fcntl(nfd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(nfd, F_SETFL, fl & ~O_NONBLOCK);
	*ret_fd = nfd;
	return 0;
}

int vhdx_scope_open(const struct vhdx_scope *s, const char *rel, bool ro, int *ret_fd,
		    scm_error **ret_err)
{
	int pfd = -1;
	if (!no_openat2()) {
		struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
						   RESOLVE_NO_MAGICLINKS };
		pfd = (int)syscall(SYS_openat2, s->dirfd, rel, &how, sizeof how);
		if (pfd < 0)
			pfd = -errno;
	}
	if (no_openat2() || pfd == -ENOSYS || pfd == -EPERM /* seccomp without openat2 */)
		pfd = walk(s->dirfd, rel);
	if (pfd < 0) {
		const char *what = pfd == -ELOOP	? "a symbolic link on the way (not followed under a grant)"
				   : pfd == -EXDEV ? "it leads out of the granted directory"
						   : strerror(-pfd);
		return scm_fail(ret_err, pfd == -EXDEV || pfd == -ELOOP ? -EACCES : pfd, "%s", what);
	}
	struct stat st;
	if (fstat(pfd, &st) < 0) {
		int r = -errno;
		close(pfd);
		return scm_fail(ret_err, r, "fstat: %s", strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(pfd);
		int r = S_ISLNK(st.st_mode) ? -EACCES : -EINVAL;
		return scm_fail(ret_err, r, "not a regular file (%s)",
			 S_ISLNK(st.st_mode)    ? "a symbolic link, not followed under a grant"
			 : S_ISFIFO(st.st_mode) ? "a FIFO"
			 : S_ISDIR(st.st_mode)  ? "a directory"
			 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
								       : "a socket");
	}
	int fd;
	int r = vhdx_reopen_fd(pfd, ro ? O_RDONLY : O_RDWR, &fd);
	if (r == -ENOENT) {
		/* no /proc here: the same lookup again, for I/O this time
		 * (O_NONBLOCK: should a FIFO have been swapped in, it does not
		 * block), and it must be the file the first one found */
		struct open_how how = { .flags = (ro ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
						 O_CLOEXEC,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
		struct stat b;
		fd = no_openat2() ? -1 : (int)syscall(SYS_openat2, s->dirfd, rel, &how, sizeof how);
		if (fd < 0 || fstat(fd, &b) < 0 || b.st_dev != st.st_dev || b.st_ino != st.st_ino) {
			if (fd >= 0)
				close(fd);
			r = -ESTALE;
		} else {
			int fl = fcntl(fd, F_GETFL);
			if (fl >= 0)
				(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
			r = 0;
		}
	}
	close(pfd);
	if (r < 0)
		return scm_fail(ret_err, r, "reopen through /proc/self/fd: %s", strerror(-r));
	*ret_fd = fd;
	return 0;
}

/* For create: an O_PATH fd of the directory path names, beneath the
 * scope, and the new file's name in it. */
int vhdx_scope_dir(const struct vhdx_scope *s, const char *path, int *ret_dirfd, const char **ret_name,
		   scm_error **ret_err)
{
	_cleanup_free_ char *rel = NULL;
	const char *name = strrchr(path, '/');
	if (path[0] != '/' || !name || !name[1] || vhdx_scope_rel(s, NULL, path, &rel) < 0)
		return scm_fail(ret_err, -EACCES, "not a path under the granted directory");
	_cleanup_free_ char *full = vhdx_scope_full(s, rel, false);
	if (!full)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	/* the name created is the lexically resolved one: the grant must allow that */
	if (s->allow && !s->allow(full, s->userdata))
		return scm_fail(ret_err, -EACCES, "not allowed by the grant (it names %s)", full);
	char *slash = strrchr(rel, '/');
	int fd;
	if (!slash) {
		fd = fcntl(s->dirfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = -errno;
	} else {
		*slash = 0;
		fd = -ENOSYS;
		if (!no_openat2()) {
			struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
						.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
							   RESOLVE_NO_MAGICLINKS };
			fd = (int)syscall(SYS_openat2, s->dirfd, rel, &how, sizeof how);
			if (fd < 0)
				fd = -errno;
		}
		if (fd == -ENOSYS || fd == -EPERM) {
			/* the walk ends on the directory itself: check it is one */
			fd = walk(s->dirfd, rel);
			struct stat st;
			if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
				close(fd);
				fd = -ENOTDIR;
			}
		}
	}
	if (fd < 0)
		return scm_fail(ret_err, fd, "directory: %s",
			 fd == -ELOOP ? "a symbolic link on the way (not followed under a grant)" : strerror(-fd));
	*ret_dirfd = fd;
	*ret_name = name + 1;
	return 0;
}

int vhdx_scope_opendir(const struct vhdx_scope *s, const char *path, int *ret_dirfd, scm_error **ret_err)
{
	int pfd;
	const char *name;
	int r = vhdx_scope_dir(s, path, &pfd, &name, ret_err);
	if (r < 0)
		return r;
	/* an O_PATH fd cannot be fsynced: the directory itself, opened
	 * through it */
	int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(pfd);
	if (r < 0)
		return scm_fail(ret_err, r, "the directory of %s: %s", path, strerror(-r));
	*ret_dirfd = fd;
	return 0;
}
