/* server.c: the graphics proxy's engine: clients, time bank, compositor
 * and viewers wired together.
 *
 * present() only records damage; the compositing happens in work(), in
 * the order the time bank picks, and each serve is charged the time it
 * took. So a client that floods presents costs the proxy a bounded merge
 * per present and gets no more compositing than its weight allows; its
 * surplus frames are coalesced and counted as dropped. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "server_private.h"

#define GAP 16

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rfb_key(void *ud, bool down, uint32_t keysym)
{
	gfx_server_key(ud, down, keysym);
}
static void rfb_pointer(void *ud, uint8_t buttons, int32_t x, int32_t y)
{
	gfx_server_pointer(ud, buttons, x, y);
}
static void rfb_cut_text(void *ud, const char *utf8, size_t len)
{
	gfx_server *s = ud;
	if (s->hooks.cut_text)
		s->hooks.cut_text(s->hooks.ud, utf8, len);
}

/* The desktop has a new size: every window is moved where it is, which
 * keeps its title bar on the desktop above the taskbar (gfx_wm_move);
 * pop-ups go with their windows. */
static void rfb_resized(void *ud)
{
	gfx_server *s = ud;
	for (size_t i = 0; i < GFX_OVERLAYS_MAX; i++) {
		const gfx_window *w = &s->wm.win[i];
		const gfx_overlay *o = w->ov && !w->parent_ov ? gfx_comp_find(s->comp, w->ov) : NULL;
		if (o)
			gfx_wm_move(&s->wm, o->id, o->x, o->y);
	}
}

void gfx_server_set_hooks(gfx_server *s, const gfx_server_hooks *h)
{
	s->hooks = *h;
}

gfx_server *gfx_server_free(gfx_server *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		gfx_client_free(s->clients[i]);
	gfx_rfb_free(s->rfb);
	gfx_comp_free(s->comp);
	free(s);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP(gfx_server *, gfx_server_free)

int gfx_server_new(const gfx_server_config *cfg, gfx_server **ret)
{
	_cleanup_(gfx_server_freep) gfx_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	uint32_t border = cfg->border_px ? cfg->border_px : 4;
	int r = gfx_comp_new(cfg->width, cfg->height, cfg->background, border, &s->comp);
	if (r)
		return r;
	if (!cfg->no_decorations) {
		s->comp->title_px = GFX_TITLE_PX;
		s->comp->taskbar_px = GFX_TASKBAR_PX;
	}
	gfx_wm_init(&s->wm, s->comp);
	gfx_tb_init(&s->tb, cfg->period_ns ? cfg->period_ns : 10000000,
		    cfg->cap_periods ? cfg->cap_periods : 4, now_ns());
	if (cfg->rfb) {
		static const gfx_rfb_ops ops = { rfb_key, rfb_pointer, rfb_cut_text, rfb_resized };
		gfx_rfb_config rc = { .port = cfg->rfb_port, .ws_port = cfg->ws_port, .name = cfg->name,
				      .password = cfg->password, .viewonly_password = cfg->viewonly_password,
				      .token = cfg->token, .insecure_no_auth = cfg->insecure_no_auth,
				      .resize = cfg->resize, .security = cfg->security, .tls_cert = cfg->tls_cert,
				      .tls_key = cfg->tls_key, .log = cfg->log, .log_ud = cfg->log_ud,
				      .adopt = cfg->adopt };
		r = gfx_rfb_new(s->comp, &rc, &ops, s, &s->rfb);
		if (r)
			return r;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

gfx_compositor *gfx_server_compositor(gfx_server *s)
{
	return s->comp;
}
gfx_timebank *gfx_server_timebank(gfx_server *s)
{
	return &s->tb;
}
gfx_rfb *gfx_server_rfb(gfx_server *s)
{
	return s->rfb;
}
int gfx_server_fd(const gfx_server *s)
{
	return s->rfb ? gfx_rfb_fd(s->rfb) : -1;
}

/* Same caller, same colour; two callers never share one while the
 * palette has room. */
static uint32_t pick_border(gfx_server *s, const char *caller)
{
	for (unsigned skip = 0; skip < GFX_BORDER_COLOURS; skip++) {
		uint32_t col = gfx_border_colour_n(caller, skip);
		bool taken = false;
		for (size_t i = 0; i < GFX_CLIENTS_MAX; i++) {
			gfx_client *o = s->clients[i];
			if (!o)
				continue;
			if (strcmp(o->caller, caller) == 0)
				return o->border;
			if (o->border == col)
				taken = true;
		}
		if (!taken)
			return col;
	}
	return gfx_border_colour(caller);
}

static bool frame_free(gfx_server *s, int32_t x, int32_t y, uint32_t w, uint32_t h)
{
	int32_t b = (int32_t)s->comp->border_px, t = (int32_t)s->comp->title_px;
	int32_t bottom = (int32_t)s->comp->height - gfx_comp_taskbar(s->comp).h;
	/* The new frame (with its title bar) plus a gap must fit above the
	 * taskbar and meet no other frame. */
	gfx_rect want = { x - b - GAP / 2, y - b - t - GAP / 2, (int32_t)w + 2 * b + GAP,
			  (int32_t)h + 2 * b + t + GAP }, r;
	if (x + (int32_t)w + b > (int32_t)s->comp->width || y + (int32_t)h + b > bottom)
		return false;
	for (uint32_t i = 0; i < s->comp->n_ov; i++) {
		gfx_rect f = gfx_overlay_frame(s->comp, s->comp->ov[i]);
		if (gfx_rect_intersect(&want, &f, &r))
			return false;
	}
	return true;
}

/* The first free spot, rows top to bottom, left to right, next to the
 * frames already there; a cascade when the desktop is full. Space freed by
 * clients that left is used again. */
static void place(gfx_server *s, uint32_t w, uint32_t h, int32_t *ret_x, int32_t *ret_y)
{
	int32_t b = (int32_t)s->comp->border_px, home = b + GAP, t = (int32_t)s->comp->title_px;
	int32_t xs[GFX_OVERLAYS_MAX + 1], ys[GFX_OVERLAYS_MAX + 1];
	uint32_t n = 0;
	xs[n] = home;
	ys[n] = home + t;
	n++;
	for (uint32_t i = 0; i < s->comp->n_ov; i++) {
		gfx_rect f = gfx_overlay_frame(s->comp, s->comp->ov[i]);
		xs[n] = f.x + f.w + GAP + b;
		ys[n] = f.y + f.h + GAP + b + t;
		n++;
	}
	/* The free candidate with the smallest y, then the smallest x. */
	bool found = false;
	int32_t bx = 0, by = 0;
	for (uint32_t j = 0; j < n; j++)
		for (uint32_t i = 0; i < n; i++)
			if ((!found || ys[j] < by || (ys[j] == by && xs[i] < bx)) && frame_free(s, xs[i], ys[j], w, h)) {
				found = true;
				bx = xs[i];
				by = ys[j];
			}
	if (found) {
		*ret_x = bx;
		*ret_y = by;
		return;
	}
	int32_t step = (int32_t)(s->comp->n_ov % 8) * 32;
	*ret_x = home + step;
	*ret_y = home + t + step;
}

int gfx_client_new(gfx_server *s, const char *caller, uint32_t width, uint32_t height,
		   uint32_t weight, gfx_client **ret)
{
	size_t idx = GFX_CLIENTS_MAX, bytes;
	int r = gfx_check_size(width, height, &bytes);
	if (r)
		return r;
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		if (!s->clients[i]) {
			idx = i;
			break;
		}
	if (idx == GFX_CLIENTS_MAX)
		return GFX_E_LIMIT;
	gfx_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->srv = s;
	c->event_fd = -1;
	c->slot = UINT32_MAX;
	snprintf(c->caller, sizeof(c->caller), "%s", caller ? caller : "");
	r = gfx_tb_add(&s->tb, weight, &c->slot);
	if (!r)
		r = gfx_surface_new(width, height, &c->surf);
	if (!r) {
		c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->event_fd < 0)
			r = -errno;
	}
	if (!r) {
		c->border = pick_border(s, c->caller);
		place(s, width, height, &c->origin_x, &c->origin_y);
		r = gfx_wm_add(&s->wm, c, c->surf, c->origin_x, c->origin_y, c->border, c->caller, NULL);
	}
	if (r) {
		gfx_client_free(c);
		return r;
	}
	c->weight = weight;
	s->clients[idx] = c;
	if (!s->focus)
		gfx_server_focus(s, c);
	*ret = c;
	return 0;
}

gfx_client *gfx_client_free(gfx_client *c)
{
	if (!c)
		return NULL;
	gfx_server *s = c->srv;
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		if (s->clients[i] == c)
			s->clients[i] = NULL;
	if (s->focus == c)
		s->focus = NULL;
	gfx_wm_remove_owner(&s->wm, c);
	if (c->slot != UINT32_MAX)
		gfx_tb_remove(&s->tb, c->slot);
	gfx_surface_free(c->surf);
	safe_close(c->event_fd);
	free(c);
	return NULL;
}

gfx_surface *gfx_client_surface(gfx_client *c)
{
	return c->surf;
}
/* The client's oldest window (stable whatever the stacking). */
uint32_t gfx_client_id(const gfx_client *c)
{
	uint32_t ovs[GFX_WINDOWS_MAX + 1], min = 0;
	size_t n = gfx_wm_windows(&c->srv->wm, c, ovs, GFX_WINDOWS_MAX + 1);
	for (size_t i = 0; i < n; i++)
		if (!min || ovs[i] < min)
			min = ovs[i];
	return min;
}
uint32_t gfx_client_border(const gfx_client *c)
{
	return c->border;
}
uint64_t gfx_client_dropped(const gfx_client *c)
{
	return c->srv->tb.c[c->slot].dropped;
}
const char *gfx_client_caller(const gfx_client *c)
{
	return c->caller;
}
int gfx_client_event_fd(const gfx_client *c)
{
	return c->event_fd;
}
/* Moves all of the client's windows as one, surface (0, 0) to (x, y). */
int gfx_client_move(gfx_client *c, int32_t x, int32_t y)
{
	uint32_t ovs[GFX_WINDOWS_MAX + 1];
	size_t n = gfx_wm_windows(&c->srv->wm, c, ovs, GFX_WINDOWS_MAX + 1);
	int32_t dx = x - c->origin_x, dy = y - c->origin_y;
	for (size_t i = 0; i < n; i++) {
		gfx_overlay *o = gfx_comp_find(c->srv->comp, ovs[i]);
		int r = gfx_comp_move(c->srv->comp, ovs[i], o->x + dx, o->y + dy);
		if (r)
			return r;
	}
	c->origin_x = x;
	c->origin_y = y;
	return 0;
}

int gfx_client_set_windows(gfx_client *c, const gfx_window_decl *d, size_t n)
{
	gfx_server *s = c->srv;
	return gfx_wm_set_windows(&s->wm, c, c->surf, c->origin_x, c->origin_y, c->border, c->caller, d, n);
}

int gfx_client_present(gfx_client *c, const gfx_rect *rects, size_t n)
{
	if (n > GFX_DAMAGE_MAX)
		return GFX_E_LIMIT;
	gfx_rect surf = { 0, 0, (int32_t)c->surf->width, (int32_t)c->surf->height };
	c->presents++;
	if (c->queued)
		gfx_tb_drop(&c->srv->tb, c->slot);
	else
		c->queued_at = now_ns();
	for (size_t i = 0; i < n; i++)
		gfx_region_add(&c->pending, &rects[i], &surf);
	c->queued = !gfx_region_empty(&c->pending);
	gfx_tb_set_ready(&c->srv->tb, c->slot, c->queued);
	return 0;
}

static gfx_client *by_slot(gfx_server *s, int slot)
{
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		if (s->clients[i] && (int)s->clients[i]->slot == slot)
			return s->clients[i];
	return NULL;
}

static void serve(gfx_server *s, gfx_client *c)
{
	int64_t t0 = now_ns();
	gfx_region out;
	uint32_t ovs[GFX_WINDOWS_MAX + 1];
	size_t n = gfx_wm_windows(&s->wm, c, ovs, GFX_WINDOWS_MAX + 1);
	for (size_t i = 0; i < n; i++)
		gfx_comp_damage_surface(s->comp, ovs[i], c->pending.r, c->pending.n);
	gfx_region_clear(&c->pending);
	c->queued = false;
	gfx_tb_set_ready(&s->tb, c->slot, false);
	gfx_comp_render(s->comp, &out);
	int64_t t1 = now_ns();
	if (s->rfb)
		gfx_rfb_damage(s->rfb, &out);
	gfx_tb_charge(&s->tb, c->slot, t1 - t0);
	c->latency_last = t1 - c->queued_at;
	c->latency_sum += c->latency_last;
	c->latency_n++;
	if (c->latency_last > c->latency_max)
		c->latency_max = c->latency_last;
}

int gfx_server_work(gfx_server *s, int64_t budget_ns)
{
	int64_t start = now_ns();
	int served = 0;
	for (;;) {
		int64_t t = now_ns();
		if (served > 0 && t - start >= budget_ns)
			break;
		int slot = gfx_tb_pick(&s->tb, t);
		if (slot < 0)
			break;
		gfx_client *c = by_slot(s, slot);
		if (!c) {
			gfx_tb_set_ready(&s->tb, (uint32_t)slot, false);
			continue;
		}
		serve(s, c);
		served++;
	}
	if (s->drag_pending && now_ns() - s->drag_at >= DRAG_FRAME_NS)
		gfx_server_pointer(s, s->drag_buttons, s->drag_x, s->drag_y);
	/* Moves, removals and new clients damage the desktop outside any
	 * client's present; render those too. */
	if (!gfx_region_empty(&s->comp->damage)) {
		gfx_region out;
		gfx_comp_render(s->comp, &out);
		if (s->rfb)
			gfx_rfb_damage(s->rfb, &out);
	}
	return served;
}

bool gfx_server_has_work(const gfx_server *s)
{
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		if (s->clients[i] && s->clients[i]->queued)
			return true;
	return !gfx_region_empty(&s->comp->damage);
}

int gfx_server_dispatch(gfx_server *s)
{
	int r = s->rfb ? gfx_rfb_dispatch(s->rfb) : 0;
	gfx_server_work(s, s->tb.period_ns);
	return r;
}

int gfx_server_snapshot(gfx_server *s, const char *path)
{
	gfx_server_work(s, INT64_MAX);
	return gfx_snapshot_png(s->comp, path);
}

static void enqueue(gfx_client *c, const gfx_input_event *ev)
{
	if (c->q_len == GFX_INPUT_QUEUE) {
		/* A client that does not read its input loses the oldest. */
		c->q_head = (c->q_head + 1) % GFX_INPUT_QUEUE;
		c->q_len--;
		c->input_dropped++;
	}
	c->q[(c->q_head + c->q_len) % GFX_INPUT_QUEUE] = *ev;
	c->q_len++;
	c->inputs++;
	uint64_t one = 1;
	(void)!write(c->event_fd, &one, sizeof(one));
}

void gfx_client_queue(gfx_client *c, const gfx_input_event *ev)
{
	enqueue(c, ev);
}

size_t gfx_client_take_input(gfx_client *c, gfx_input_event *evs, size_t max)
{
	size_t n = 0;
	while (n < max && c->q_len > 0) {
		evs[n++] = c->q[c->q_head];
		c->q_head = (c->q_head + 1) % GFX_INPUT_QUEUE;
		c->q_len--;
	}
	if (c->q_len == 0) {
		uint64_t v;
		(void)!read(c->event_fd, &v, sizeof(v));
	}
	return n;
}

void gfx_server_focus(gfx_server *s, gfx_client *c)
{
	uint32_t ovs[GFX_WINDOWS_MAX + 1];
	size_t n = c ? gfx_wm_windows(&s->wm, c, ovs, GFX_WINDOWS_MAX + 1) : 0;
	s->focus = c;
	/* Its topmost window. */
	if (n > 0)
		gfx_wm_focus(&s->wm, ovs[n - 1]);
}

gfx_client *gfx_server_focused(gfx_server *s)
{
	return s->focus;
}

void gfx_server_key(gfx_server *s, bool down, uint32_t keysym)
{
	if (s->hooks.key && s->hooks.key(s->hooks.ud, down, keysym))
		return;
	if (!s->focus)
		return;
	gfx_input_event ev = { .type = GFX_INPUT_KEY, .down = down, .keysym = keysym };
	enqueue(s->focus, &ev);
}

/* The window manager decides first (title bars, buttons, taskbar, click
 * to focus); what it lets through reaches the app in surface space. */
void gfx_server_pointer(gfx_server *s, uint8_t buttons, int32_t x, int32_t y)
{
	int64_t t = now_ns();
	if (s->wm.mode == GFX_WM_DRAG && buttons == s->wm.buttons && t - s->drag_at < DRAG_FRAME_NS) {
		s->drag_pending = true;
		s->drag_buttons = buttons, s->drag_x = x, s->drag_y = y;
		if (s->rfb)
			gfx_rfb_wake_at(s->rfb, s->drag_at + DRAG_FRAME_NS);
		return;
	}
	s->drag_pending = false;
	gfx_wm_action a[GFX_WM_ACTIONS_MAX];
	size_t n = gfx_wm_pointer(&s->wm, buttons, x, y, a);
	if (s->wm.mode == GFX_WM_DRAG)
		s->drag_at = t;
	for (size_t i = 0; i < n; i++) {
		gfx_client *c = a[i].owner;
		gfx_input_event ev = { .window = a[i].wid };
		if (a[i].kind == GFX_WM_ACT_FOCUS) {
			s->focus = c;
			ev.type = GFX_INPUT_FOCUS;
		} else if (a[i].kind == GFX_WM_ACT_POINTER) {
			ev = (gfx_input_event){ .type = GFX_INPUT_POINTER, .buttons = a[i].buttons, .x = a[i].x,
						.y = a[i].y, .window = a[i].wid };
		} else {
			ev.type = GFX_INPUT_CLOSE;
		}
		if (c)
			enqueue(c, &ev);
	}
}

struct json_object *gfx_server_stats(gfx_server *s)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	if (!root || !arr) {
		json_object_put(root);
		json_object_put(arr);
		return NULL;
	}
	json_object_object_add(root, "width", json_object_new_int64(s->comp->width));
	json_object_object_add(root, "height", json_object_new_int64(s->comp->height));
	json_object_object_add(root, "rfb_port", json_object_new_int(s->rfb ? gfx_rfb_port(s->rfb) : 0));
	json_object_object_add(root, "viewers", json_object_new_int64(s->rfb ? gfx_rfb_viewers(s->rfb) : 0));
	if (s->rfb) {
		json_object_object_add(root, "ws_port", json_object_new_int(gfx_rfb_ws_port(s->rfb)));
		json_object_object_add(root, "viewer_list", gfx_rfb_viewers_json(s->rfb));
		json_object_object_add(root, "encodings_sent", gfx_rfb_encodings_json(s->rfb));
		json_object_object_add(root, "viewers_refused", json_object_new_int64((int64_t)gfx_rfb_refused(s->rfb)));
		json_object_object_add(root, "resizes", json_object_new_int64((int64_t)gfx_rfb_resizes(s->rfb)));
		json_object_object_add(root, "security", json_object_new_string(gfx_rfb_security(s->rfb)));
		json_object_object_add(root, "tls_fingerprint", json_object_new_string(gfx_rfb_tls_fingerprint(s->rfb)));
		uint64_t px, copies = gfx_rfb_copies(s->rfb, &px);
		json_object_object_add(root, "copies", json_object_new_int64((int64_t)copies));
		json_object_object_add(root, "copied_pixels", json_object_new_int64((int64_t)px));
	}
	json_object_object_add(root, "renders", json_object_new_int64((int64_t)s->comp->renders));
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++) {
		gfx_client *c = s->clients[i];
		if (!c)
			continue;
		const gfx_tb_client *t = &s->tb.c[c->slot];
		const gfx_overlay *o = gfx_comp_find(s->comp, gfx_client_id(c));
		char col[8];
		snprintf(col, sizeof(col), "#%06x", c->border & 0xFFFFFFu);
		struct json_object *j = json_object_new_object();
		if (!j)
			continue;
		json_object_object_add(j, "id", json_object_new_int64(gfx_client_id(c)));
		json_object_object_add(j, "caller", json_object_new_string(c->caller));
		json_object_object_add(j, "focused", json_object_new_boolean(s->focus == c));
		json_object_object_add(j, "x", json_object_new_int(o ? o->x : c->origin_x));
		json_object_object_add(j, "y", json_object_new_int(o ? o->y : c->origin_y));
		json_object_object_add(j, "windows", gfx_wm_windows_json(&s->wm, c));
		json_object_object_add(j, "width", json_object_new_int64(c->surf->width));
		json_object_object_add(j, "height", json_object_new_int64(c->surf->height));
		json_object_object_add(j, "border", json_object_new_string(col));
		json_object_object_add(j, "weight", json_object_new_int64(c->weight));
		json_object_object_add(j, "used_ns", json_object_new_int64((int64_t)t->used_ns));
		json_object_object_add(j, "served", json_object_new_int64((int64_t)t->served));
		json_object_object_add(j, "waits", json_object_new_int64((int64_t)t->waits));
		json_object_object_add(j, "frames_dropped", json_object_new_int64((int64_t)t->dropped));
		json_object_object_add(j, "presents", json_object_new_int64((int64_t)c->presents));
		json_object_object_add(j, "input_events", json_object_new_int64((int64_t)c->inputs));
		json_object_object_add(j, "input_dropped", json_object_new_int64((int64_t)c->input_dropped));
		json_object_object_add(j, "latency_max_ns", json_object_new_int64(c->latency_max));
		json_object_object_add(j, "latency_avg_ns",
				       json_object_new_int64(c->latency_n ? c->latency_sum / (int64_t)c->latency_n : 0));
		json_object_array_add(arr, j);
	}
	json_object_object_add(root, "clients", arr);
	json_object_object_add(root, "taskbar", gfx_wm_taskbar_json(&s->wm));
	return root;
}
