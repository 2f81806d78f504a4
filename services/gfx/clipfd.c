/* clipfd.c: the clipboard's bytes in sealed memfds (clipboard.h), apart
 * from the desktop clipboard itself so the agent links these alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipboard.h"
#include "scm/macro.h"

#define ERR(code, ...) scm_fail(ret_err, (code), __VA_ARGS__)

int gfx_clip_memfd(const void *data, size_t len, int *ret_fd)
{
	_cleanup_close_ int fd = memfd_create("scm-clipboard", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (!data && ftruncate(fd, (off_t)len) < 0)
		return -errno;
	for (size_t off = 0; data && off < len;) {
		ssize_t k = write(fd, (const char *)data + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		off += (size_t)k;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int gfx_clip_read_memfd(int fd, char **ret_data, size_t *ret_len, scm_error **ret_err)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	const int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
	/* F_GET_SEALS works on memfds only: no pipe or FUSE file can stall us. */
	if (seals < 0 || (seals & need) != need)
		return ERR(GFX_E_INVALID, "/data: not a memfd sealed against writing and resizing");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ERR(GFX_E_INVALID, "/data: cannot stat it");
	if (st.st_size > (off_t)GFX_CLIP_BYTES_MAX) {
		*ret_len = (size_t)st.st_size;
		return ERR(GFX_E_LIMIT, "/data: %lld bytes, more than the %u the desktop clipboard holds",
			   (long long)st.st_size, GFX_CLIP_BYTES_MAX);
	}
	size_t len = (size_t)st.st_size;
	char *buf = malloc(len + 1);
	if (!buf)
		return ERR(-ENOMEM, "/data: out of memory");
	for (size_t off = 0; off < len;) {
		ssize_t k = pread(fd, buf + off, len - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(buf);
			return ERR(GFX_E_INVALID, "/data: short read");
		}
		off += (size_t)k;
	}
	buf[len] = '\0';
	*ret_data = buf;
	*ret_len = len;
	return 0;
}
