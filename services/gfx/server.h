/* server.h: the graphics proxy's engine, independent of how clients reach
 * it (libscm channels in the proxy, direct calls in tests and benches).
 *
 * A client owns a surface and an overlay; present() queues damage, which
 * the time bank decides when to composite; input from RFB viewers goes
 * to the focused client only, through a bounded queue and an eventfd. */
#pragma once
#include "gfx.h"
#include "rfb.h"

typedef struct gfx_server gfx_server;
typedef struct gfx_client gfx_client;

typedef struct gfx_server_config {
	uint32_t width, height;   /* desktop size */
	uint32_t background;      /* RGB */
	uint32_t border_px;       /* 0 means the default, 4 */
	int64_t period_ns;        /* time bank period, 0: 10 ms */
	uint32_t cap_periods;     /* carry-over cap in periods, 0: 4 */
	bool rfb;                 /* serve RFB on 127.0.0.1 */
	uint16_t rfb_port;        /* 0: any free port */
	uint16_t ws_port;         /* noVNC's websocket, 0: any free port */
	const char *name;         /* desktop name shown by viewers */
	/* Viewer secrets (rfb.h): NULL makes them up; no view-only one
	 * unless given. insecure_no_auth: benches and unit tests only. */
	const char *password, *viewonly_password, *token;
	bool insecure_no_auth;
	bool resize;              /* viewers may resize the desktop (rfb.h) */
	bool no_decorations;      /* no title bars, no taskbar (benches) */
	/* The RFB port's security types and TLS (gfx_rfb_config). */
	gfx_sec_types security;
	const char *tls_cert, *tls_key;
	void (*log)(void *ud, const char *line);
	void *log_ud;
	/* A restarted proxy: made before its predecessor's state arrives
	 * (the slow part, while the old one still serves), without
	 * listening sockets until gfx_server_adopt(). */
	bool adopt;
} gfx_server_config;

#define GFX_INPUT_QUEUE 256u

int gfx_server_new(const gfx_server_config *cfg, gfx_server **ret);
gfx_server *gfx_server_free(gfx_server *s);
gfx_compositor *gfx_server_compositor(gfx_server *s);
gfx_timebank *gfx_server_timebank(gfx_server *s);
gfx_rfb *gfx_server_rfb(gfx_server *s); /* NULL without RFB */
/* An epoll fd to wait on (viewers); dispatch() handles it and serves. */
int gfx_server_fd(const gfx_server *s);
int gfx_server_dispatch(gfx_server *s);
/* Serves ready clients in time-bank order until none is ready or
 * budget_ns of compositing has been spent. Returns how many were served. */
int gfx_server_work(gfx_server *s, int64_t budget_ns);
bool gfx_server_has_work(const gfx_server *s);
int gfx_server_snapshot(gfx_server *s, const char *path);
/* {"width":..,"clients":[{"caller":..,"used_ns":..,"waits":..,...}]} */
struct json_object *gfx_server_stats(gfx_server *s);

/* A new client for a caller (container name) with a width x height
 * surface placed automatically and a time-bank weight (1..GFX_WEIGHT_MAX). */
int gfx_client_new(gfx_server *s, const char *caller, uint32_t width, uint32_t height,
		   uint32_t weight, gfx_client **ret);
gfx_client *gfx_client_free(gfx_client *c);
gfx_surface *gfx_client_surface(gfx_client *c);
uint32_t gfx_client_id(const gfx_client *c);
uint32_t gfx_client_border(const gfx_client *c);
/* Readable (eventfd) while input is queued for the client. */
int gfx_client_event_fd(const gfx_client *c);
int gfx_client_move(gfx_client *c, int32_t x, int32_t y);
/* Replaces the client's windows with the ones it declares (wm.h); until
 * it declares any, its whole surface is one window. */
struct gfx_window_decl;
int gfx_client_set_windows(gfx_client *c, const struct gfx_window_decl *d, size_t n);
/* Queues surface-local damage (clipped here again); a present that finds
 * the previous one still queued coalesces with it and counts as a
 * dropped frame. */
int gfx_client_present(gfx_client *c, const gfx_rect *rects, size_t n);
uint64_t gfx_client_dropped(const gfx_client *c);
const char *gfx_client_caller(const gfx_client *c);
size_t gfx_client_take_input(gfx_client *c, gfx_input_event *evs, size_t max);
void gfx_server_focus(gfx_server *s, gfx_client *c);
gfx_client *gfx_server_focused(gfx_server *s);
/* Queues an event for the client as if a viewer had sent it (the
 * clipboard's requests to the app use this). */
void gfx_client_queue(gfx_client *c, const gfx_input_event *ev);
/* Hooks before routing (the clipboard, clipboard.h): key() returns true
 * for a key it takes (never routed); cut_text() gets a viewer's clipboard
 * text as UTF-8. */
typedef struct gfx_server_hooks {
	bool (*key)(void *ud, bool down, uint32_t keysym);
	void (*cut_text)(void *ud, const char *utf8, size_t len);
	void *ud;
} gfx_server_hooks;
void gfx_server_set_hooks(gfx_server *s, const gfx_server_hooks *h);
/* Input as an RFB viewer delivers it, in desktop coordinates. */
void gfx_server_key(gfx_server *s, bool down, uint32_t keysym);
void gfx_server_pointer(gfx_server *s, uint8_t buttons, int32_t x, int32_t y);

/* ---- handover (server_handover.c): a restarted proxy keeps its clients --
 * save(): the desktop's size, every client with its surface memfd and
 * input eventfd (as fds through add), the windows bottom to top, and the
 * RFB side (gfx_rfb_save; freeze it first). restore_clients(), in a
 * server made with .adopt: the clients again, with the same surfaces,
 * places, stacking and focus; clients[i] is the saved client i (at most
 * max; *ret_n made, freed by the caller's gfx_client_free on failure).
 * abandon(): after the handover, lets go of what the new process owns. */
struct json_object *gfx_server_save(gfx_server *s, gfx_fd_add_fn add, void *ud, scm_error **ret_err);
int gfx_server_restore_clients(gfx_server *s, struct json_object *st, gfx_fd_take_fn take, void *ud,
			       gfx_client **clients, size_t max, size_t *ret_n, scm_error **ret_err);
void gfx_server_abandon(gfx_server *s);
/* In a server made with .adopt: the predecessor's size and, with RFB,
 * listening sockets (taken in every case) and secrets (gfx_rfb_adopt). */
int gfx_server_adopt(gfx_server *s, int rfb_fd, int ws_fd, const char *password, const char *viewonly,
		     const char *token, uint32_t width, uint32_t height);
/* The client's index in the last save(). */
int32_t gfx_client_ho_index(const gfx_client *c);
