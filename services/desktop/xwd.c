/* xwd.c: Xvfb's XWD framebuffer file, validated, mapped and diffed.
 *
 * The XWD header is 25 big-endian uint32 fields followed by the window
 * name; header_size covers both, then come ncolors 12-byte colour
 * entries, then the pixels (RFC-less format: see X11's XWDFile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scm/macro.h"
#include "xwd.h"

#define ERR(...) scm_fail(ret_err, GFX_E_INVALID, __VA_ARGS__)

enum {
	F_HEADER_SIZE, F_VERSION, F_FORMAT, F_DEPTH, F_WIDTH, F_HEIGHT, F_XOFFSET, F_BYTE_ORDER,
	F_BITMAP_UNIT, F_BIT_ORDER, F_BITMAP_PAD, F_BPP, F_BYTES_PER_LINE, F_VISUAL_CLASS,
	F_RED_MASK, F_GREEN_MASK, F_BLUE_MASK, F_BITS_PER_RGB, F_CMAP_ENTRIES, F_NCOLORS,
	F_COUNT = 25
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int xwd_parse(const uint8_t *buf, size_t file_size, xwd_info *ret, scm_error **ret_err)
{
	uint32_t f[F_COUNT];
	if (file_size < F_COUNT * 4)
		return ERR("xwd: %zu bytes is shorter than the header", file_size);
	for (int i = 0; i < F_COUNT; i++)
		f[i] = be32(buf + 4 * i);
	if (f[F_VERSION] != 7)
		return ERR("xwd/file_version: %u, want 7", f[F_VERSION]);
	if (f[F_HEADER_SIZE] < F_COUNT * 4 || f[F_HEADER_SIZE] > 65536)
		return ERR("xwd/header_size: %u is out of range", f[F_HEADER_SIZE]);
	if (f[F_FORMAT] != 2)
		return ERR("xwd/pixmap_format: %u, want 2 (ZPixmap)", f[F_FORMAT]);
	if (f[F_BPP] != 32)
		return ERR("xwd/bits_per_pixel: %u, want 32", f[F_BPP]);
	if (f[F_RED_MASK] != 0xFF0000 || f[F_GREEN_MASK] != 0xFF00 || f[F_BLUE_MASK] != 0xFF)
		return ERR("xwd/red_mask: masks %x/%x/%x are not x8r8g8b8", f[F_RED_MASK], f[F_GREEN_MASK],
			   f[F_BLUE_MASK]);
	if (f[F_BYTE_ORDER] != 0)
		return ERR("xwd/byte_order: %u, want 0 (LSBFirst)", f[F_BYTE_ORDER]);
	if (f[F_WIDTH] == 0 || f[F_HEIGHT] == 0 || f[F_WIDTH] > GFX_DIM_MAX || f[F_HEIGHT] > GFX_DIM_MAX)
		return ERR("xwd/pixmap_width: %ux%u is outside 1..%u", f[F_WIDTH], f[F_HEIGHT], GFX_DIM_MAX);
	if (f[F_BYTES_PER_LINE] < f[F_WIDTH] * 4u || f[F_BYTES_PER_LINE] % 4 || f[F_BYTES_PER_LINE] > 4 * GFX_DIM_MAX + 64)
		return ERR("xwd/bytes_per_line: %u for width %u", f[F_BYTES_PER_LINE], f[F_WIDTH]);
	if (f[F_NCOLORS] > 65536)
		return ERR("xwd/ncolors: %u is out of range", f[F_NCOLORS]);
	uint64_t off = (uint64_t)f[F_HEADER_SIZE] + (uint64_t)f[F_NCOLORS] * 12u;
	uint64_t end = off + (uint64_t)f[F_BYTES_PER_LINE] * f[F_HEIGHT];
	if (off % 4 || end > file_size)
		return ERR("xwd: pixels at %llu..%llu do not fit a %zu-byte file", (unsigned long long)off,
			   (unsigned long long)end, file_size);
	*ret = (xwd_info){ .width = f[F_WIDTH], .height = f[F_HEIGHT], .bytes_per_line = f[F_BYTES_PER_LINE],
			   .pixel_offset = (size_t)off };
	return 0;
}

int xwd_open(const char *path, xwd_view *ret, scm_error **ret_err)
{
	struct stat st;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = -errno;
		return scm_fail(ret_err, e, "%s: %s", path, strerror(-e));
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0)
		return ERR("%s: not a regular, non-empty file", path);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = -errno;
		return scm_fail(ret_err, e, "%s: mmap: %s", path, strerror(-e));
	}
	xwd_info info;
	int r = xwd_parse(m, (size_t)st.st_size, &info, ret_err);
	if (r) {
		munmap(m, (size_t)st.st_size);
		return r;
	}
	*ret = (xwd_view){ .fd = TAKE_FD(fd), .map = m, .map_size = (size_t)st.st_size, .info = info };
	return 0;
}

void xwd_close(xwd_view *v)
{
	if (v->map)
		munmap(v->map, v->map_size);
	safe_close(v->fd);
	*v = (xwd_view){ .fd = -1 };
}

size_t xwd_diff(const uint8_t *src, size_t stride, uint32_t width, uint32_t height, uint32_t *shadow,
		uint32_t *dst, gfx_rect *rects, size_t max)
{
	size_t n = 0;
	gfx_rect cur = { 0, 0, 0, 0 };
	bool open_run = false;

	if (max == 0)
		return 0;
	for (uint32_t y = 0; y < height; y++) {
		const uint32_t *s = (const uint32_t *)(src + (size_t)y * stride);
		uint32_t *sh = shadow + (size_t)y * width;
		if (memcmp(s, sh, (size_t)width * 4) == 0) {
			/* The last free rect stays open: it then covers every
			 * later change too, so no damage is ever lost. */
			if (open_run && n < max - 1) {
				rects[n++] = cur;
				open_run = false;
			}
			continue;
		}
		/* The changed columns of this row, from both ends. */
		uint32_t x0 = 0, x1 = width;
		while (x0 < width && s[x0] == sh[x0])
			x0++;
		while (x1 > x0 && s[x1 - 1] == sh[x1 - 1])
			x1--;
		memcpy(sh, s, (size_t)width * 4);
		if (dst)
			memcpy(dst + (size_t)y * width, s, (size_t)width * 4);
		if (!open_run) {
			cur = (gfx_rect){ (int32_t)x0, (int32_t)y, (int32_t)(x1 - x0), 1 };
			open_run = true;
			continue;
		}
		int32_t l = cur.x < (int32_t)x0 ? cur.x : (int32_t)x0;
		int32_t r = cur.x + cur.w > (int32_t)x1 ? cur.x + cur.w : (int32_t)x1;
		cur = (gfx_rect){ l, cur.y, r - l, (int32_t)y - cur.y + 1 };
	}
	if (open_run)
		rects[n++] = cur;
	return n;
}
