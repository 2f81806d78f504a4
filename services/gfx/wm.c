/* wm.c: the proxy's window manager.
 *
 * An app has one surface; the windows it declares (set_windows) are
 * sub-rects of it, each shown as an overlay of its own: framed in the
 * container's colour, with a title bar for top-level windows, in the
 * taskbar, movable, raised, minimised and closed here. Moving a window
 * only moves its overlay: the app's own layout (its X screen) stays as
 * it is, so input maps back to the surface by the window's offset alone,
 * and a pop-up keeps its place relative to the window it belongs to.
 *
 * The viewer's pointer goes through gfx_wm_pointer() first: presses on a
 * title bar, its buttons or the taskbar stay here; presses in a window's
 * content focus and raise it and reach its app; while a button is held
 * the window pressed keeps the pointer (a drag, a menu). */
#include <stdio.h>
#include <string.h>

#include "wm.h"

#define MIN_VISIBLE 32 /* pixels of a moved window's frame kept on the desktop */

void gfx_wm_init(gfx_wm *wm, gfx_compositor *comp)
{
	memset(wm, 0, sizeof(*wm));
	wm->comp = comp;
}

gfx_window *gfx_wm_find(gfx_wm *wm, uint32_t ov)
{
	for (size_t i = 0; ov && i < GFX_OVERLAYS_MAX; i++)
		if (wm->win[i].ov == ov)
			return &wm->win[i];
	return NULL;
}

static gfx_window *find_wid(gfx_wm *wm, const void *owner, uint32_t wid)
{
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (wm->win[i].ov && wm->win[i].owner == owner && wm->win[i].wid == wid)
			return &wm->win[i];
	return NULL;
}

static gfx_window *free_slot(gfx_wm *wm)
{
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (!wm->win[i].ov)
			return &wm->win[i];
	return NULL;
}

static void damage_taskbar(gfx_wm *wm)
{
	gfx_rect tb = gfx_comp_taskbar(wm->comp), d = { 0, 0, (int32_t)wm->comp->width, (int32_t)wm->comp->height };
	gfx_region_add(&wm->comp->damage, &tb, &d);
}

static void set_title(gfx_overlay *o, const char *caller, const char *title)
{
	/* The container's name first, from the proxy, whatever the app calls
	 * its window. */
	if (title && *title)
		snprintf(o->title, sizeof(o->title), "[%s] %s", caller, title);
	else
		snprintf(o->title, sizeof(o->title), "[%s]", caller);
}

static int add_window(gfx_wm *wm, void *owner, gfx_surface *s, int32_t x, int32_t y, uint32_t border,
		      gfx_window **ret)
{
	gfx_window *w = free_slot(wm);
	if (!w)
		return GFX_E_LIMIT;
	uint32_t ov;
	int r = gfx_comp_add(wm->comp, s, x, y, border, 0, 0, &ov);
	if (r)
		return r;
	*w = (gfx_window){ .ov = ov, .owner = owner };
	gfx_comp_find(wm->comp, ov)->owner = owner;
	*ret = w;
	return 0;
}

int gfx_wm_add(gfx_wm *wm, void *owner, gfx_surface *s, int32_t x, int32_t y, uint32_t border,
	       const char *caller, uint32_t *ret_ov)
{
	gfx_window *w;
	int r = add_window(wm, owner, s, x, y, border, &w);
	if (r)
		return r;
	gfx_overlay *o = gfx_comp_find(wm->comp, w->ov);
	o->titled = true;
	set_title(o, caller, NULL);
	damage_taskbar(wm);
	if (ret_ov)
		*ret_ov = w->ov;
	return 0;
}

static void drop(gfx_wm *wm, gfx_window *w)
{
	if (wm->focus_ov == w->ov)
		wm->focus_ov = 0;
	if (wm->grab_ov == w->ov) {
		wm->grab_ov = 0;
		wm->mode = GFX_WM_IDLE;
	}
	gfx_comp_remove(wm->comp, w->ov);
	*w = (gfx_window){ 0 };
	damage_taskbar(wm);
}

void gfx_wm_remove_owner(gfx_wm *wm, void *owner)
{
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (wm->win[i].ov && wm->win[i].owner == owner)
			drop(wm, &wm->win[i]);
}

size_t gfx_wm_windows(const gfx_wm *wm, const void *owner, uint32_t *ovs, size_t max)
{
	size_t n = 0;
	/* Runs on every serve: the stack alone, no table walk. */
	for (uint32_t k = 0; k < wm->comp->n_ov && n < max; k++)
		if (wm->comp->ov[k]->owner == owner)
			ovs[n++] = wm->comp->ov[k]->id;
	return n;
}

int gfx_wm_set_windows(gfx_wm *wm, void *owner, gfx_surface *s, int32_t origin_x, int32_t origin_y,
		       uint32_t border, const char *caller, const gfx_window_decl *d, size_t n)
{
	gfx_window *f = gfx_wm_find(wm, wm->focus_ov);
	bool had_focus = f && f->owner == owner;
	/* Windows the app no longer has go first, making room. */
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++) {
		gfx_window *w = &wm->win[i];
		bool keep = false;
		for (size_t k = 0; w->ov && w->owner == owner && k < n; k++)
			keep |= d[k].id == w->wid;
		if (w->ov && w->owner == owner && !keep)
			drop(wm, w);
	}
	/* Top-level windows before pop-ups, which sit relative to them. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < n; k++) {
			if (d[k].popup != (pass == 1))
				continue;
			gfx_window *w = find_wid(wm, owner, d[k].id);
			gfx_window *p = d[k].popup && d[k].parent ? find_wid(wm, owner, d[k].parent) : NULL;
			if (!w) {
				int32_t x = origin_x + d[k].r.x, y = origin_y + d[k].r.y;
				gfx_overlay *po = p ? gfx_comp_find(wm->comp, p->ov) : NULL;
				if (po) {
					x = po->x + d[k].r.x - po->src.x;
					y = po->y + d[k].r.y - po->src.y;
				}
				int r = add_window(wm, owner, s, x, y, border, &w);
				if (r)
					return r;
				w->wid = d[k].id;
				if (po)
					gfx_comp_set_hidden(wm->comp, w->ov, po->hidden);
			}
			gfx_overlay *o = gfx_comp_find(wm->comp, w->ov);
			bool titled = !d[k].popup;
			w->popup = d[k].popup;
			w->parent_ov = p ? p->ov : 0;
			if (memcmp(&o->src, &d[k].r, sizeof(o->src)) != 0)
				gfx_comp_set_src(wm->comp, w->ov, &d[k].r);
			char old[sizeof(o->title)];
			memcpy(old, o->title, sizeof(old));
			set_title(o, caller, d[k].title);
			if (o->titled != titled || strcmp(old, o->title) != 0) {
				gfx_comp_damage_frame(wm->comp, w->ov);
				o->titled = titled;
				gfx_comp_damage_frame(wm->comp, w->ov);
				damage_taskbar(wm);
			}
		}
	/* The focused app's focused window went (its whole-surface window,
	 * replaced by the ones it declared): its topmost window takes over. */
	if (had_focus && !wm->focus_ov)
		for (uint32_t k = wm->comp->n_ov; k-- > 0;)
			if (wm->comp->ov[k]->owner == owner && wm->comp->ov[k]->titled && !wm->comp->ov[k]->hidden) {
				gfx_wm_focus(wm, wm->comp->ov[k]->id);
				break;
			}
	return 0;
}

static void raise_with_popups(gfx_wm *wm, uint32_t ov)
{
	gfx_comp_raise(wm->comp, ov);
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (wm->win[i].ov && wm->win[i].parent_ov == ov)
			gfx_comp_raise(wm->comp, wm->win[i].ov);
}

static void set_hidden(gfx_wm *wm, uint32_t ov, bool hidden)
{
	gfx_comp_set_hidden(wm->comp, ov, hidden);
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (wm->win[i].ov && wm->win[i].parent_ov == ov)
			gfx_comp_set_hidden(wm->comp, wm->win[i].ov, hidden);
	damage_taskbar(wm);
}

/* A pop-up's focus is its parent's: keys go to the top-level window. */
static uint32_t top_level(gfx_wm *wm, uint32_t ov)
{
	gfx_window *w = gfx_wm_find(wm, ov);
	return w && w->popup && w->parent_ov && gfx_wm_find(wm, w->parent_ov) ? w->parent_ov : ov;
}

static void mark_focus(gfx_wm *wm, uint32_t ov)
{
	gfx_overlay *old = gfx_comp_find(wm->comp, wm->focus_ov), *o = gfx_comp_find(wm->comp, ov);
	/* Title bars show the focus: redraw both. */
	if (old) {
		old->focused = false;
		gfx_comp_damage_frame(wm->comp, old->id);
	}
	if (o) {
		o->focused = true;
		gfx_comp_damage_frame(wm->comp, o->id);
	}
	wm->focus_ov = o ? ov : 0;
	damage_taskbar(wm);
}

void gfx_wm_focus(gfx_wm *wm, uint32_t ov)
{
	ov = top_level(wm, ov);
	if (!gfx_wm_find(wm, ov))
		return;
	gfx_overlay *o = gfx_comp_find(wm->comp, ov);
	if (o->hidden)
		set_hidden(wm, ov, false);
	raise_with_popups(wm, ov);
	mark_focus(wm, ov);
}

void gfx_wm_minimise(gfx_wm *wm, uint32_t ov)
{
	ov = top_level(wm, ov);
	if (!gfx_wm_find(wm, ov))
		return;
	set_hidden(wm, ov, true);
	if (wm->focus_ov == ov)
		mark_focus(wm, 0);
}

void gfx_wm_move(gfx_wm *wm, uint32_t ov, int32_t x, int32_t y)
{
	gfx_overlay *o = gfx_comp_find(wm->comp, ov);
	if (!o)
		return;
	gfx_compositor *c = wm->comp;
	int32_t b = (int32_t)c->border_px, t = o->titled ? (int32_t)c->title_px : 0;
	int32_t bottom = (int32_t)c->height - (int32_t)gfx_comp_taskbar(c).h;
	/* The title bar stays on the desktop, above the taskbar, and some of
	 * the frame stays in sight left and right: a window can always be
	 * grabbed again. */
	if (y - b - t < 0)
		y = b + t;
	if (y - b > bottom - MIN_VISIBLE / 2)
		y = bottom - MIN_VISIBLE / 2 + b;
	if (x + o->src.w + b < MIN_VISIBLE)
		x = MIN_VISIBLE - o->src.w - b;
	if (x - b > (int32_t)c->width - MIN_VISIBLE)
		x = (int32_t)c->width - MIN_VISIBLE + b;
	int32_t dx = x - o->x, dy = y - o->y;
	gfx_comp_move(c, ov, x, y);
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++) {
		gfx_overlay *p = wm->win[i].ov && wm->win[i].parent_ov == ov ? gfx_comp_find(c, wm->win[i].ov) : NULL;
		if (p)
			gfx_comp_move(c, p->id, p->x + dx, p->y + dy);
	}
}

static size_t act(gfx_wm_action *out, size_t n, int kind, const gfx_window *w)
{
	out[n] = (gfx_wm_action){ .kind = kind, .owner = w ? w->owner : NULL, .wid = w ? w->wid : 0 };
	return n + 1;
}

static size_t focus(gfx_wm *wm, uint32_t ov, gfx_wm_action *out, size_t n)
{
	uint32_t before = wm->focus_ov;
	gfx_wm_focus(wm, ov);
	if (wm->focus_ov == before)
		return n;
	return act(out, n, GFX_WM_ACT_FOCUS, gfx_wm_find(wm, wm->focus_ov));
}

/* The pointer in window w's surface coordinates. */
static size_t deliver(gfx_wm *wm, gfx_window *w, uint8_t buttons, int32_t x, int32_t y, gfx_wm_action *out,
		      size_t n)
{
	gfx_overlay *o = gfx_comp_find(wm->comp, w->ov);
	n = act(out, n, GFX_WM_ACT_POINTER, w);
	out[n - 1].x = x - o->x + o->src.x;
	out[n - 1].y = y - o->y + o->src.y;
	out[n - 1].buttons = buttons;
	return n;
}

/* After a minimise, the topmost visible titled window takes the focus. */
static size_t refocus(gfx_wm *wm, gfx_wm_action *out, size_t n)
{
	for (uint32_t k = wm->comp->n_ov; k-- > 0;) {
		gfx_overlay *o = wm->comp->ov[k];
		if (!o->hidden && o->titled && gfx_wm_find(wm, o->id))
			return focus(wm, o->id, out, n);
	}
	return act(out, n, GFX_WM_ACT_FOCUS, NULL);
}

size_t gfx_wm_pointer(gfx_wm *wm, uint8_t buttons, int32_t x, int32_t y, gfx_wm_action *out)
{
	bool pressed = buttons != 0 && wm->buttons == 0;
	size_t n = 0;
	uint32_t id;
	gfx_window *g = gfx_wm_find(wm, wm->grab_ov);
	wm->buttons = buttons;
	if (wm->mode != GFX_WM_IDLE && !g)
		wm->mode = GFX_WM_IDLE;
	switch (wm->mode) {
	case GFX_WM_DRAG:
		gfx_wm_move(wm, g->ov, x - wm->grab_dx, y - wm->grab_dy);
		if (!buttons)
			wm->mode = GFX_WM_IDLE;
		return 0;
	case GFX_WM_GRAB:
		/* The window pressed keeps the pointer until the last button
		 * goes up, wherever it is. */
		n = deliver(wm, g, buttons, x, y, out, n);
		if (!buttons)
			wm->mode = GFX_WM_IDLE;
		return n;
	case GFX_WM_BUTTON:
		if (buttons)
			return 0;
		wm->mode = GFX_WM_IDLE;
		/* A button acts when released over itself, as everywhere. */
		if (gfx_wm_hit(wm->comp, x, y, &id) != wm->grab_part || id != g->ov)
			return 0;
		if (wm->grab_part == GFX_PART_CLOSE)
			return act(out, n, GFX_WM_ACT_CLOSE, gfx_wm_find(wm, top_level(wm, g->ov)));
		gfx_wm_minimise(wm, g->ov);
		return wm->focus_ov ? 0 : refocus(wm, out, n);
	}
	gfx_wm_part part = gfx_wm_hit(wm->comp, x, y, &id);
	gfx_window *w = gfx_wm_find(wm, id);
	if (!pressed) {
		/* Motion: the focused app sees the pointer over its windows only. */
		gfx_window *f = gfx_wm_find(wm, wm->focus_ov);
		if (part == GFX_PART_CONTENT && w && f && w->owner == f->owner)
			n = deliver(wm, w, buttons, x, y, out, n);
		return n;
	}
	if (!w)
		return 0;
	gfx_overlay *o = gfx_comp_find(wm->comp, w->ov);
	switch (part) {
	case GFX_PART_TASKBAR:
		return focus(wm, w->ov, out, n);
	case GFX_PART_TITLE:
		n = focus(wm, w->ov, out, n);
		wm->mode = GFX_WM_DRAG;
		wm->grab_ov = w->ov;
		wm->grab_dx = x - o->x;
		wm->grab_dy = y - o->y;
		return n;
	case GFX_PART_MINIMISE:
	case GFX_PART_CLOSE:
		wm->mode = GFX_WM_BUTTON;
		wm->grab_ov = w->ov;
		wm->grab_part = part;
		return 0;
	case GFX_PART_CONTENT:
		n = focus(wm, w->ov, out, n);
		wm->mode = GFX_WM_GRAB;
		wm->grab_ov = w->ov;
		return deliver(wm, w, buttons, x, y, out, n);
	case GFX_PART_BORDER:
		return focus(wm, w->ov, out, n);
	default:
		return 0;
	}
}
