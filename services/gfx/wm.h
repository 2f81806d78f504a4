/* wm.h: the proxy's window manager: the windows apps declare (sub-rects
 * of their one surface), their title bars and the taskbar the compositor
 * draws, hit testing, stacking, and what a viewer's pointer does to them
 * (move, raise, minimise, close) before any of it reaches an app.
 *
 * decor.c draws and hit-tests (pure functions of the compositor); wm.c
 * keeps the window table and the pointer state machine; winjson.c parses
 * what an app declares. None of it touches a client's queue: the pointer
 * handler returns actions the engine (server.c) carries out. */
#pragma once
#include "gfx.h"

/* ---- decor.c: title bars, buttons, the taskbar ------------------------- */

#define GFX_TITLE_PX 16u   /* title bar height the engine uses */
#define GFX_TASKBAR_PX 20u /* taskbar height the engine uses */
#define GFX_TASK_ENTRY_W 200

typedef enum gfx_wm_part {
	GFX_PART_NONE = 0, /* the desktop's background */
	GFX_PART_CONTENT,  /* the app's own pixels */
	GFX_PART_BORDER,
	GFX_PART_TITLE,
	GFX_PART_MINIMISE, /* the title bar's buttons */
	GFX_PART_CLOSE,
	GFX_PART_TASKBAR,  /* an entry (id set) or the bar's empty rest (id 0) */
} gfx_wm_part;

/* Called by the compositor while it renders clip. */
void gfx_wm_draw_title(gfx_compositor *c, const gfx_overlay *o, const gfx_rect *clip);
void gfx_wm_draw_taskbar(gfx_compositor *c, const gfx_rect *clip);
/* What lies at desktop point (x, y): the taskbar over everything, then
 * the topmost visible frame. *ret_id: the overlay (0 over nothing). */
gfx_wm_part gfx_wm_hit(const gfx_compositor *c, int32_t x, int32_t y, uint32_t *ret_id);
/* The title bar, and its two buttons (GFX_PART_MINIMISE, GFX_PART_CLOSE). */
gfx_rect gfx_wm_title_rect(const gfx_compositor *c, const gfx_overlay *o);
gfx_rect gfx_wm_button_rect(const gfx_compositor *c, const gfx_overlay *o, gfx_wm_part which);
/* Taskbar entries: the titled overlays in the order they came (by id). */
size_t gfx_wm_taskbar_entries(const gfx_compositor *c, uint32_t *ids, size_t max);
gfx_rect gfx_wm_taskbar_entry(const gfx_compositor *c, size_t index, size_t n);
/* Text colour (black or white) readable on a title bar of colour rgb. */
uint32_t gfx_wm_text_colour(uint32_t rgb);

/* ---- winjson.c: what an app declares ----------------------------------- */

typedef struct gfx_window_decl {
	uint32_t id;     /* the app's name for it (an X window id), 1.. */
	gfx_rect r;      /* in surface coordinates, clipped to the surface */
	uint32_t parent; /* pop-ups: the id of the window it belongs to, 0: none */
	bool popup;      /* menus, tooltips: no title bar, no taskbar entry */
	char title[GFX_TITLE_MAX + 1]; /* printable ASCII, '?' for anything else */
} gfx_window_decl;

/* Parses set_windows' list [{"id":N,"x":..,"y":..,"w":..,"h":..,
 * "title":"..","popup":false,"parent":N}, ...]: at most max (<=
 * GFX_WINDOWS_MAX) windows, unique ids, w and h >= 1, no unknown keys.
 * Windows wholly outside the surface are dropped. Returns 0, or
 * GFX_E_INVALID / GFX_E_LIMIT with an observation naming the field (JSON
 * pointer) pushed on *ret_err. */
int gfx_parse_windows(struct json_object *arr, uint32_t width, uint32_t height, gfx_window_decl *out,
		      size_t max, size_t *ret_n, scm_error **ret_err);

/* For stats: owner's windows [{"window":wid,"x":..,"y":..,"width":..,
 * "height":..,"title":..,"hidden":..,"popup":..,"focused":..,
 * "title_bar":[x,y,w,h],"minimise":[..],"close":[..]}] and the taskbar's
 * entries [{"title":..,"rect":[x,y,w,h]}]. */
struct gfx_wm;
struct json_object *gfx_wm_windows_json(struct gfx_wm *wm, const void *owner);
struct json_object *gfx_wm_taskbar_json(struct gfx_wm *wm);

/* ---- wm.c: windows, stacking, the pointer ------------------------------ */

typedef struct gfx_window {
	uint32_t ov;        /* overlay id; 0: a free slot */
	void *owner;        /* the engine's client */
	uint32_t wid;       /* the app's id; 0: the whole surface (undeclared) */
	uint32_t parent_ov; /* pop-ups: the window they move and rise with */
	bool popup;
} gfx_window;

enum { GFX_WM_IDLE, GFX_WM_DRAG, GFX_WM_GRAB, GFX_WM_BUTTON };

typedef struct gfx_wm {
	gfx_compositor *comp; /* borrowed */
	gfx_window win[GFX_OVERLAYS_MAX];
	uint32_t focus_ov;    /* the focused window (a top-level one) */
	uint8_t buttons;      /* the last button mask seen */
	int mode;             /* GFX_WM_* */
	uint32_t grab_ov;     /* the window being dragged, held or pressed */
	gfx_wm_part grab_part;
	int32_t grab_dx, grab_dy;
} gfx_wm;

enum { GFX_WM_ACT_FOCUS = 1, GFX_WM_ACT_POINTER, GFX_WM_ACT_CLOSE };
typedef struct gfx_wm_action {
	int kind;       /* GFX_WM_ACT_*; FOCUS with owner NULL: nobody */
	void *owner;
	uint32_t wid;
	int32_t x, y;   /* POINTER: surface coordinates */
	uint8_t buttons;
} gfx_wm_action;
#define GFX_WM_ACTIONS_MAX 3

void gfx_wm_init(gfx_wm *wm, gfx_compositor *comp);
/* A window of owner showing all of surface s at (x, y): what a client has
 * until it declares windows. */
int gfx_wm_add(gfx_wm *wm, void *owner, gfx_surface *s, int32_t x, int32_t y, uint32_t border,
	       const char *caller, uint32_t *ret_ov);
/* Replaces owner's windows with the declared ones: the same id keeps its
 * place on the desktop, a new one appears at origin + its offset in the
 * surface (a pop-up: where it sits relative to its parent), a missing one
 * goes. GFX_E_LIMIT when the desktop has no room for more overlays. */
int gfx_wm_set_windows(gfx_wm *wm, void *owner, gfx_surface *s, int32_t origin_x, int32_t origin_y,
		       uint32_t border, const char *caller, const gfx_window_decl *d, size_t n);
void gfx_wm_remove_owner(gfx_wm *wm, void *owner);
gfx_window *gfx_wm_find(gfx_wm *wm, uint32_t ov);
/* Owner's windows, bottom to top (overlay ids); returns the count. */
size_t gfx_wm_windows(const gfx_wm *wm, const void *owner, uint32_t *ovs, size_t max);
/* Raises a window with its pop-ups, shows it if minimised, focuses it. */
void gfx_wm_focus(gfx_wm *wm, uint32_t ov);
void gfx_wm_minimise(gfx_wm *wm, uint32_t ov);
/* Moves a window (and its pop-ups) so its content's top left is (x, y),
 * kept where its title bar can still be grabbed. */
void gfx_wm_move(gfx_wm *wm, uint32_t ov, int32_t x, int32_t y);
/* One RFB pointer event in desktop coordinates; fills out[] with what
 * the engine must do and returns how many. */
size_t gfx_wm_pointer(gfx_wm *wm, uint8_t buttons, int32_t x, int32_t y, gfx_wm_action *out);
