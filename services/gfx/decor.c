/* decor.c: what the compositor draws itself besides borders: a title bar
 * above each top-level window (its container's colour, "[container]
 * title", minimise and close buttons) and the taskbar along the bottom,
 * which lists the windows and their containers and lies over everything.
 *
 * All of it is outside every app's surface and drawn after the content,
 * so an app can neither paint over it nor cover it; the text comes from
 * font.c (printable ASCII only). Hit testing uses the same geometry, so
 * what a viewer clicks is what it sees. */
#include <string.h>

#include "font.h"
#include "wm.h"

#define OPAQUE 0xFF000000u
#define TASKBAR_BG 0x202020u
#define ENTRY_BG 0x3a3a3au
#define ENTRY_FOCUSED_BG 0x5c5c5cu
#define ENTRY_HIDDEN_BG 0x2a2a2au
#define ENTRY_TEXT 0xe8e8e8u
#define ENTRY_HIDDEN_TEXT 0x8c8c8cu
#define SWATCH_W 6

static void fill(gfx_compositor *c, const gfx_rect *area, const gfx_rect *clip, uint32_t rgb)
{
	gfx_rect d = { 0, 0, (int32_t)c->width, (int32_t)c->height }, r, r2;
	if (!gfx_rect_intersect(area, clip, &r) || !gfx_rect_intersect(&r, &d, &r2))
		return;
	for (int32_t y = r2.y; y < r2.y + r2.h; y++) {
		uint32_t *p = c->fb + (size_t)y * c->width + r2.x;
		for (int32_t x = 0; x < r2.w; x++)
			p[x] = rgb | OPAQUE;
	}
}

/* Text clipped to both the area it belongs to and the render clip. */
static void text(gfx_compositor *c, const gfx_rect *area, const gfx_rect *clip, int32_t x, int32_t y,
		 const char *s, uint32_t rgb)
{
	gfx_rect d = { 0, 0, (int32_t)c->width, (int32_t)c->height }, r, r2;
	if (!gfx_rect_intersect(area, clip, &r) || !gfx_rect_intersect(&r, &d, &r2))
		return;
	gfx_font_draw(c->fb, c->width, &r2, x, y, s, rgb);
}

uint32_t gfx_wm_text_colour(uint32_t rgb)
{
	uint32_t r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
	return r * 299 + g * 587 + b * 114 > 150000 ? 0x000000u : 0xFFFFFFu;
}

gfx_rect gfx_wm_title_rect(const gfx_compositor *c, const gfx_overlay *o)
{
	if (!o->titled || !c->title_px)
		return (gfx_rect){ 0, 0, 0, 0 };
	gfx_rect f = gfx_overlay_frame(c, o);
	return (gfx_rect){ f.x, f.y, f.w, (int32_t)c->title_px };
}

gfx_rect gfx_wm_button_rect(const gfx_compositor *c, const gfx_overlay *o, gfx_wm_part which)
{
	gfx_rect t = gfx_wm_title_rect(c, o);
	int32_t s = t.h - 4;
	if (t.h == 0 || s < 4 || t.w < 2 * s + 8)
		return (gfx_rect){ 0, 0, 0, 0 };
	int32_t x = t.x + t.w - 2 - s; /* close at the right end */
	if (which == GFX_PART_MINIMISE)
		x -= s + 2;
	else if (which != GFX_PART_CLOSE)
		return (gfx_rect){ 0, 0, 0, 0 };
	return (gfx_rect){ x, t.y + 2, s, s };
}

static uint32_t darker(uint32_t rgb)
{
	return (rgb >> 1) & 0x7F7F7Fu;
}

void gfx_wm_draw_title(gfx_compositor *c, const gfx_overlay *o, const gfx_rect *clip)
{
	gfx_rect t = gfx_wm_title_rect(c, o), r;
	if (!gfx_rect_intersect(&t, clip, &r))
		return;
	uint32_t ink = gfx_wm_text_colour(o->border);
	/* The focused window's title in full contrast, the others' halfway
	 * to the bar's colour: the bar itself stays the container's. */
	if (!o->focused)
		ink = ((ink >> 1) & 0x7F7F7Fu) + ((o->border >> 1) & 0x7F7F7Fu);
	fill(c, &t, clip, o->border);
	gfx_rect mini = gfx_wm_button_rect(c, o, GFX_PART_MINIMISE);
	gfx_rect close = gfx_wm_button_rect(c, o, GFX_PART_CLOSE);
	/* The text stops short of the buttons. */
	gfx_rect room = { t.x + 4, t.y, (mini.w ? mini.x : t.x + t.w) - t.x - 6, t.h };
	int32_t ty = t.y + (t.h - GFX_FONT_H) / 2;
	text(c, &room, clip, room.x, ty, o->title, ink);
	const gfx_rect *b[2] = { &mini, &close };
	const char *glyph[2] = { "_", "x" };
	for (int i = 0; i < 2; i++) {
		if (!b[i]->w)
			continue;
		fill(c, b[i], clip, darker(o->border));
		text(c, b[i], clip, b[i]->x + (b[i]->w - GFX_FONT_W) / 2, b[i]->y + (b[i]->h - GFX_FONT_H) / 2,
		     glyph[i], 0xFFFFFFu);
	}
}

size_t gfx_wm_taskbar_entries(const gfx_compositor *c, uint32_t *ids, size_t max)
{
	size_t n = 0;
	for (uint32_t k = 0; k < c->n_ov && n < max; k++) {
		if (!c->ov[k]->titled)
			continue;
		/* Insertion by id: the order windows came in, whatever the stacking. */
		size_t i = n++;
		while (i > 0 && ids[i - 1] > c->ov[k]->id) {
			ids[i] = ids[i - 1];
			i--;
		}
		ids[i] = c->ov[k]->id;
	}
	return n;
}

gfx_rect gfx_wm_taskbar_entry(const gfx_compositor *c, size_t index, size_t n)
{
	gfx_rect tb = gfx_comp_taskbar(c);
	if (tb.h < 6 || n == 0 || index >= n)
		return (gfx_rect){ 0, 0, 0, 0 };
	int32_t w = (tb.w - 2) / (int32_t)n;
	if (w > GFX_TASK_ENTRY_W)
		w = GFX_TASK_ENTRY_W;
	if (w < 8)
		return (gfx_rect){ 0, 0, 0, 0 };
	return (gfx_rect){ 2 + (int32_t)index * w, tb.y + 2, w - 2, tb.h - 4 };
}

void gfx_wm_draw_taskbar(gfx_compositor *c, const gfx_rect *clip)
{
	gfx_rect tb = gfx_comp_taskbar(c), r;
	if (!gfx_rect_intersect(&tb, clip, &r))
		return;
	fill(c, &tb, clip, TASKBAR_BG);
	uint32_t ids[GFX_OVERLAYS_MAX];
	size_t n = gfx_wm_taskbar_entries(c, ids, GFX_OVERLAYS_MAX);
	for (size_t i = 0; i < n; i++) {
		gfx_rect e = gfx_wm_taskbar_entry(c, i, n);
		const gfx_overlay *o = gfx_comp_find(c, ids[i]);
		if (!e.w || !o)
			continue;
		fill(c, &e, clip, o->hidden ? ENTRY_HIDDEN_BG : o->focused ? ENTRY_FOCUSED_BG : ENTRY_BG);
		gfx_rect sw = { e.x, e.y, SWATCH_W, e.h };
		fill(c, &sw, clip, o->border);
		gfx_rect room = { e.x + SWATCH_W + 3, e.y, e.w - SWATCH_W - 5, e.h };
		text(c, &room, clip, room.x, e.y + (e.h - GFX_FONT_H) / 2, o->title,
		     o->hidden ? ENTRY_HIDDEN_TEXT : ENTRY_TEXT);
	}
}

static bool inside(const gfx_rect *r, int32_t x, int32_t y)
{
	return (int64_t)x >= r->x && (int64_t)x < (int64_t)r->x + r->w && (int64_t)y >= r->y &&
	       (int64_t)y < (int64_t)r->y + r->h;
}

gfx_wm_part gfx_wm_hit(const gfx_compositor *c, int32_t x, int32_t y, uint32_t *ret_id)
{
	*ret_id = 0;
	gfx_rect tb = gfx_comp_taskbar(c);
	if (inside(&tb, x, y)) {
		uint32_t ids[GFX_OVERLAYS_MAX];
		size_t n = gfx_wm_taskbar_entries(c, ids, GFX_OVERLAYS_MAX);
		for (size_t i = 0; i < n; i++) {
			gfx_rect e = gfx_wm_taskbar_entry(c, i, n);
			if (inside(&e, x, y))
				*ret_id = ids[i];
		}
		return GFX_PART_TASKBAR;
	}
	for (uint32_t k = c->n_ov; k-- > 0;) {
		const gfx_overlay *o = c->ov[k];
		gfx_rect f = gfx_overlay_frame(c, o);
		if (o->hidden || !inside(&f, x, y))
			continue;
		*ret_id = o->id;
		gfx_rect ct = { o->x, o->y, o->src.w, o->src.h }, t = gfx_wm_title_rect(c, o);
		gfx_rect mini = gfx_wm_button_rect(c, o, GFX_PART_MINIMISE);
		gfx_rect close = gfx_wm_button_rect(c, o, GFX_PART_CLOSE);
		if (inside(&ct, x, y))
			return GFX_PART_CONTENT;
		if (inside(&close, x, y))
			return GFX_PART_CLOSE;
		if (inside(&mini, x, y))
			return GFX_PART_MINIMISE;
		if (inside(&t, x, y))
			return GFX_PART_TITLE;
		return GFX_PART_BORDER;
	}
	return GFX_PART_NONE;
}
