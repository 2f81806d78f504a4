/* expose.c: the engine's rootfs and bind sources, reachable by the
 * container's ids.
 *
 * scm runs every container as ids of its subordinate range, and the
 * container's setup mounts its root and binds as that mapped root. An
 * engine keeps them where only host root can walk (podman's storage and
 * its per-container userdata are 0700), so scm-oci, which runs as the
 * engine's root, binds each of them under the container's own state
 * directory (ROOT/ID/rootfs, ROOT/ID/b0, b1 ...; the directories are
 * 0711), and the translated spec names those. They are unmounted at
 * delete (and when create fails). Only the engine's own paths are bound,
 * each once, read-only where the engine said so at the final bind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci.h"
#include "scm/macro.h"

static int dir_path(int dirfd, char *buf, size_t size)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(self, buf, size - 1);
	if (n <= 0 || (size_t)n >= size - 1)
		return -ENAMETOOLONG;
	buf[n] = 0;
	return 0;
}

/* Binds src at dirfd/name (a directory or an empty file to match). */
static int bind_at(int dirfd, const char *dir, const char *name, const char *src, char *ret_path, size_t size,
		   scm_error **ret_err)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: %m", src);
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return scm_fail(ret_err, -errno, "%s/%s: %m", dir, name);
	} else {
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return scm_fail(ret_err, -errno, "%s/%s: %m", dir, name);
		close(fd);
	}
	if ((size_t)snprintf(ret_path, size, "%s/%s", dir, name) >= size)
		return scm_fail(ret_err, -ENAMETOOLONG, "%s/%s: too long", dir, name);
	if (mount(src, ret_path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return scm_fail(ret_err, -errno, "binding %s at %s: %m", src, ret_path);
	return 0;
}

int oci_expose(int dirfd, json_object *cfg, json_object *binds, scm_error **ret_err)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	json_object *root, *rp;
	if (dir_path(dirfd, dir, sizeof(dir)) < 0)
		return scm_fail(ret_err, -ENAMETOOLONG, "the state directory's name is too long");
	/* the container's ids walk through here; only root reads what is in it */
	if (fchmodat(AT_FDCWD, dir, 0711, 0) < 0)
		return scm_fail(ret_err, -errno, "%s: %m", dir);
	if (!json_object_object_get_ex(cfg, "root", &root) || !json_object_object_get_ex(root, "path", &rp))
		return scm_fail(ret_err, SCM_E_INVALID, "config.json /root/path: required");
	int r = bind_at(dirfd, dir, "rootfs", json_object_get_string(rp), path, sizeof(path), ret_err);
	if (r != 0)
		return r;
	json_object_object_add(root, "path", json_object_new_string(path));
	for (size_t i = 0; i < json_object_array_length(binds); i++) {
		json_object *b = json_object_array_get_idx(binds, i), *src;
		char name[32];
		snprintf(name, sizeof(name), "b%zu", i);
		if (!json_object_object_get_ex(b, "source", &src) ||
		    (r = bind_at(dirfd, dir, name, json_object_get_string(src), path, sizeof(path), ret_err)) != 0)
			return r ? r : scm_fail(ret_err, SCM_E_INVALID, "bind %zu: no source", i);
		json_object_object_add(b, "source", json_object_new_string(path));
	}
	return 0;
}

void oci_unexpose(int dirfd, size_t n_binds)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	if (dir_path(dirfd, dir, sizeof(dir)) < 0)
		return;
	for (size_t i = 0; i <= n_binds; i++) {
		if (i == n_binds)
			snprintf(path, sizeof(path), "%s/rootfs", dir);
		else
			snprintf(path, sizeof(path), "%s/b%zu", dir, i);
		/* the container's own mount namespace has its copies; ours go */
		while (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			;
	}
}
