/* snapshot.c: the desktop as a PNG file (libpng).
 *
 * Written to a temporary file beside the target and renamed, so a reader
 * never sees half a PNG. libpng reports errors by longjmp, hence the
 * volatile locals that must survive it. */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gfx.h"

static int write_png(const gfx_compositor *c, FILE *f)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (!png)
		return -ENOMEM;
	png_infop info = png_create_info_struct(png);
	uint8_t *volatile row = NULL;
	if (!info || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(row);
		return -EIO;
	}
	row = malloc((size_t)c->width * 3);
	if (!row)
		png_error(png, "out of memory");
	png_init_io(png, f);
	/* Snapshots are for people and tests, not for speed. */
	png_set_compression_level(png, 1);
	png_set_IHDR(png, info, c->width, c->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < c->height; y++) {
		const uint32_t *src = c->fb + (size_t)y * c->width;
		for (uint32_t x = 0; x < c->width; x++) {
			row[x * 3 + 0] = (uint8_t)(src[x] >> 16);
			row[x * 3 + 1] = (uint8_t)(src[x] >> 8);
			row[x * 3 + 2] = (uint8_t)src[x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return 0;
}

int gfx_snapshot_png(const gfx_compositor *c, const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "we");
	if (!f) {
		int e = -errno;
		close(fd);
		unlink(tmp);
		return e;
	}
	int r = write_png(c, f);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int gfx_snapshot_png_fd(const gfx_compositor *c, int fd)
{
	struct stat st;
	/* A pipe or socket nobody reads would block the proxy's only thread:
	 * only regular files (memfds included) are written. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	FILE *f = fdopen(dup_fd, "we");
	if (!f) {
		int e = -errno;
		close(dup_fd);
		return e;
	}
	int r = write_png(c, f);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}
