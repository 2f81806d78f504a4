/* region.c: damage rectangles and regions.
 *
 * Every rect that reaches here may come from a client, so intersection is
 * done in 64-bit: x + w of a hostile rect can overflow int32. A region is a
 * short list; when it is full a new rect merges into the member whose
 * bounding box grows least, trading a little extra compositing for a
 * bounded cost per present. */
#include "gfx.h"

bool gfx_rect_empty(const gfx_rect *r)
{
	return r->w <= 0 || r->h <= 0;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}
static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

bool gfx_rect_intersect(const gfx_rect *a, const gfx_rect *b, gfx_rect *ret)
{
	int64_t x0 = max64(a->x, b->x), y0 = max64(a->y, b->y);
	int64_t x1 = min64((int64_t)a->x + (a->w > 0 ? a->w : 0), (int64_t)b->x + (b->w > 0 ? b->w : 0));
	int64_t y1 = min64((int64_t)a->y + (a->h > 0 ? a->h : 0), (int64_t)b->y + (b->h > 0 ? b->h : 0));

	if (x1 <= x0 || y1 <= y0) {
		*ret = (gfx_rect){ 0, 0, 0, 0 };
		return false;
	}
	/* Both inputs fit int32, so the intersection does too. */
	*ret = (gfx_rect){ (int32_t)x0, (int32_t)y0, (int32_t)(x1 - x0), (int32_t)(y1 - y0) };
	return true;
}

gfx_rect gfx_rect_union(const gfx_rect *a, const gfx_rect *b)
{
	if (gfx_rect_empty(a))
		return *b;
	if (gfx_rect_empty(b))
		return *a;
	int64_t x0 = min64(a->x, b->x), y0 = min64(a->y, b->y);
	int64_t x1 = max64((int64_t)a->x + a->w, (int64_t)b->x + b->w);
	int64_t y1 = max64((int64_t)a->y + a->h, (int64_t)b->y + b->h);
	/* Callers only union rects already clipped to a bounded surface. */
	return (gfx_rect){ (int32_t)x0, (int32_t)y0, (int32_t)(x1 - x0), (int32_t)(y1 - y0) };
}

static uint64_t area(const gfx_rect *r)
{
	return gfx_rect_empty(r) ? 0 : (uint64_t)r->w * (uint64_t)r->h;
}

static bool contains(const gfx_rect *outer, const gfx_rect *in)
{
	return in->x >= outer->x && in->y >= outer->y &&
	       (int64_t)in->x + in->w <= (int64_t)outer->x + outer->w &&
	       (int64_t)in->y + in->h <= (int64_t)outer->y + outer->h;
}

void gfx_region_clear(gfx_region *rg)
{
	rg->n = 0;
}

bool gfx_region_empty(const gfx_region *rg)
{
	return rg->n == 0;
}

void gfx_region_add(gfx_region *rg, const gfx_rect *r, const gfx_rect *bounds)
{
	gfx_rect c;

	if (!gfx_rect_intersect(r, bounds, &c))
		return;
	for (uint32_t i = 0; i < rg->n; i++) {
		if (contains(&rg->r[i], &c))
			return;
		if (contains(&c, &rg->r[i])) {
			/* Swallow every member c covers, then keep c once. */
			uint32_t k = 0;
			for (uint32_t j = 0; j < rg->n; j++)
				if (!contains(&c, &rg->r[j]))
					rg->r[k++] = rg->r[j];
			rg->n = k;
			break;
		}
	}
	if (rg->n < GFX_REGION_MAX) {
		rg->r[rg->n++] = c;
		return;
	}
	uint32_t best = 0;
	uint64_t best_growth = UINT64_MAX;
	for (uint32_t i = 0; i < rg->n; i++) {
		gfx_rect u = gfx_rect_union(&rg->r[i], &c);
		uint64_t g = area(&u) - area(&rg->r[i]);
		if (g < best_growth) {
			best_growth = g;
			best = i;
		}
	}
	rg->r[best] = gfx_rect_union(&rg->r[best], &c);
}

void gfx_region_add_region(gfx_region *rg, const gfx_region *src, const gfx_rect *bounds)
{
	for (uint32_t i = 0; i < src->n; i++)
		gfx_region_add(rg, &src->r[i], bounds);
}

uint64_t gfx_region_area(const gfx_region *rg)
{
	uint64_t a = 0;
	for (uint32_t i = 0; i < rg->n; i++)
		a += area(&rg->r[i]);
	return a;
}

gfx_rect gfx_region_bounds(const gfx_region *rg)
{
	gfx_rect b = { 0, 0, 0, 0 };
	for (uint32_t i = 0; i < rg->n; i++)
		b = gfx_rect_union(&b, &rg->r[i]);
	return b;
}
