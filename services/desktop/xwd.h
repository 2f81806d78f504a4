/* xwd.h: reading Xvfb's screen through its -fbdir XWD file, and finding
 * what changed since the last look.
 *
 * Xvfb -fbdir DIR keeps screen 0 in DIR/Xvfb_screen0 as an XWD image that
 * it draws into directly, so mapping the file shows the live screen. The
 * file comes from inside an app container, so its header is checked like
 * any other untrusted input before a pixel is read. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

#include "gfx.h"

typedef struct xwd_info {
	uint32_t width, height;
	uint32_t bytes_per_line;
	size_t pixel_offset; /* header + window name + colour map */
} xwd_info;

/* Validates an XWD header (32 bpp ZPixmap, true colour, width and height
 * within GFX_DIM_MAX, pixels inside file_size). Returns 0 or
 * GFX_E_INVALID with *ret_err naming the field. */
int xwd_parse(const uint8_t *buf, size_t file_size, xwd_info *ret, scm_error **ret_err);

typedef struct xwd_view {
	int fd;
	uint8_t *map;
	size_t map_size;
	xwd_info info;
} xwd_view;

/* Maps DIR/Xvfb_screen0 (read-only). */
int xwd_open(const char *path, xwd_view *ret, scm_error **ret_err);
void xwd_close(xwd_view *v);
static inline const uint32_t *xwd_row(const xwd_view *v, uint32_t y)
{
	return (const uint32_t *)(v->map + v->info.pixel_offset + (size_t)y * v->info.bytes_per_line);
}

/* Compares width x height pixels of src (stride in bytes) with shadow
 * (tightly packed) row by row, copies changed rows into shadow and dst
 * (tightly packed, may be NULL), and describes the change as at most max
 * rects: runs of changed rows, each as wide as its changed columns.
 * Returns the number of rects. */
size_t xwd_diff(const uint8_t *src, size_t stride, uint32_t width, uint32_t height, uint32_t *shadow,
		uint32_t *dst, gfx_rect *rects, size_t max);
