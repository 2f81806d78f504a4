/* gfx.h: libscmgfx, the core of the graphics proxy.
 *
 * Pieces, one file each: shared-memory surfaces (surface.c), damage
 * regions (region.c), the overlay compositor (compose.c), the time bank
 * that shares compositing time between clients (timebank.c), the present
 * and input message formats (present.c), a PNG snapshot (snapshot.c),
 * moved and unchanged pixels for viewers (copyfind.c), the
 * RFB side on libvncserver (rfb_server.c, with the websocket gate in
 * wsreq.c), and the server
 * that ties them together (server.c). None of it depends on libscm, so the
 * whole core can be tested and benchmarked on its own.
 *
 * Pixels everywhere are 32-bit little-endian BGRX (0xXXRRGGBB as a
 * uint32_t), the layout Xvfb's framebuffer uses. In a client surface the
 * X byte is alpha when the overlay blends by alpha. The desktop keeps 0xFF
 * there, because noVNC's raw decoder treats that byte as alpha.
 *
 * Errors: negative errno when something broke, positive GFX_E_* for an
 * input that is refused. Nothing here trusts a size or an offset that came
 * from a client. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

struct json_object;

enum {
	GFX_E_INVALID = 100, /* a malformed or out-of-range request */
	GFX_E_LIMIT = 101,   /* too many clients, rects, viewers, ... */
	GFX_E_NO_CLIENT = 102,
};

#define GFX_DIM_MAX 8192u          /* width or height of any surface */
#define GFX_SURFACE_BYTES_MAX (128u << 20) /* 8192 x 4096 */
#define GFX_REGION_MAX 16u         /* rects a region keeps before merging */
#define GFX_DAMAGE_MAX 256u        /* rects one present may carry */
#define GFX_CLIENTS_MAX 64u
#define GFX_WINDOWS_MAX 16u        /* windows (top-level and pop-ups) per client */
#define GFX_OVERLAYS_MAX (GFX_CLIENTS_MAX * GFX_WINDOWS_MAX)
#define GFX_TITLE_MAX 63u          /* characters of a title bar's text */

/* ---- rectangles and regions (region.c) ------------------------------- */

typedef struct gfx_rect {
	int32_t x, y;
	int32_t w, h; /* >= 0; a rect with w or h 0 is empty */
} gfx_rect;

/* A set of rects, possibly overlapping; at most GFX_REGION_MAX, after
 * which new rects merge into the one they grow least. Overlap only costs a
 * little repeated work, never wrong pixels. */
typedef struct gfx_region {
	gfx_rect r[GFX_REGION_MAX];
	uint32_t n;
} gfx_region;

bool gfx_rect_empty(const gfx_rect *r);
/* Intersection of a and b; false (and *ret empty) when they do not meet.
 * Works in 64-bit so that hostile extents cannot overflow. */
bool gfx_rect_intersect(const gfx_rect *a, const gfx_rect *b, gfx_rect *ret);
gfx_rect gfx_rect_union(const gfx_rect *a, const gfx_rect *b);
void gfx_region_clear(gfx_region *rg);
/* Adds r clipped to bounds (nothing when they do not meet). */
void gfx_region_add(gfx_region *rg, const gfx_rect *r, const gfx_rect *bounds);
void gfx_region_add_region(gfx_region *rg, const gfx_region *src, const gfx_rect *bounds);
bool gfx_region_empty(const gfx_region *rg);
uint64_t gfx_region_area(const gfx_region *rg); /* counts overlap twice */
gfx_rect gfx_region_bounds(const gfx_region *rg);

/* ---- surfaces (surface.c) ---------------------------------------------- */

/* A client framebuffer: width*height*4 bytes in a memfd, mapped shared.
 * The proxy creates it and seals it against shrinking and growing (and
 * further sealing), so the mapping stays valid whatever the client does
 * with its copy of the fd. */
typedef struct gfx_surface {
	int fd;
	uint32_t width, height;
	size_t size;
	uint32_t *pixels;
} gfx_surface;

int gfx_surface_new(uint32_t width, uint32_t height, gfx_surface **ret);
/* The client side: maps an fd received from the proxy after checking its
 * seals and size; takes the fd on success. */
int gfx_surface_map(int fd, uint32_t width, uint32_t height, gfx_surface **ret);
gfx_surface *gfx_surface_free(gfx_surface *s);
int gfx_check_size(uint32_t width, uint32_t height, size_t *ret_bytes);

/* ---- compositor (compose.c) -------------------------------------------- */

enum {
	GFX_BLEND_ALPHA = 1u << 0, /* byte 3 of a pixel is alpha, not premultiplied */
	GFX_BLEND_KEY = 1u << 1,   /* pixels equal to key (RGB) are transparent */
};

typedef struct gfx_overlay {
	uint32_t id;
	gfx_surface *surface; /* borrowed */
	int32_t x, y;         /* desktop position of the content's top left */
	uint32_t blend;       /* GFX_BLEND_* */
	uint32_t key;         /* RGB colour key */
	uint32_t border;      /* RGB of the frame the compositor draws */
	gfx_rect src;         /* the part of the surface shown (a window); all of it by default */
	bool hidden;          /* minimised: neither drawn nor hit */
	bool titled;          /* a title bar above the frame (when the compositor draws them) */
	bool focused;         /* drawn as the focused window */
	const void *owner;    /* the window manager's: whose window this is */
	char title[GFX_TITLE_MAX + 16]; /* the title bar's text, set by the window manager */
	/* Where the RFB side last saw it: a window moved since is offered
	 * to viewers as a copy of its old pixels (copyfind.c). */
	int32_t seen_x, seen_y;
} gfx_overlay;

typedef struct gfx_compositor {
	uint32_t width, height;
	uint32_t *fb;         /* the desktop, BGRX with X = 0xFF */
	uint32_t background;
	uint32_t border_px;   /* frame width around every overlay */
	uint32_t title_px;    /* title bar height of titled overlays; 0: none (wm.c draws them) */
	uint32_t taskbar_px;  /* the taskbar along the bottom, over everything; 0: none */
	gfx_overlay *ov[GFX_OVERLAYS_MAX]; /* bottom to top */
	uint32_t n_ov, next_id;
	gfx_region damage;    /* desktop area to recomposite */
	uint64_t renders, pixels_composited;
} gfx_compositor;

int gfx_comp_new(uint32_t width, uint32_t height, uint32_t background, uint32_t border_px,
		 gfx_compositor **ret);
gfx_compositor *gfx_comp_free(gfx_compositor *c);
/* A new desktop size (as gfx_comp_new checks it): a new, undrawn fb and
 * the whole desktop damaged; c->fb changes, so whoever shares it must be
 * told. */
int gfx_comp_resize(gfx_compositor *c, uint32_t width, uint32_t height);
/* Adds an overlay on top of the others. */
int gfx_comp_add(gfx_compositor *c, gfx_surface *s, int32_t x, int32_t y, uint32_t border_rgb,
		 uint32_t blend, uint32_t key, uint32_t *ret_id);
int gfx_comp_remove(gfx_compositor *c, uint32_t id);
int gfx_comp_move(gfx_compositor *c, uint32_t id, int32_t x, int32_t y);
int gfx_comp_raise(gfx_compositor *c, uint32_t id);
/* Shows only rect src of the overlay's surface (a window of the app);
 * src is clipped to the surface, an empty result refused. */
int gfx_comp_set_src(gfx_compositor *c, uint32_t id, const gfx_rect *src);
int gfx_comp_set_hidden(gfx_compositor *c, uint32_t id, bool hidden);
/* Marks the overlay's frame (border, title bar) for redrawing. */
void gfx_comp_damage_frame(gfx_compositor *c, uint32_t id);
/* The taskbar strip (empty when there is none). */
gfx_rect gfx_comp_taskbar(const gfx_compositor *c);
gfx_overlay *gfx_comp_find(gfx_compositor *c, uint32_t id);
/* The frame around an overlay's content, as one rect (content + border
 * + title bar). */
gfx_rect gfx_overlay_frame(const gfx_compositor *c, const gfx_overlay *o);
/* Marks surface-local rects of overlay id damaged (clipped to the part
 * of the surface it shows). */
int gfx_comp_damage_surface(gfx_compositor *c, uint32_t id, const gfx_rect *rects, size_t n);
void gfx_comp_damage_all(gfx_compositor *c);
/* Recomposites the damaged area; *ret_out (if set) receives what changed
 * on the desktop. An undamaged desktop returns at once. */
void gfx_comp_render(gfx_compositor *c, gfx_region *ret_out);
/* The topmost overlay whose content holds desktop point (x, y), with the
 * point in surface coordinates. Returns false over background or border. */
bool gfx_comp_hit(const gfx_compositor *c, int32_t x, int32_t y, uint32_t *ret_id,
		  int32_t *ret_lx, int32_t *ret_ly);
/* One pixel blend step, exported for tests. */
uint32_t gfx_blend_pixel(uint32_t dst, uint32_t src, uint32_t blend, uint32_t key);
/* A stable border colour for a caller identity (a container name). */
uint32_t gfx_border_colour(const char *caller);
/* The next candidates (skip = 1, 2, ...) when that colour is taken; the
 * palette has GFX_BORDER_COLOURS entries. */
uint32_t gfx_border_colour_n(const char *caller, unsigned skip);
#define GFX_BORDER_COLOURS 8u

/* ---- time bank (timebank.c) -------------------------------------------- */

#define GFX_TB_MAX GFX_CLIENTS_MAX
#define GFX_WEIGHT_MAX 10000u /* as the IDL's "weight" setting allows (stubs/idl/gfx.json) */

typedef struct gfx_tb_client {
	bool live, ready, waiting;
	uint32_t weight;
	int64_t balance_ns;
	uint64_t used_ns, served, waits, dropped;
} gfx_tb_client;

/* Each live client's budget is refilled every period with its weighted
 * share of the period; a balance carries over up to cap_periods shares.
 * pick() serves the ready client with the most budget per weight; a
 * client that is out of budget waits while others are served; when every
 * ready client is out the next period starts at once, so idle clients
 * never hold busy ones back. */
typedef struct gfx_timebank {
	int64_t period_ns;
	uint32_t cap_periods;
	int64_t period_start;
	uint64_t periods;
	gfx_tb_client c[GFX_TB_MAX];
} gfx_timebank;

void gfx_tb_init(gfx_timebank *tb, int64_t period_ns, uint32_t cap_periods, int64_t now_ns);
int gfx_tb_add(gfx_timebank *tb, uint32_t weight, uint32_t *ret_slot);
void gfx_tb_remove(gfx_timebank *tb, uint32_t slot);
void gfx_tb_set_ready(gfx_timebank *tb, uint32_t slot, bool ready);
/* The slot to serve now, or -1 when nobody is ready. */
int gfx_tb_pick(gfx_timebank *tb, int64_t now_ns);
void gfx_tb_charge(gfx_timebank *tb, uint32_t slot, int64_t ns);
void gfx_tb_drop(gfx_timebank *tb, uint32_t slot); /* a frame was coalesced */
int64_t gfx_tb_share_ns(const gfx_timebank *tb, uint32_t slot);
/* Jain's fairness index of used time normalised by weight, over live slots. */
double gfx_tb_jain(const gfx_timebank *tb);

/* ---- present and input messages (present.c) ------------------------------ */

/* Parses a present's arguments {"damage":[[x,y,w,h],...]} (missing or
 * null: the whole surface) into rects clipped to a width x height
 * surface. Returns 0, or GFX_E_INVALID / GFX_E_LIMIT with an observation
 * that names the field (JSON pointer) on *ret_err. */
int gfx_parse_damage(struct json_object *args, uint32_t width, uint32_t height, gfx_rect *rects,
		     size_t max, size_t *ret_n, scm_error **ret_err);

typedef struct gfx_input_event {
	uint8_t type; /* GFX_INPUT_* */
	uint8_t down; /* key: pressed */
	uint8_t buttons; /* pointer: RFB button mask */
	uint8_t op; /* clipboard: GFX_CLIP_OP_* */
	uint32_t keysym;
	int32_t x, y; /* pointer, surface coordinates */
	uint32_t window; /* pointer, focus, close: the app's window id (0: the whole surface) */
} gfx_input_event;
/* FOCUS: the viewer focused that window (keys follow); CLOSE: the viewer
 * clicked its close button, and the app should close it. */
enum { GFX_INPUT_KEY = 1, GFX_INPUT_POINTER = 2, GFX_INPUT_FOCUS = 3, GFX_INPUT_CLOSE = 4, GFX_INPUT_CLIPBOARD = 5 };
/* {"type":"clipboard","op":"copy"}: hand the selection over (clipboard_put);
 * "paste": fetch the desktop clipboard (clipboard_get) and own the selection. */
enum { GFX_CLIP_OP_COPY = 1, GFX_CLIP_OP_PASTE = 2 };

/* The same for the damage member alone (as the generated skeleton hands it over). */
int gfx_parse_damage_list(struct json_object *damage, uint32_t width, uint32_t height,
			  gfx_rect *rects, size_t max, size_t *ret_n, scm_error **ret_err);

struct json_object *gfx_input_to_json(const gfx_input_event *ev, size_t n);
/* Parses the events array poll_input returns, or {"events":[...]}. */
int gfx_input_from_json(struct json_object *j, gfx_input_event *evs, size_t max, size_t *ret_n,
			scm_error **ret_err);

/* ---- moved and unchanged pixels (copyfind.c) ------------------------------ */

#define GFX_COPY_RECTS_MAX 32u
#define GFX_CHANGE_BAND 64u /* rows per part gfx_changed_parts() reports */

/* Part of a change that is earlier pixels moved: each destination rect
 * r[i] now holds what the old desktop had at r[i] - (dx, dy). */
typedef struct gfx_copy {
	int32_t dx, dy;
	uint32_t n;
	gfx_rect r[GFX_COPY_RECTS_MAX];
} gfx_copy;

/* A move the caller made itself (a window dragged by the window
 * manager): dst now shows what was at dst - (dx, dy). Only a hint: it
 * is verified like every other candidate. */
typedef struct gfx_move_hint {
	gfx_rect dst;
	int32_t dx, dy;
} gfx_move_hint;

/* old and cur are the desktop before and after a change (width x height,
 * stride width); changed says where it changed. Finds the one offset
 * whose copy covers most of the change: the hints' offsets, and vertical
 * scrolls inside each changed rect (rows of cur found among the rows of
 * old above or below). Every row of the result was compared pixel for
 * pixel. Returns false (ret->n == 0) when nothing is worth a copy. */
bool gfx_copy_find(const uint32_t *old, const uint32_t *cur, uint32_t width, uint32_t height,
		   const gfx_region *changed, const gfx_move_hint *hints, size_t n_hints, gfx_copy *ret);
/* Calls fn with the parts of rect (clipped to the desktop) where cur
 * differs from old: per band of GFX_CHANGE_BAND rows, the changed rows
 * and columns of that band; a band that did not change gives nothing. */
void gfx_changed_parts(const uint32_t *old, const uint32_t *cur, uint32_t width, uint32_t height,
		       const gfx_rect *rect, void (*fn)(void *ud, const gfx_rect *part), void *ud);

/* ---- snapshot (snapshot.c) ------------------------------------------------- */

/* Writes the desktop as an 8-bit RGB PNG to path (atomically). */
int gfx_snapshot_png(const gfx_compositor *c, const char *path);
/* Writes it into an open regular file (truncated first; anything else,
 * such as a pipe that could block, is -EBADFD); the fd stays open. */
int gfx_snapshot_png_fd(const gfx_compositor *c, int fd);
