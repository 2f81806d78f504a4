/* rfb_private.h: what rfb_server.c (the sockets, libvncserver's hooks,
 * the handshake gate), rfb_stats.c (the getters and the JSON of `stats`),
 * rfb_clip.c (the clipboard hooks), rfb_accept.c (new
 * connections) and rfb_update.c (what goes to viewers
 * when) share: the server's record. Not for anyone else. */
#pragma once
#include <rfb/rfb.h>
#include <stdint.h>
#include <time.h>

#include "rfb.h"
#include "tls.h"

#define WS_PENDING_MAX 8u

/* Ours per libvncserver client (cl->clientData). */
typedef struct client_extra {
	int64_t since;
	bool held; /* on hold, watched edge-triggered */
	bool tls;  /* relayed by the TLS worker, with TLS */
	/* taken over from the proxy's predecessor (rfb_handover.c): its
	 * viewer's zlib streams are elsewhere, so no encoding that keeps any */
	bool carried;
	bool relayed; /* through the TLS worker's socketpair (TLS or not): not carried */
	/* rfb_update.c's small updates held back (CLOCK_MONOTONIC ns, 0:
	 * none): a pointer position alone waiting since, frames alone
	 * waiting since, the last update sent. */
	int64_t cursor_since, frames_since, last_sent;
} client_extra;

/* What viewers that have left were sent, per encoding. */
#define ENC_SLOTS 12
typedef struct enc_total {
	uint64_t rects, bytes, bytes_if_raw;
} enc_total;

typedef struct ws_pending {
	int fd;
	int64_t since;
} ws_pending;

struct gfx_rfb {
	gfx_compositor *comp;
	rfbScreenInfoPtr screen;
	int rfb_fd, ws_fd, epfd, timer_fd;
	uint16_t port, ws_port;
	char password[GFX_RFB_PASSWORD_LEN + 1], viewonly[GFX_RFB_PASSWORD_LEN + 1];
	char token[GFX_RFB_TOKEN_LEN + 1];
	char *passwords[3];
	gfx_rfb_ops ops;
	void *userdata;
	ws_pending pending[WS_PENDING_MAX];
	bool accepting_ws; /* rfbNewClient() is taking a checked websocket */
	gfx_tls *tls;      /* VeNCrypt: NULL when only VncAuth is offered */
	const char *relay_peer; /* rfbNewClient() is taking a relayed viewer */
	bool relay_tls;
	bool relaying; /* rfbNewClient() is taking a connection from the TLS worker */
	char security[64];
	bool resize;
	uint64_t refused, resizes;
	enc_total sent[ENC_SLOTS];
	/* The desktop as viewers were last told about it (every change goes
	 * through gfx_rfb_damage): what a CopyRect's source holds on their
	 * side, and what need not be sent again. NULL: no memory for it,
	 * every change is sent as it comes. */
	uint32_t *shadow;
	uint64_t copies, copied_px;
	bool ticking; /* the timer ticks each second (handshakes, websockets) */
	int64_t wake; /* held-back updates are due (CLOCK_MONOTONIC ns, 0: none) */
	int64_t wake_user; /* gfx_rfb_wake_at()'s deadline (0: none) */
	/* A handover is saving or saved us (rfb_handover.c): the viewers and
	 * the listening sockets are not ours to touch until thawed. */
	bool frozen;
};

/* rfb_clip.c: libvncserver's hooks for a viewer's clipboard (Latin-1 and
 * UTF-8). */
void gfx_rfb_on_cut_text(char *str, int len, rfbClientPtr cl);
void gfx_rfb_on_cut_text_utf8(char *str, int len, rfbClientPtr cl);
/* rfb_stats.c: adds what a leaving viewer was sent to the totals. */
void gfx_rfb_stats_gone(gfx_rfb *r, rfbClientPtr cl);
/* What each fd in the server's epoll set is: the kind in the tag's high
 * half, the fd in the low one. */
enum { TAG_RFB_LISTEN = 1, TAG_WS_LISTEN, TAG_CLIENT, TAG_WS_PENDING, TAG_TIMER, TAG_TLS };
static inline uint64_t gfx_rfb_tag(int kind, int fd)
{
	return (uint64_t)kind << 32 | (uint32_t)fd;
}
static inline int64_t gfx_rfb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* How long a websocket may take to send its request line. */
#define WS_PENDING_NS (10LL * 1000000000LL)

/* rfb_accept.c: a new connection on a listening socket (ws: the websocket
 * port), a pending websocket's request line checked for the token, the
 * viewers the TLS worker has brought to VNC authentication, and a pending
 * websocket closed. */
void gfx_rfb_accept(gfx_rfb *r, int lfd, bool ws);
void gfx_rfb_ws_check(gfx_rfb *r, int fd);
void gfx_rfb_take_relayed(gfx_rfb *r);
void gfx_rfb_pending_drop(gfx_rfb *r, size_t i);
/* rfb_ws_handover.c: n bytes from a socket of the replayed handshake, each
 * wait at most 2 s: 0, -ETIMEDOUT, -EPIPE (closed) or -errno. */
int gfx_recv_exact(int fd, void *buf, size_t n);
/* rfb_handover.c: a carried viewer's encoding, after libvncserver read
 * what it asked for. */
void gfx_rfb_carried_fixup(gfx_rfb *r);
/* rfb_handover.c: a listening TCP socket of the predecessor, checked. */
int gfx_rfb_adopt_listener(int fd, uint16_t *ret_port);
/* rfb_server.c: the listening sockets into the epoll set; the shadow
 * made again from the framebuffer. */
int gfx_rfb_listen_watch(gfx_rfb *r);
void gfx_rfb_shadow_reset(gfx_rfb *r);
/* rfb_handover.c: a plain VNC-authentication viewer the TLS worker
 * brought to the choice of VNC authentication, on its own socket. */
void gfx_rfb_take_plain(gfx_rfb *r, const gfx_tls_conn *c);
/* rfb_ws_handover.c: a websocket's framing state as libvncserver 0.9.14
 * keeps it (GFX_WS_QUIET: at a frame boundary, binary, nothing buffered:
 * it can be carried), and the viewer's side of a websocket, played on a
 * socketpair: the upgrade, its answer, a frame sent, payload read. */
enum { GFX_WS_NONE, GFX_WS_QUIET, GFX_WS_MIDFRAME, GFX_WS_BASE64, GFX_WS_UNKNOWN };
int gfx_rfb_ws_state(rfbClientPtr cl);
int gfx_ws_fake_upgrade(int fd, const char *path);
int gfx_ws_fake_response(int fd);
int gfx_ws_fake_send(int fd, const void *buf, size_t n);
int gfx_ws_fake_read(int fd, uint64_t *left, void *buf, size_t n);
