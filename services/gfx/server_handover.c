/* server_handover.c: the engine's side of a proxy restarted with its
 * clients (docs/handover.md, docs/gfx.md "Restarting the proxy").
 *
 * Each client's surface memfd and input eventfd go to the new process as
 * they are (the app has both mapped or polled: new ones would mean a new
 * create_surface it never makes), with its caller, size, weight, border
 * colour and origin; the windows go as the window manager has them,
 * bottom to top, with their place, the part of the surface they show,
 * their title, whether minimised, and which one has the focus; each
 * client's time-bank account and counters. What is not carried: input
 * queued and not yet polled, a drag in progress. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm/macro.h"

DEFINE_TRIVIAL_CLEANUP(json_object *, json_object_put)
#include "server_private.h"

static int add_fd(json_object *o, const char *key, int fd, gfx_fd_add_fn add, void *ud, scm_error **ret_err)
{
	int i = add(ud, fd);
	if (i < 0)
		return scm_fail(ret_err, i, "%s: %s", key, strerror(-i));
	json_object_object_add(o, key, json_object_new_int(i));
	return 0;
}

static json_object *rect_json(const gfx_rect *r)
{
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_int(r->x));
	json_object_array_add(a, json_object_new_int(r->y));
	json_object_array_add(a, json_object_new_int(r->w));
	json_object_array_add(a, json_object_new_int(r->h));
	return a;
}

static json_object *save_windows(gfx_server *s)
{
	json_object *a = json_object_new_array();
	for (uint32_t i = 0; i < s->comp->n_ov; i++) {
		gfx_overlay *o = s->comp->ov[i];
		gfx_window *w = gfx_wm_find(&s->wm, o->id), *p;
		gfx_client *c = w ? w->owner : NULL;
		if (!c)
			continue;
		json_object *j = json_object_new_object();
		const char *title = o->title;
		size_t cl = strlen(c->caller);
		/* "[caller] title": the proxy's prefix is made again */
		if (title[0] == '[' && strncmp(title + 1, c->caller, cl) == 0 && title[cl + 1] == ']')
			title += cl + 2 + (title[cl + 2] == ' ');
		p = w->parent_ov ? gfx_wm_find(&s->wm, w->parent_ov) : NULL;
		json_object_object_add(j, "client", json_object_new_int(c->ho_idx));
		json_object_object_add(j, "wid", json_object_new_int64(w->wid));
		json_object_object_add(j, "parent", json_object_new_int64(p ? p->wid : 0));
		json_object_object_add(j, "popup", json_object_new_boolean(w->popup));
		json_object_object_add(j, "x", json_object_new_int(o->x));
		json_object_object_add(j, "y", json_object_new_int(o->y));
		json_object_object_add(j, "src", rect_json(&o->src));
		json_object_object_add(j, "hidden", json_object_new_boolean(o->hidden));
		json_object_object_add(j, "focused", json_object_new_boolean(s->wm.focus_ov == o->id));
		json_object_object_add(j, "title", json_object_new_string(title));
		json_object_array_add(a, j);
	}
	return a;
}

json_object *gfx_server_save(gfx_server *s, gfx_fd_add_fn add, void *ud, scm_error **ret_err)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *cs = json_object_new_array();
	json_object_object_add(o, "width", json_object_new_int64(s->comp->width));
	json_object_object_add(o, "height", json_object_new_int64(s->comp->height));
	json_object_object_add(o, "clients", cs);
	int n = 0;
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++) {
		gfx_client *c = s->clients[i];
		if (!c)
			continue;
		c->ho_idx = n++;
		json_object *j = json_object_new_object();
		json_object_array_add(cs, j);
		json_object_object_add(j, "caller", json_object_new_string(c->caller));
		json_object_object_add(j, "width", json_object_new_int64(c->surf->width));
		json_object_object_add(j, "height", json_object_new_int64(c->surf->height));
		json_object_object_add(j, "weight", json_object_new_int64(c->weight));
		json_object_object_add(j, "border", json_object_new_int64(c->border));
		json_object_object_add(j, "x", json_object_new_int(c->origin_x));
		json_object_object_add(j, "y", json_object_new_int(c->origin_y));
		json_object_object_add(j, "focus", json_object_new_boolean(s->focus == c));
		/* its time-bank account and counters go on (stats stay whole) */
		const gfx_tb_client *tc = &s->tb.c[c->slot];
		json_object_object_add(j, "balance_ns", json_object_new_int64(tc->balance_ns));
		json_object_object_add(j, "used_ns", json_object_new_uint64(tc->used_ns));
		json_object_object_add(j, "served", json_object_new_uint64(tc->served));
		json_object_object_add(j, "waits", json_object_new_uint64(tc->waits));
		json_object_object_add(j, "dropped", json_object_new_uint64(tc->dropped));
		json_object_object_add(j, "presents", json_object_new_uint64(c->presents));
		json_object_object_add(j, "inputs", json_object_new_uint64(c->inputs));
		if (add_fd(j, "surface", c->surf->fd, add, ud, ret_err) < 0 ||
		    add_fd(j, "events", c->event_fd, add, ud, ret_err) < 0)
			return NULL;
	}
	json_object_object_add(o, "windows", save_windows(s));
	if (s->rfb) {
		json_object *r = gfx_rfb_save(s->rfb, add, ud, ret_err);
		if (!r)
			return NULL;
		json_object_object_add(o, "rfb", r);
	}
	return TAKE_PTR(o);
}

/* ---- the new process ---------------------------------------------------- */

static int64_t get_int(json_object *o, const char *k, int64_t dflt)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
											  : dflt;
}

static bool is_eventfd(int fd)
{
	char p[64], t[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, t, sizeof(t) - 1);
	return n > 0 && (size_t)n == strlen("anon_inode:[eventfd]") && memcmp(t, "anon_inode:[eventfd]", (size_t)n) == 0;
}

/* A client as its predecessor had it: the very surface and eventfd. */
static int adopt_client(gfx_server *s, json_object *j, size_t idx, gfx_fd_take_fn take, void *ud, gfx_client **ret,
			scm_error **ret_err)
{
	const char *caller = json_object_get_string(json_object_object_get(j, "caller"));
	int64_t w = get_int(j, "width", 0), h = get_int(j, "height", 0), weight = get_int(j, "weight", 0);
	int sfd = take(ud, get_int(j, "surface", -1)), efd = take(ud, get_int(j, "events", -1));
	size_t slot = GFX_CLIENTS_MAX;
	for (size_t i = 0; i < GFX_CLIENTS_MAX && slot == GFX_CLIENTS_MAX; i++)
		if (!s->clients[i])
			slot = i;
	gfx_client *c = calloc(1, sizeof(*c));
	int r = 0;
	if (!caller || w < 1 || h < 1 || w > GFX_DIM_MAX || h > GFX_DIM_MAX || weight < 1 || weight > GFX_WEIGHT_MAX ||
	    sfd < 0 || efd < 0 || !is_eventfd(efd) || slot == GFX_CLIENTS_MAX)
		r = scm_fail(ret_err, GFX_E_INVALID, "/clients/%zu: not a client this proxy can take", idx);
	else if (!c)
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
	if (r == 0) {
		c->srv = s;
		c->slot = UINT32_MAX;
		c->event_fd = TAKE_FD(efd);
		snprintf(c->caller, sizeof(c->caller), "%s", caller);
		c->border = (uint32_t)get_int(j, "border", 0) & 0xFFFFFFu;
		c->origin_x = (int32_t)get_int(j, "x", 0), c->origin_y = (int32_t)get_int(j, "y", 0);
		c->weight = (uint32_t)weight;
		/* gfx_surface_map checks its seals and size and takes it */
		if ((r = gfx_surface_map(sfd, (uint32_t)w, (uint32_t)h, &c->surf)) != 0)
			r = scm_fail(ret_err, r < 0 ? r : GFX_E_INVALID, "/clients/%zu/surface: not a %lldx%lld surface",
				     idx, (long long)w, (long long)h);
		else
			sfd = -1;
	}
	if (r == 0 && (r = gfx_tb_add(&s->tb, c->weight, &c->slot)) == 0)
		r = gfx_wm_add(&s->wm, c, c->surf, c->origin_x, c->origin_y, c->border, c->caller, NULL);
	if (r == 0) {
		/* the account as it was, within what a bank may hold (the
		 * clock is CLOCK_MONOTONIC in both processes) */
		gfx_tb_client *tc = &s->tb.c[c->slot];
		int64_t cap = (int64_t)s->tb.cap_periods * s->tb.period_ns, b = get_int(j, "balance_ns", 0);
		tc->balance_ns = b < -cap ? -cap : b > cap ? cap : b;
		tc->used_ns = (uint64_t)get_int(j, "used_ns", 0), tc->served = (uint64_t)get_int(j, "served", 0);
		tc->waits = (uint64_t)get_int(j, "waits", 0), tc->dropped = (uint64_t)get_int(j, "dropped", 0);
		c->presents = (uint64_t)get_int(j, "presents", 0), c->inputs = (uint64_t)get_int(j, "inputs", 0);
	}
	safe_close(sfd);
	safe_close(efd);
	if (r) {
		if (c && c->srv)
			gfx_client_free(c);
		else
			free(c);
		return r < 0 || (ret_err && *ret_err) ? r : scm_fail(ret_err, r, "/clients/%zu: no room for it", idx);
	}
	s->clients[slot] = c;
	*ret = c;
	return 0;
}

/* The windows a client had declared, declared again for it. */
static int declare(gfx_server *s, gfx_client *c, json_object *ws, size_t ci)
{
	gfx_window_decl d[GFX_WINDOWS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < json_object_array_length(ws); i++) {
		json_object *j = json_object_array_get_idx(ws, i), *src = json_object_object_get(j, "src");
		if (get_int(j, "client", -1) != (int64_t)ci || get_int(j, "wid", 0) <= 0 || n == GFX_WINDOWS_MAX ||
		    !json_object_is_type(src, json_type_array) || json_object_array_length(src) != 4)
			continue;
		gfx_window_decl *e = &d[n++];
		memset(e, 0, sizeof(*e));
		e->id = (uint32_t)get_int(j, "wid", 0);
		e->parent = (uint32_t)get_int(j, "parent", 0);
		e->popup = json_object_get_boolean(json_object_object_get(j, "popup"));
		e->r = (gfx_rect){ json_object_get_int(json_object_array_get_idx(src, 0)),
				   json_object_get_int(json_object_array_get_idx(src, 1)),
				   json_object_get_int(json_object_array_get_idx(src, 2)),
				   json_object_get_int(json_object_array_get_idx(src, 3)) };
		snprintf(e->title, sizeof(e->title), "%s", json_object_get_string(json_object_object_get(j, "title")));
		/* what set_windows lets in, checked as if the app said it */
		gfx_rect all = { 0, 0, (int32_t)c->surf->width, (int32_t)c->surf->height };
		if (!gfx_rect_intersect(&e->r, &all, &e->r))
			n--;
	}
	return n ? gfx_client_set_windows(c, d, n) : 0;
}

static uint32_t find_ov(gfx_server *s, gfx_client *c, uint32_t wid)
{
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++)
		if (s->wm.win[i].ov && s->wm.win[i].owner == c && s->wm.win[i].wid == wid)
			return s->wm.win[i].ov;
	return 0;
}

int gfx_server_restore_clients(gfx_server *s, json_object *st, gfx_fd_take_fn take, void *ud,
			       gfx_client **clients, size_t max, size_t *ret_n, scm_error **ret_err)
{
	json_object *cs = json_object_object_get(st, "clients"), *ws = json_object_object_get(st, "windows");
	if (!json_object_is_type(cs, json_type_array) || !json_object_is_type(ws, json_type_array) ||
	    json_object_array_length(cs) > max)
		return scm_fail(ret_err, GFX_E_INVALID, "/clients, /windows: not arrays of at most %zu clients", max);
	size_t n = json_object_array_length(cs);
	gfx_client *focus = NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_array_get_idx(cs, i);
		int r = adopt_client(s, j, i, take, ud, &clients[i], ret_err);
		if (r)
			return r;
		*ret_n = i + 1;
		if (json_object_get_boolean(json_object_object_get(j, "focus")))
			focus = clients[i];
		if ((r = declare(s, clients[i], ws, i)) != 0)
			return scm_fail(ret_err, r < 0 ? r : GFX_E_INVALID, "/clients/%zu: its windows", i);
	}
	if (focus)
		gfx_server_focus(s, focus);
	/* places, then the stacking bottom to top, then what was minimised */
	uint32_t focus_ov = 0;
	for (size_t i = 0; i < json_object_array_length(ws); i++) {
		json_object *j = json_object_array_get_idx(ws, i);
		int64_t ci = get_int(j, "client", -1);
		uint32_t ov = ci >= 0 && (size_t)ci < n ? find_ov(s, clients[ci], (uint32_t)get_int(j, "wid", 0)) : 0;
		if (!ov)
			continue;
		gfx_comp_move(s->comp, ov, (int32_t)get_int(j, "x", 0), (int32_t)get_int(j, "y", 0));
		gfx_comp_raise(s->comp, ov);
		gfx_comp_set_hidden(s->comp, ov, json_object_get_boolean(json_object_object_get(j, "hidden")));
		if (json_object_get_boolean(json_object_object_get(j, "focused")))
			focus_ov = ov;
	}
	if (focus_ov && focus_ov != s->wm.focus_ov) {
		gfx_overlay *a = gfx_comp_find(s->comp, s->wm.focus_ov), *b = gfx_comp_find(s->comp, focus_ov);
		if (a)
			a->focused = false;
		b->focused = true;
		s->wm.focus_ov = focus_ov;
	}
	gfx_comp_damage_all(s->comp);
	return 0;
}

int gfx_server_adopt(gfx_server *s, int rfb_fd, int ws_fd, const char *password, const char *viewonly,
		     const char *token, uint32_t width, uint32_t height)
{
	if (s->rfb)
		return gfx_rfb_adopt(s->rfb, rfb_fd, ws_fd, password, viewonly, token, width, height);
	safe_close(rfb_fd);
	safe_close(ws_fd);
	if (width == s->comp->width && height == s->comp->height)
		return 0;
	return gfx_comp_resize(s->comp, width, height);
}

void gfx_server_abandon(gfx_server *s)
{
	if (s->rfb)
		gfx_rfb_abandon(s->rfb);
}

int32_t gfx_client_ho_index(const gfx_client *c)
{
	return c->ho_idx;
}
