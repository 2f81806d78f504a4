/* agent-windows.c: the app's windows, as the desktop agent reports them
 * to the graphics proxy (set_windows).
 *
 * The app's X server is its own, with no window manager, so its
 * top-level windows are the root's mapped children: XQueryTree gives
 * them bottom to top, and SubstructureNotify on the root says when to
 * look again. Each becomes a rectangle of the surface (the whole screen),
 * which the proxy frames and titles as a window of its own. An
 * override-redirect window (a menu, a tooltip) is a pop-up belonging to
 * the top-level window it lies over.
 *
 * The agent does the little a window manager must: a new top-level window
 * that would overlap another on the screen is moved to free space first,
 * with room between them for the proxy's frames and title bars
 * (their pixels share one screen, and the proxy shows each rectangle as
 * it is there); the focused window gets the X input focus and is raised;
 * closing sends WM_DELETE_WINDOW, or kills the window's client when it
 * does not take that message (as window managers do). */
#include <X11/Xatom.h>
#include <X11/Xutil.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-windows.h"
#include "gfx.h"

#define STEP 8    /* grid the placement search walks */
#define MARGIN 24 /* room left between windows for the proxy's frame and title bar */

typedef struct aw_win {
	Window id;
	int x, y, w, h;
	bool popup;
} aw_win;

struct aw_state {
	Display *dpy;
	Window root;
	uint32_t sw, sh;
	bool dirty;
	char *last;                   /* the JSON last reported */
	aw_win cur[GFX_WINDOWS_MAX];  /* what it listed */
	size_t n_cur;
	Window placed[64];            /* windows already placed once (a ring) */
	size_t n_placed;
	Atom wm_protocols, wm_delete, net_wm_name, utf8;
};

static int quiet(Display *dpy, XErrorEvent *e)
{
	return 0;
}

int aw_new(Display *dpy, uint32_t sw, uint32_t sh, aw_state **ret)
{
	aw_state *a = calloc(1, sizeof(*a));
	if (!a)
		return -1;
	a->dpy = dpy;
	a->root = DefaultRootWindow(dpy);
	a->sw = sw;
	a->sh = sh;
	a->dirty = true;
	a->wm_protocols = XInternAtom(dpy, "WM_PROTOCOLS", False);
	a->wm_delete = XInternAtom(dpy, "WM_DELETE_WINDOW", False);
	a->net_wm_name = XInternAtom(dpy, "_NET_WM_NAME", False);
	a->utf8 = XInternAtom(dpy, "UTF8_STRING", False);
	XSetErrorHandler(quiet);
	XSelectInput(dpy, a->root, SubstructureNotifyMask);
	XFlush(dpy);
	*ret = a;
	return 0;
}

void aw_free(aw_state *a)
{
	if (a)
		free(a->last);
	free(a);
}

void aw_event(aw_state *a, const XEvent *xe)
{
	switch (xe->type) {
	case CreateNotify:
	case DestroyNotify:
	case MapNotify:
	case UnmapNotify:
	case ConfigureNotify:
	case ReparentNotify:
	case GravityNotify:
	case CirculateNotify:
		a->dirty = true;
		break;
	case PropertyNotify:
		if (xe->xproperty.atom == XA_WM_NAME || xe->xproperty.atom == a->net_wm_name)
			a->dirty = true;
		break;
	}
}

static bool overlap(int ax, int ay, int aw, int ah, const aw_win *b)
{
	return ax < b->x + b->w && b->x < ax + aw && ay < b->y + b->h && b->y < ay + ah;
}

/* The same with b grown by the margin (placement only). */
static bool crowds(int ax, int ay, int aw, int ah, const aw_win *b)
{
	aw_win g = { b->id, b->x - MARGIN, b->y - MARGIN, b->w + 2 * MARGIN, b->h + 2 * MARGIN, b->popup };
	return overlap(ax, ay, aw, ah, &g);
}

static bool was_placed(aw_state *a, Window w)
{
	size_t n = a->n_placed < 64 ? a->n_placed : 64;
	for (size_t i = 0; i < n; i++)
		if (a->placed[i] == w)
			return true;
	a->placed[a->n_placed++ % 64] = w;
	return false;
}

/* A new top-level window over another: the first free spot on the
 * screen, if there is one. */
static void place(aw_state *a, aw_win *w, const aw_win *others, size_t n)
{
	bool hit = false;
	for (size_t i = 0; i < n; i++)
		hit |= !others[i].popup && overlap(w->x, w->y, w->w, w->h, &others[i]);
	if (!hit)
		return;
	for (int y = 0; y + w->h <= (int)a->sh; y += STEP)
		for (int x = 0; x + w->w <= (int)a->sw; x += STEP) {
			bool free_spot = true;
			for (size_t i = 0; free_spot && i < n; i++)
				free_spot = others[i].popup || !crowds(x, y, w->w, w->h, &others[i]);
			if (free_spot) {
				XMoveWindow(a->dpy, w->id, x, y);
				w->x = x;
				w->y = y;
				return;
			}
		}
}

/* A title, cut to the buffer (the proxy cuts it further anyway). */
static void copy_cut(char *out, size_t len, const char *in, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(out, in, n);
	out[n] = 0;
}

static void title_of(aw_state *a, Window w, char *out, size_t len)
{
	Atom type;
	int format;
	unsigned long n = 0, left;
	unsigned char *p = NULL;
	char *name = NULL;
	out[0] = 0;
	/* _NET_WM_NAME (UTF-8) first; the proxy shows ASCII and '?' for the rest. */
	if (XGetWindowProperty(a->dpy, w, a->net_wm_name, 0, 64, False, a->utf8, &type, &format, &n, &left, &p) ==
		    Success &&
	    p && type == a->utf8 && format == 8 && n > 0) {
		copy_cut(out, len, (const char *)p, n);
	} else if (XFetchName(a->dpy, w, &name) && name) {
		copy_cut(out, len, name, strlen(name));
	}
	if (p)
		XFree(p);
	if (name)
		XFree(name);
}

static struct json_object *list(aw_state *a)
{
	Window r, p, *kids = NULL;
	unsigned int nk = 0;
	struct json_object *arr = json_object_new_array();
	if (!arr || !XQueryTree(a->dpy, a->root, &r, &p, &kids, &nk))
		return arr;
	a->n_cur = 0;
	for (unsigned int i = 0; i < nk && a->n_cur < GFX_WINDOWS_MAX; i++) {
		XWindowAttributes at;
		if (!XGetWindowAttributes(a->dpy, kids[i], &at) || at.map_state != IsViewable || at.class == InputOnly)
			continue;
		aw_win w = { kids[i], at.x, at.y, at.width + 2 * at.border_width, at.height + 2 * at.border_width,
			     at.override_redirect != 0 };
		if (w.w <= 0 || w.h <= 0 || w.x >= (int)a->sw || w.y >= (int)a->sh || w.x + w.w <= 0 || w.y + w.h <= 0)
			continue;
		if (!w.popup) {
			XSelectInput(a->dpy, w.id, PropertyChangeMask);
			if (!was_placed(a, w.id))
				place(a, &w, a->cur, a->n_cur);
		}
		a->cur[a->n_cur++] = w;
	}
	if (kids)
		XFree(kids);
	for (size_t i = 0; i < a->n_cur; i++) {
		const aw_win *w = &a->cur[i];
		struct json_object *j = json_object_new_object();
		if (!j)
			continue;
		json_object_object_add(j, "id", json_object_new_int64((int64_t)w->id));
		json_object_object_add(j, "x", json_object_new_int(w->x));
		json_object_object_add(j, "y", json_object_new_int(w->y));
		json_object_object_add(j, "w", json_object_new_int(w->w));
		json_object_object_add(j, "h", json_object_new_int(w->h));
		if (w->popup) {
			/* It belongs to the topmost top-level window under it. */
			Window parent = 0;
			for (size_t k = i; k-- > 0;)
				if (!a->cur[k].popup && (!parent || overlap(w->x, w->y, w->w, w->h, &a->cur[k]))) {
					parent = a->cur[k].id;
					if (overlap(w->x, w->y, w->w, w->h, &a->cur[k]))
						break;
				}
			json_object_object_add(j, "popup", json_object_new_boolean(true));
			if (parent)
				json_object_object_add(j, "parent", json_object_new_int64((int64_t)parent));
		} else {
			char title[256];
			title_of(a, w->id, title, sizeof(title));
			json_object_object_add(j, "title", json_object_new_string(title));
		}
		json_object_array_add(arr, j);
	}
	return arr;
}

struct json_object *aw_changed(aw_state *a)
{
	if (!a->dirty)
		return NULL;
	a->dirty = false;
	struct json_object *arr = list(a);
	if (!arr)
		return NULL;
	const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	if (a->last && strcmp(a->last, s) == 0) {
		json_object_put(arr);
		return NULL;
	}
	free(a->last);
	a->last = strdup(s);
	return arr;
}

static const aw_win *known(aw_state *a, uint32_t wid)
{
	for (size_t i = 0; wid && i < a->n_cur; i++)
		if (a->cur[i].id == wid)
			return &a->cur[i];
	return NULL;
}

void aw_focus(aw_state *a, uint32_t wid)
{
	const aw_win *w = known(a, wid);
	if (!w || w->popup)
		return;
	XRaiseWindow(a->dpy, w->id);
	XSetInputFocus(a->dpy, w->id, RevertToPointerRoot, CurrentTime);
	XFlush(a->dpy);
}

void aw_close(aw_state *a, uint32_t wid)
{
	const aw_win *w = known(a, wid);
	Atom *protos = NULL;
	int n = 0;
	bool polite = false;
	if (!w)
		return;
	if (XGetWMProtocols(a->dpy, w->id, &protos, &n)) {
		for (int i = 0; i < n; i++)
			polite |= protos[i] == a->wm_delete;
		XFree(protos);
	}
	if (polite) {
		XEvent ev = { 0 };
		ev.xclient.type = ClientMessage;
		ev.xclient.window = w->id;
		ev.xclient.message_type = a->wm_protocols;
		ev.xclient.format = 32;
		ev.xclient.data.l[0] = (long)a->wm_delete;
		ev.xclient.data.l[1] = CurrentTime;
		XSendEvent(a->dpy, w->id, False, NoEventMask, &ev);
	} else {
		XKillClient(a->dpy, w->id);
	}
	XFlush(a->dpy);
}
