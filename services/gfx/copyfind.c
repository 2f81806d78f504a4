/* copyfind.c: which part of a desktop change is earlier pixels moved, and
 * which part did not change at all.
 *
 * A terminal that scrolls redraws its whole window although most of it is
 * the same text a few rows higher; a dragged window is the same pixels a
 * few columns over. A viewer that has the old pixels can move them itself
 * (CopyRect: 16 bytes per rect, whatever its size), so only the rows that
 * are really new need encoding. x11vnc learns of scrolls from the X
 * server (RECORD); the proxy sees only pixels, so it compares the desktop
 * with what it last told viewers about: rows of the new frame are hashed
 * and looked up among the old rows for candidate offsets, the window
 * manager adds the moves it made, and every candidate is verified row by
 * row with memcmp before a byte of it is trusted. A wrong guess therefore
 * costs time, never pixels.
 *
 * The same comparison drops the parts of the damage where nothing changed
 * (an app that redraws a line with the same text; a frame redrawn in the
 * same colour): a viewer already has those pixels. */
#include <stdlib.h>
#include <string.h>

#include "gfx.h"

#define MIN_ROWS 4u     /* a copy run shorter than this is not worth a rect */
#define MIN_WIDTH 16    /* nor a narrower one */
#define SAMPLES 16u     /* rows of a changed rect looked up among the old rows */
#define CANDIDATES 8u   /* offsets verified per changed rect */
#define OFFSETS 16u     /* distinct offsets verified in all */

/* Two independent lanes of 64-bit words, so the multiplies overlap: a
 * row of a 1080p desktop hashes in about a microsecond. Equal hashes are
 * only candidates; verify() compares the pixels. */
static uint64_t row_hash(const uint32_t *p, int32_t n)
{
	uint64_t a = 0x9E3779B97F4A7C15ull, b = 0xC2B2AE3D27D4EB4Full, w0, w1;
	int32_t i = 0;
	for (; i + 4 <= n; i += 4) {
		memcpy(&w0, p + i, 8);
		memcpy(&w1, p + i + 2, 8);
		a = (a ^ w0) * 0xFF51AFD7ED558CCDull;
		b = (b ^ w1) * 0xC4CEB9FE1A85EC53ull;
		a ^= a >> 31;
		b ^= b >> 29;
	}
	for (; i < n; i++)
		a = ((a ^ p[i]) * 0xFF51AFD7ED558CCDull) ^ (a >> 31);
	return a ^ (b * 0x9E3779B97F4A7C15ull);
}

static bool row_uniform(const uint32_t *p, int32_t n)
{
	return n < 2 || memcmp(p, p + 1, (size_t)(n - 1) * 4) == 0;
}

/* Adds to *c the rows of r (clipped so that the source is on the
 * desktop too) whose pixels in cur are those of old at - (dx, dy), as
 * runs of at least MIN_ROWS rows. Flat rows (one colour) match under
 * many offsets and cost a viewer nothing to fill: a run of only those is
 * left out, and they do not count in the pixels returned, which decide
 * between offsets. */
static uint64_t verify(const uint32_t *old, const uint32_t *cur, int32_t W, int32_t H, const gfx_rect *r,
		       int32_t dx, int32_t dy, gfx_copy *c)
{
	/* No source on the desktop (and no overflow below). */
	if (dx <= -W || dx >= W || dy <= -H || dy >= H)
		return 0;
	gfx_rect d = { 0, 0, W, H }, src_ok = { dx, dy, W, H }, v;
	if (!gfx_rect_intersect(r, &d, &v) || !gfx_rect_intersect(&v, &src_ok, &v) || v.w < MIN_WIDTH)
		return 0;
	uint64_t area = 0;
	int32_t run = -1, textured = 0;
	for (int32_t y = v.y; y <= v.y + v.h; y++) {
		const uint32_t *row = cur + (size_t)y * W + v.x;
		bool same = y < v.y + v.h &&
			    memcmp(row, old + (size_t)(y - dy) * W + (v.x - dx), (size_t)v.w * 4) == 0;
		if (same) {
			if (run < 0)
				run = y, textured = 0;
			textured += !row_uniform(row, v.w);
			continue;
		}
		if (run >= 0 && y - run >= (int32_t)MIN_ROWS && textured > 0 && c->n < GFX_COPY_RECTS_MAX) {
			c->r[c->n++] = (gfx_rect){ v.x, run, v.w, y - run };
			area += (uint64_t)v.w * (uint64_t)textured;
		}
		run = -1;
	}
	return area;
}

typedef struct offset {
	int32_t dx, dy;
	uint32_t votes;
} offset;

static void vote(offset *o, size_t *n, size_t max, int32_t dx, int32_t dy, uint32_t weight)
{
	for (size_t i = 0; i < *n; i++)
		if (o[i].dx == dx && o[i].dy == dy) {
			o[i].votes += weight;
			return;
		}
	if (*n < max)
		o[(*n)++] = (offset){ dx, dy, weight };
}

/* Vertical offsets under which rows of r in cur were rows of r in old:
 * a few changed rows that are not one flat colour (those match
 * anywhere) are looked up among the old rows' hashes. */
static void scroll_candidates(const uint32_t *old, const uint32_t *cur, int32_t W, const gfx_rect *r, offset *o,
			      size_t *n)
{
	if (r->w < MIN_WIDTH || r->h < 2 * (int32_t)MIN_ROWS)
		return;
	uint64_t *hn = malloc((size_t)r->h * 2 * sizeof(*hn));
	int32_t *pick = malloc((size_t)r->h * sizeof(*pick));
	if (!hn || !pick) {
		free(hn);
		free(pick);
		return;
	}
	uint64_t *ho = hn + r->h;
	int32_t k = 0;
	for (int32_t i = 0; i < r->h; i++) {
		const uint32_t *c = cur + (size_t)(r->y + i) * W + r->x, *p = old + (size_t)(r->y + i) * W + r->x;
		hn[i] = row_hash(c, r->w);
		ho[i] = row_hash(p, r->w);
		if (hn[i] != ho[i] && !row_uniform(c, r->w))
			pick[k++] = i;
	}
	offset local[CANDIDATES * 4];
	size_t nl = 0;
	for (uint32_t s = 0; s < SAMPLES && k > 0; s++) {
		int32_t i = pick[(int64_t)s * k / SAMPLES];
		if (s > 0 && i == pick[(int64_t)(s - 1) * k / SAMPLES])
			continue;
		for (int32_t j = 0; j < r->h; j++)
			if (j != i && ho[j] == hn[i])
				vote(local, &nl, CANDIDATES * 4, 0, i - j, 1);
	}
	free(hn);
	free(pick);
	/* The best supported ones go on. */
	for (size_t t = 0; t < CANDIDATES && nl > 0; t++) {
		size_t best = 0;
		for (size_t i = 1; i < nl; i++)
			if (local[i].votes > local[best].votes)
				best = i;
		vote(o, n, OFFSETS, local[best].dx, local[best].dy, 0);
		local[best] = local[--nl];
	}
}

bool gfx_copy_find(const uint32_t *old, const uint32_t *cur, uint32_t width, uint32_t height,
		   const gfx_region *changed, const gfx_move_hint *hints, size_t n_hints, gfx_copy *ret)
{
	int32_t W = (int32_t)width, H = (int32_t)height;
	gfx_rect desk = { 0, 0, W, H };
	offset o[OFFSETS];
	size_t n = 0;
	*ret = (gfx_copy){ 0 };
	for (size_t i = 0; i < n_hints; i++)
		if (hints[i].dx || hints[i].dy)
			vote(o, &n, OFFSETS, hints[i].dx, hints[i].dy, 0);
	/* A scrolling terminal's damage is one rect per line of text (the
	 * rows between lines do not change): a line's old place is outside
	 * its rect, so the scroll is looked for in their bounding box too. */
	gfx_rect box = gfx_region_bounds(changed);
	if (changed->n > 1 && gfx_rect_intersect(&box, &desk, &box))
		scroll_candidates(old, cur, W, &box, o, &n);
	else
		box = (gfx_rect){ 0, 0, 0, 0 };
	for (uint32_t i = 0; i < changed->n; i++) {
		gfx_rect r;
		if (gfx_rect_intersect(&changed->r[i], &desk, &r))
			scroll_candidates(old, cur, W, &r, o, &n);
	}
	/* Each offset is tried where it may apply: a hint's offset on the
	 * hinted rects (a window's frame, however the damage was merged),
	 * any offset on the changed rects and on their bounding box (one
	 * rect where it all moved); the largest total wins. */
	uint64_t best_area = 0;
	for (size_t k = 0; k < n; k++) {
		gfx_copy c = { .dx = o[k].dx, .dy = o[k].dy }, b = c;
		uint64_t area = 0, barea = 0;
		for (size_t i = 0; i < n_hints; i++)
			if (hints[i].dx == c.dx && hints[i].dy == c.dy)
				area += verify(old, cur, W, H, &hints[i].dst, c.dx, c.dy, &c);
		/* Rects a hint covered already are not tried twice. */
		if (c.n == 0)
			for (uint32_t i = 0; i < changed->n; i++)
				area += verify(old, cur, W, H, &changed->r[i], c.dx, c.dy, &c);
		if (!gfx_rect_empty(&box) && (barea = verify(old, cur, W, H, &box, b.dx, b.dy, &b)) >= area && barea > 0) {
			area = barea;
			c = b;
		}
		if (area > best_area) {
			best_area = area;
			*ret = c;
		}
	}
	return ret->n > 0;
}

void gfx_changed_parts(const uint32_t *old, const uint32_t *cur, uint32_t width, uint32_t height,
		       const gfx_rect *rect, void (*fn)(void *ud, const gfx_rect *part), void *ud)
{
	gfx_rect desk = { 0, 0, (int32_t)width, (int32_t)height }, r;
	if (!gfx_rect_intersect(rect, &desk, &r))
		return;
	for (int32_t b = r.y; b < r.y + r.h; b += (int32_t)GFX_CHANGE_BAND) {
		int32_t end = b + (int32_t)GFX_CHANGE_BAND < r.y + r.h ? b + (int32_t)GFX_CHANGE_BAND : r.y + r.h;
		int32_t x0 = r.x + r.w, x1 = r.x, y0 = -1, y1 = -1;
		for (int32_t y = b; y < end; y++) {
			const uint32_t *c = cur + (size_t)y * width, *p = old + (size_t)y * width;
			int32_t a = r.x, z = r.x + r.w;
			while (a < z && c[a] == p[a])
				a++;
			if (a == z)
				continue;
			while (z > a && c[z - 1] == p[z - 1])
				z--;
			x0 = a < x0 ? a : x0;
			x1 = z > x1 ? z : x1;
			if (y0 < 0)
				y0 = y;
			y1 = y + 1;
		}
		if (y0 >= 0) {
			gfx_rect part = { x0, y0, x1 - x0, y1 - y0 };
			fn(ud, &part);
		}
	}
}
