/* rfb.h: the RFB (VNC) output of the graphics proxy.
 *
 * rfb_server.c serves the compositor's framebuffer with libvncserver
 * (Tight with JPEG, ZRLE, zlib, CopyRect, the cursor pseudo-encoding and
 * websockets come from it), on two TCP sockets bound to 127.0.0.1: one for
 * RFB viewers, one for noVNC's websocket. Every viewer authenticates with
 * VNC authentication, on the RFB port inside TLS (VeNCrypt, tls.h) when
 * the configuration offers it; there is no security type None. A websocket is
 * refused before its upgrade unless its request names the session's token
 * (wsreq.c parses that request line: it is the one thing the proxy parses
 * itself on this side, and it has a fuzz target). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gfx.h"
#include "vencrypt.h"

struct json_object;

/* ---- the websocket request line (wsreq.c, no I/O) ---------------------- */

#define GFX_WS_REQUEST_MAX 2048u
#define GFX_RFB_PASSWORD_LEN 8u /* VNC authentication uses 8 characters */
#define GFX_RFB_TOKEN_LEN 32u

/* Parses "GET /path?query HTTP/1.1\r\n" at the start of buf into the
 * request target (NUL-terminated, at most path_len - 1 bytes). Returns 0,
 * -EAGAIN while the line is incomplete, or GFX_E_INVALID with *ret_err naming
 * what is wrong (not GET, no HTTP/1.x, a target too long or not
 * starting with '/', a control byte). */
int gfx_ws_parse_request(const uint8_t *buf, size_t len, char *path, size_t path_len, scm_error **ret_err);
/* True when the target's query has token=TOKEN, compared in constant time. */
bool gfx_ws_token_matches(const char *path, const char *token);
/* Fills out (n - 1 characters and a NUL) with random letters and digits
 * from getrandom(2). */
int gfx_random_secret(char *out, size_t n);

/* ---- server (rfb_server.c) --------------------------------------------- */

typedef struct gfx_rfb gfx_rfb;

typedef struct gfx_rfb_ops {
	void (*key)(void *userdata, bool down, uint32_t keysym);
	void (*pointer)(void *userdata, uint8_t buttons, int32_t x, int32_t y);
	/* A viewer's clipboard (ClientCutText), as UTF-8; not from view-only viewers. */
	void (*cut_text)(void *userdata, const char *utf8, size_t len);
	/* A viewer resized the desktop (the compositor has its new size and
	 * is about to be redrawn): the windows are put back within reach.
	 * NULL: nothing to do. */
	void (*resized)(void *userdata);
} gfx_rfb_ops;

typedef struct gfx_rfb_config {
	uint16_t port;                 /* RFB; 0 picks a free port */
	uint16_t ws_port;              /* websocket; 0 picks a free port */
	const char *name;              /* desktop name shown by viewers */
	/* VNC authentication: full access, and view-only (NULL: none). An
	 * empty or NULL password makes one up; read it back with
	 * gfx_rfb_password(). */
	const char *password, *viewonly_password;
	const char *token;             /* websocket token; NULL makes one up */
	/* Security type None: only for the engine's benches and unit tests,
	 * never set by the proxy. */
	bool insecure_no_auth;
	/* Viewers (not view-only ones) may resize the desktop with
	 * SetDesktopSize (ExtendedDesktopSize); otherwise it is refused as
	 * prohibited. */
	bool resize;
	/* Security types on the RFB port (vencrypt.h), in order. None given
	 * (n == 0) or VncAuth alone: VNC authentication by libvncserver on
	 * the accepted socket. With TLSVnc or X509Vnc, connections go through
	 * the TLS worker (tls.h) first. */
	gfx_sec_types security;
	const char *tls_cert, *tls_key; /* X509Vnc: PEM files; NULL: made up */
	/* Why a connection was refused before libvncserver saw it (from the
	 * TLS worker's thread); NULL: not said. */
	void (*log)(void *ud, const char *line);
	void *log_ud;
	/* A restarted proxy (rfb_handover.c): no listening sockets until
	 * gfx_rfb_adopt() gives it its predecessor's (port, ws_port unused). */
	bool adopt;
} gfx_rfb_config;

#define GFX_RFB_RESIZE_MIN 64u /* as desktop specs: 64..8192 */

#define GFX_RFB_VIEWERS_MAX 16u /* authenticated viewers */
#define GFX_RFB_PREAUTH_MAX 8u  /* connections still in the handshake */

/* Serves the desktop of c, which must outlive the server. */
int gfx_rfb_new(gfx_compositor *c, const gfx_rfb_config *cfg, const gfx_rfb_ops *ops, void *userdata,
		gfx_rfb **ret);
gfx_rfb *gfx_rfb_free(gfx_rfb *r);
/* rfb_clip.c: Latin-1 (the RFB cut text) and UTF-8; malloc'd, NUL-ended. */
char *gfx_latin1_to_utf8(const char *in, size_t len, size_t *ret_len);
char *gfx_utf8_to_latin1(const char *in, size_t len, size_t *ret_len);
/* Sends text (UTF-8) to every viewer's clipboard (ServerCutText; Latin-1
 * for viewers without the extended clipboard). */
void gfx_rfb_send_cut_text(gfx_rfb *r, const char *utf8, size_t len);
uint16_t gfx_rfb_port(const gfx_rfb *r);
uint16_t gfx_rfb_ws_port(const gfx_rfb *r);
const char *gfx_rfb_password(const gfx_rfb *r);
const char *gfx_rfb_viewonly_password(const gfx_rfb *r);
const char *gfx_rfb_token(const gfx_rfb *r);
/* An epoll fd: readable when dispatch() has work. */
int gfx_rfb_fd(const gfx_rfb *r);
int gfx_rfb_dispatch(gfx_rfb *r);
/* Makes gfx_rfb_fd() readable at t (CLOCK_MONOTONIC ns) for the caller's
 * own deadline (a drag's pending motion); one at a time, 0 cancels. */
void gfx_rfb_wake_at(gfx_rfb *r, int64_t t);
/* Tells every viewer which desktop area changed and sends what they
 * asked for: moved pixels as CopyRect to viewers that take it, and
 * nothing for parts that did not change (copyfind.c). */
void gfx_rfb_damage(gfx_rfb *r, const gfx_region *changed);
/* Viewers past authentication. */
uint32_t gfx_rfb_viewers(const gfx_rfb *r);
/* [{"address":..,"websocket":..,"view_only":..,"encoding":"tight",
 *   "bytes_sent":N,"bytes_if_raw":N,"rects":{"zrle":N,...}}] */
struct json_object *gfx_rfb_viewers_json(gfx_rfb *r);
/* Per encoding, everything sent so far to every viewer (gone or not):
 * {"zrle":{"rects":N,"bytes":N,"bytes_if_raw":N},...} */
struct json_object *gfx_rfb_encodings_json(gfx_rfb *r);
/* Websocket connections refused for a wrong or missing token, and
 * viewers that failed authentication. */
uint64_t gfx_rfb_refused(const gfx_rfb *r);
/* The security types offered ("X509Vnc,TLSVnc,VncAuth"), and the
 * X509Vnc certificate's SHA-256 fingerprint (64 hex digits) and PEM; ""
 * without X509Vnc. */
const char *gfx_rfb_security(const gfx_rfb *r);
const char *gfx_rfb_tls_fingerprint(const gfx_rfb *r);
const char *gfx_rfb_tls_cert_pem(const gfx_rfb *r);
/* Desktop resizes viewers made. */
uint64_t gfx_rfb_resizes(const gfx_rfb *r);
/* Changes sent (in part) as a CopyRect of pixels viewers had, and how
 * many pixels those copies covered. */
uint64_t gfx_rfb_copies(const gfx_rfb *r, uint64_t *ret_pixels);

/* ---- handover (rfb_handover.c): a restarted proxy keeps its viewers ---- */

/* fd_add(ud, fd): a duplicate of fd into the state, its index (>= 0) or
 * a negative errno; fd_take(ud, index): the fd at index, or < 0. */
typedef int (*gfx_fd_add_fn)(void *ud, int fd);
typedef int (*gfx_fd_take_fn)(void *ud, int64_t index);
/* Stops (true) or resumes (false) all reading and writing of viewers and
 * of the listening sockets; resuming sends what changed meanwhile. */
void gfx_rfb_freeze(gfx_rfb *r, bool frozen);
bool gfx_rfb_frozen(const gfx_rfb *r);
/* The secrets, the listening sockets and every viewer that can be
 * carried (plain VNC authentication, on the RFB port or a binary
 * websocket at a frame boundary, in its normal phase): {"password",
 * "viewonly","token","rfb_fd","ws_fd","viewers":[{"fd","host",
 * "view_only","requested","format":[..16 bytes],"encodings":[..],
 * "ws_path" (websockets only)}],"left":N,"ws_left":N}. Viewers left (TLS,
 * websockets mid-frame or base64, in the handshake) are closed with the
 * old process. Call frozen. NULL with *ret_err on failure. */
struct json_object *gfx_rfb_save(gfx_rfb *r, gfx_fd_add_fn add, void *ud, scm_error **ret_err);
/* Takes the viewers of a saved state into a server made with .adopt:
 * each one's socket goes on, without a new handshake for its viewer. A
 * viewer that cannot be taken is closed (counted in *ret_dropped);
 * *ret_ws: how many of the carried are websockets. */
int gfx_rfb_restore_viewers(gfx_rfb *r, struct json_object *viewers, gfx_fd_take_fn take, void *ud,
			    uint32_t *ret_carried, uint32_t *ret_dropped, uint32_t *ret_ws);
/* In a server made with .adopt, before any viewer: the predecessor's
 * listening sockets (taken in every case, checked to be listening TCP
 * sockets), secrets and desktop size. */
int gfx_rfb_adopt(gfx_rfb *r, int rfb_fd, int ws_fd, const char *password, const char *viewonly, const char *token,
		  uint32_t width, uint32_t height);
/* After a handover: closes every viewer's and listening socket without
 * ending its connection (no shutdown), which the new process now owns. */
void gfx_rfb_abandon(gfx_rfb *r);
