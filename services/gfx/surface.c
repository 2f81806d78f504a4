/* surface.c: client framebuffers in sealed memfds.
 *
 * The proxy creates the memfd, sizes it and seals it before anyone else
 * sees it: F_SEAL_SHRINK means the client cannot truncate it under the
 * proxy's mapping (which would SIGBUS the proxy), F_SEAL_GROW keeps the
 * size the proxy accounted for, F_SEAL_SEAL stops further changes. The
 * client keeps write access to the pixels, which is the point. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gfx.h"
#include "scm/macro.h"

#define GFX_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int gfx_check_size(uint32_t width, uint32_t height, size_t *ret_bytes)
{
	if (width == 0 || height == 0 || width > GFX_DIM_MAX || height > GFX_DIM_MAX)
		return GFX_E_INVALID;
	uint64_t bytes = (uint64_t)width * height * 4u;
	if (bytes > GFX_SURFACE_BYTES_MAX)
		return GFX_E_LIMIT;
	*ret_bytes = (size_t)bytes;
	return 0;
}

gfx_surface *gfx_surface_free(gfx_surface *s)
{
	if (!s)
		return NULL;
	if (s->pixels)
		munmap(s->pixels, s->size);
	safe_close(s->fd);
	free(s);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP(gfx_surface *, gfx_surface_free)

static int map_fd(int fd, uint32_t width, uint32_t height, size_t bytes, gfx_surface **ret)
{
	_cleanup_(gfx_surface_freep) gfx_surface *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->pixels = p;
	s->size = bytes;
	s->width = width;
	s->height = height;
	s->fd = fd;
	*ret = TAKE_PTR(s);
	return 0;
}

int gfx_surface_new(uint32_t width, uint32_t height, gfx_surface **ret)
{
	size_t bytes;
	int r = gfx_check_size(width, height, &bytes);
	if (r)
		return r;
	_cleanup_close_ int fd = memfd_create("scm-gfx-surface", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0)
		return -errno;
	if (fcntl(fd, F_ADD_SEALS, GFX_SEALS) < 0)
		return -errno;
	r = map_fd(fd, width, height, bytes, ret);
	if (r == 0)
		TAKE_FD(fd);
	return r;
}

int gfx_surface_map(int fd, uint32_t width, uint32_t height, gfx_surface **ret)
{
	size_t bytes;
	struct stat st;
	int r = gfx_check_size(width, height, &bytes);
	if (r)
		return r;
	/* A fd that can still shrink could SIGBUS us later; one smaller than
	 * the surface would SIGBUS at once. */
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return -errno;
	if ((seals & F_SEAL_SHRINK) == 0)
		return GFX_E_INVALID;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < 0 || (uint64_t)st.st_size < bytes)
		return GFX_E_INVALID;
	return map_fd(fd, width, height, bytes, ret);
}
