/* compose.c: the overlay compositor.
 *
 * The desktop is one BGRX buffer. Each client surface is an overlay at a
 * position, stacked bottom to top, drawn through a per-pixel blend stage
 * (colour key, then alpha) and framed by a border the compositor paints
 * after the content: the client only ever writes its own surface, which
 * maps inside the frame, so it can neither paint nor cover its border.
 * Only damaged desktop rects are recomposited; with no damage render()
 * returns at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gfx.h"
#include "wm.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define OPAQUE 0xFF000000u

int gfx_comp_new(uint32_t width, uint32_t height, uint32_t background, uint32_t border_px,
		 gfx_compositor **ret)
{
	size_t bytes;
	int r = gfx_check_size(width, height, &bytes);
	if (r)
		return r;
	if (border_px > 64)
		return GFX_E_INVALID;
	gfx_compositor *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fb = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (!c->fb) {
		free(c);
		return -ENOMEM;
	}
	c->width = width;
	c->height = height;
	c->background = background | OPAQUE;
	c->border_px = border_px;
	c->next_id = 1;
	gfx_comp_damage_all(c);
	*ret = c;
	return 0;
}

gfx_compositor *gfx_comp_free(gfx_compositor *c)
{
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < c->n_ov; i++)
		free(c->ov[i]);
	free(c->fb);
	free(c);
	return NULL;
}

int gfx_comp_resize(gfx_compositor *c, uint32_t width, uint32_t height)
{
	size_t bytes;
	int r = gfx_check_size(width, height, &bytes);
	if (r)
		return r;
	uint32_t *fb = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	if (!fb)
		return -ENOMEM;
	/* Overlays keep their places; what falls outside is clipped, as
	 * rendering clips everything to the desktop. */
	free(c->fb);
	c->fb = fb;
	c->width = width;
	c->height = height;
	gfx_comp_damage_all(c);
	return 0;
}

static gfx_rect desktop(const gfx_compositor *c)
{
	return (gfx_rect){ 0, 0, (int32_t)c->width, (int32_t)c->height };
}

static int find_index(const gfx_compositor *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_ov; i++)
		if (c->ov[i]->id == id)
			return (int)i;
	return -1;
}

gfx_overlay *gfx_comp_find(gfx_compositor *c, uint32_t id)
{
	int i = find_index(c, id);
	return i < 0 ? NULL : c->ov[i];
}

static gfx_rect content(const gfx_overlay *o)
{
	return (gfx_rect){ o->x, o->y, o->src.w, o->src.h };
}

static int32_t title_h(const gfx_compositor *c, const gfx_overlay *o)
{
	return o->titled ? (int32_t)c->title_px : 0;
}

gfx_rect gfx_overlay_frame(const gfx_compositor *c, const gfx_overlay *o)
{
	int32_t b = (int32_t)c->border_px, t = title_h(c, o);
	return (gfx_rect){ o->x - b, o->y - b - t, o->src.w + 2 * b, o->src.h + 2 * b + t };
}

gfx_rect gfx_comp_taskbar(const gfx_compositor *c)
{
	uint32_t h = c->taskbar_px < c->height ? c->taskbar_px : 0;
	return (gfx_rect){ 0, (int32_t)(c->height - h), h ? (int32_t)c->width : 0, (int32_t)h };
}

static void damage_frame(gfx_compositor *c, const gfx_overlay *o)
{
	gfx_rect f = gfx_overlay_frame(c, o), d = desktop(c);
	gfx_region_add(&c->damage, &f, &d);
}

/* Positions are limited so that frame arithmetic stays far from int32
 * overflow whatever a caller passes. */
static bool position_ok(int32_t x, int32_t y)
{
	return x > -(int32_t)GFX_DIM_MAX * 2 && x < (int32_t)GFX_DIM_MAX * 2 &&
	       y > -(int32_t)GFX_DIM_MAX * 2 && y < (int32_t)GFX_DIM_MAX * 2;
}

int gfx_comp_add(gfx_compositor *c, gfx_surface *s, int32_t x, int32_t y, uint32_t border_rgb,
		 uint32_t blend, uint32_t key, uint32_t *ret_id)
{
	if (!s || !position_ok(x, y) || (blend & ~(GFX_BLEND_ALPHA | GFX_BLEND_KEY)))
		return GFX_E_INVALID;
	if (c->n_ov >= GFX_OVERLAYS_MAX)
		return GFX_E_LIMIT;
	gfx_overlay *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (gfx_overlay){ .id = c->next_id++, .surface = s, .x = x, .y = y, .seen_x = x, .seen_y = y, .blend = blend,
			    .key = key & 0xFFFFFFu, .border = border_rgb & 0xFFFFFFu,
			    .src = { 0, 0, (int32_t)s->width, (int32_t)s->height } };
	c->ov[c->n_ov++] = o;
	damage_frame(c, o);
	if (ret_id)
		*ret_id = o->id;
	return 0;
}

int gfx_comp_remove(gfx_compositor *c, uint32_t id)
{
	int i = find_index(c, id);
	if (i < 0)
		return GFX_E_NO_CLIENT;
	gfx_overlay *o = c->ov[i];
	damage_frame(c, o);
	memmove(&c->ov[i], &c->ov[i + 1], (c->n_ov - (uint32_t)i - 1) * sizeof(c->ov[0]));
	c->n_ov--;
	free(o);
	return 0;
}

int gfx_comp_move(gfx_compositor *c, uint32_t id, int32_t x, int32_t y)
{
	gfx_overlay *o = gfx_comp_find(c, id);
	if (!o)
		return GFX_E_NO_CLIENT;
	if (!position_ok(x, y))
		return GFX_E_INVALID;
	damage_frame(c, o);
	o->x = x;
	o->y = y;
	damage_frame(c, o);
	return 0;
}

int gfx_comp_raise(gfx_compositor *c, uint32_t id)
{
	int i = find_index(c, id);
	if (i < 0)
		return GFX_E_NO_CLIENT;
	gfx_overlay *o = c->ov[i];
	memmove(&c->ov[i], &c->ov[i + 1], (c->n_ov - (uint32_t)i - 1) * sizeof(c->ov[0]));
	c->ov[c->n_ov - 1] = o;
	damage_frame(c, o);
	return 0;
}

int gfx_comp_set_src(gfx_compositor *c, uint32_t id, const gfx_rect *src)
{
	gfx_overlay *o = gfx_comp_find(c, id);
	gfx_rect surf, r;
	if (!o)
		return GFX_E_NO_CLIENT;
	surf = (gfx_rect){ 0, 0, (int32_t)o->surface->width, (int32_t)o->surface->height };
	if (!gfx_rect_intersect(src, &surf, &r))
		return GFX_E_INVALID;
	damage_frame(c, o);
	o->src = r;
	damage_frame(c, o);
	return 0;
}

int gfx_comp_set_hidden(gfx_compositor *c, uint32_t id, bool hidden)
{
	gfx_overlay *o = gfx_comp_find(c, id);
	if (!o)
		return GFX_E_NO_CLIENT;
	o->hidden = hidden;
	damage_frame(c, o);
	return 0;
}

void gfx_comp_damage_frame(gfx_compositor *c, uint32_t id)
{
	gfx_overlay *o = gfx_comp_find(c, id);
	if (o)
		damage_frame(c, o);
}

int gfx_comp_damage_surface(gfx_compositor *c, uint32_t id, const gfx_rect *rects, size_t n)
{
	gfx_overlay *o = gfx_comp_find(c, id);
	if (!o)
		return GFX_E_NO_CLIENT;
	gfx_rect d = desktop(c);
	for (size_t i = 0; i < n; i++) {
		gfx_rect r;
		if (o->hidden || !gfx_rect_intersect(&rects[i], &o->src, &r))
			continue;
		r.x += o->x - o->src.x;
		r.y += o->y - o->src.y;
		gfx_region_add(&c->damage, &r, &d);
	}
	return 0;
}

void gfx_comp_damage_all(gfx_compositor *c)
{
	gfx_rect d = desktop(c);
	gfx_region_clear(&c->damage);
	gfx_region_add(&c->damage, &d, &d);
}

/* dst over src with a 0..255 alpha, per channel, rounded: the usual
 * (x + 128 + ((x + 128) >> 8)) >> 8 is an exact x / 255. */
static inline uint32_t mix(uint32_t d, uint32_t s, uint32_t a)
{
	uint32_t rb = (s & 0xFF00FFu) * a + (d & 0xFF00FFu) * (255u - a) + 0x800080u;
	uint32_t g = (s & 0x00FF00u) * a + (d & 0x00FF00u) * (255u - a) + 0x008000u;
	rb = ((rb + ((rb >> 8) & 0xFF00FFu)) >> 8) & 0xFF00FFu;
	g = ((g + ((g >> 8) & 0x00FF00u)) >> 8) & 0x00FF00u;
	return rb | g;
}

uint32_t gfx_blend_pixel(uint32_t dst, uint32_t src, uint32_t blend, uint32_t key)
{
	if ((blend & GFX_BLEND_KEY) && (src & 0xFFFFFFu) == (key & 0xFFFFFFu))
		return dst;
	if (blend & GFX_BLEND_ALPHA) {
		uint32_t a = src >> 24;
		if (a == 0)
			return dst;
		if (a == 255)
			return src | OPAQUE;
		return mix(dst, src, a) | OPAQUE;
	}
	return src | OPAQUE;
}

static void fill(gfx_compositor *c, const gfx_rect *r, uint32_t px)
{
	for (int32_t y = r->y; y < r->y + r->h; y++) {
		uint32_t *d = c->fb + (size_t)y * c->width + r->x;
		for (int32_t x = 0; x < r->w; x++)
			d[x] = px;
	}
}

/* A row of non-premultiplied alpha over the desktop: mix() for every
 * pixel, four at a time where SSE2 is there. Same formula, same bits. */
static void alpha_row(uint32_t *d, const uint32_t *sp, int32_t n)
{
	int32_t x = 0;
#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128(), full = _mm_set1_epi16(255), half = _mm_set1_epi16(128);
	const __m128i opaque = _mm_set1_epi32((int)OPAQUE);
	for (; x + 4 <= n; x += 4) {
		__m128i s = _mm_loadu_si128((const __m128i *)(sp + x));
		__m128i t = _mm_loadu_si128((const __m128i *)(d + x));
		__m128i out[2];
		for (int h = 0; h < 2; h++) {
			/* Two pixels as eight 16-bit channels; alpha in all four. */
			__m128i sw = h ? _mm_unpackhi_epi8(s, zero) : _mm_unpacklo_epi8(s, zero);
			__m128i dw = h ? _mm_unpackhi_epi8(t, zero) : _mm_unpacklo_epi8(t, zero);
			__m128i a = _mm_shufflehi_epi16(_mm_shufflelo_epi16(sw, 0xFF), 0xFF);
			/* s*a + d*(255-a) + 128 <= 65153: fits 16 bits unsigned. */
			__m128i v = _mm_add_epi16(_mm_add_epi16(_mm_mullo_epi16(sw, a),
								_mm_mullo_epi16(dw, _mm_sub_epi16(full, a))),
						  half);
			out[h] = _mm_srli_epi16(_mm_add_epi16(v, _mm_srli_epi16(v, 8)), 8);
		}
		_mm_storeu_si128((__m128i *)(d + x), _mm_or_si128(_mm_packus_epi16(out[0], out[1]), opaque));
	}
#endif
	/* mix() is exact at alpha 0 and 255 too, so no branches. */
	for (; x < n; x++)
		d[x] = mix(d[x], sp[x], sp[x] >> 24) | OPAQUE;
}

/* Draws the part of overlay o's content inside desktop rect clip. */
static void draw_content(gfx_compositor *c, const gfx_overlay *o, const gfx_rect *clip)
{
	gfx_rect ct = content(o), r;
	if (!gfx_rect_intersect(&ct, clip, &r))
		return;
	const gfx_surface *s = o->surface;
	for (int32_t y = r.y; y < r.y + r.h; y++) {
		uint32_t *d = c->fb + (size_t)y * c->width + r.x;
		const uint32_t *sp = s->pixels + (size_t)(y - o->y + o->src.y) * s->width + (r.x - o->x + o->src.x);
		if (o->blend == 0) {
			/* The common case: a straight copy the compiler vectorises. */
			for (int32_t x = 0; x < r.w; x++)
				d[x] = sp[x] | OPAQUE;
		} else if (o->blend == GFX_BLEND_ALPHA) {
			alpha_row(d, sp, r.w);
		} else {
			for (int32_t x = 0; x < r.w; x++)
				d[x] = gfx_blend_pixel(d[x], sp[x], o->blend, o->key);
		}
	}
	c->pixels_composited += (uint64_t)r.w * (uint64_t)r.h;
}

static void draw_border(gfx_compositor *c, const gfx_overlay *o, const gfx_rect *clip)
{
	if (c->border_px == 0)
		return;
	int32_t b = (int32_t)c->border_px;
	gfx_rect f = gfx_overlay_frame(c, o);
	gfx_rect strips[4] = {
		{ f.x, o->y - b, f.w, b },                 /* top */
		{ f.x, o->y + o->src.h, f.w, b },          /* bottom */
		{ f.x, o->y, b, o->src.h },                /* left */
		{ o->x + o->src.w, o->y, b, o->src.h },
	};
	for (int i = 0; i < 4; i++) {
		gfx_rect r;
		if (gfx_rect_intersect(&strips[i], clip, &r))
			fill(c, &r, o->border | OPAQUE);
	}
	/* The title bar lies above the top border, outside the surface too. */
	if (title_h(c, o))
		gfx_wm_draw_title(c, o, clip);
}

/* The usual damage is part of one client's content with nothing on top:
 * then a straight copy of that content is the whole answer, and the
 * background fill and the overlays underneath would only be overwritten.
 * Draws it and returns true in that case. */
static bool covered_by_opaque(gfx_compositor *c, const gfx_rect *clip)
{
	gfx_rect tb = gfx_comp_taskbar(c), r;
	if (gfx_rect_intersect(&tb, clip, &r))
		return false;
	for (uint32_t k = c->n_ov; k-- > 0;) {
		const gfx_overlay *o = c->ov[k];
		gfx_rect f = gfx_overlay_frame(c, o), ct = content(o);
		if (o->hidden || !gfx_rect_intersect(&f, clip, &r))
			continue;
		/* The topmost overlay touching the clip decides. */
		if (o->blend != 0 || !gfx_rect_intersect(&ct, clip, &r) || r.w != clip->w || r.h != clip->h)
			return false;
		draw_content(c, o, clip);
		return true;
	}
	return false;
}

static void render_rect(gfx_compositor *c, const gfx_rect *clip)
{
	if (covered_by_opaque(c, clip))
		return;
	fill(c, clip, c->background);
	for (uint32_t k = 0; k < c->n_ov; k++) {
		if (c->ov[k]->hidden)
			continue;
		draw_content(c, c->ov[k], clip);
		draw_border(c, c->ov[k], clip);
	}
	/* Last: no window covers the taskbar. */
	if (c->taskbar_px)
		gfx_wm_draw_taskbar(c, clip);
}

void gfx_comp_render(gfx_compositor *c, gfx_region *ret_out)
{
	if (ret_out)
		gfx_region_clear(ret_out);
	if (gfx_region_empty(&c->damage))
		return;
	gfx_rect tb = gfx_comp_taskbar(c);
	for (uint32_t i = 0; i < c->damage.n; i++) {
		gfx_rect clip = c->damage.r[i], bar;
		/* The part above the taskbar apart from the part in it, so that
		 * damage inside a window reaching down to the taskbar is still
		 * the straight copy of covered_by_opaque(). */
		if (tb.h && gfx_rect_intersect(&clip, &tb, &bar)) {
			render_rect(c, &bar);
			clip.h = tb.y - clip.y;
			if (clip.h <= 0)
				continue;
		}
		render_rect(c, &clip);
	}
	if (ret_out)
		*ret_out = c->damage;
	gfx_region_clear(&c->damage);
	c->renders++;
}

bool gfx_comp_hit(const gfx_compositor *c, int32_t x, int32_t y, uint32_t *ret_id,
		  int32_t *ret_lx, int32_t *ret_ly)
{
	gfx_rect tb = gfx_comp_taskbar(c), pt0 = { x, y, 1, 1 }, r0;
	if (gfx_rect_intersect(&tb, &pt0, &r0))
		return false;
	for (uint32_t k = c->n_ov; k-- > 0;) {
		const gfx_overlay *o = c->ov[k];
		gfx_rect f = gfx_overlay_frame(c, o), ct = content(o);
		gfx_rect pt = { x, y, 1, 1 }, r;
		if (o->hidden || !gfx_rect_intersect(&f, &pt, &r))
			continue;
		/* The topmost frame under the point owns it, even its border. */
		if (!gfx_rect_intersect(&ct, &pt, &r))
			return false;
		*ret_id = o->id;
		*ret_lx = x - o->x + o->src.x;
		*ret_ly = y - o->y + o->src.y;
		return true;
	}
	return false;
}

uint32_t gfx_border_colour_n(const char *caller, unsigned skip)
{
	/* Distinct, saturated labels in the spirit of Qubes' label colours. */
	static const uint32_t palette[] = { 0xE53935, 0xFB8C00, 0xFDD835, 0x43A047,
					    0x1E88E5, 0x8E24AA, 0x00ACC1, 0x6D4C41 };
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = caller ? caller : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return palette[(h + skip) % (sizeof(palette) / sizeof(palette[0]))];
}

uint32_t gfx_border_colour(const char *caller)
{
	return gfx_border_colour_n(caller, 0);
}
