/* vencrypt.h: the part of the RFB handshake the proxy speaks itself when
 * it offers TLS (VeNCrypt), before libvncserver sees a connection.
 *
 * libvncserver 0.9.14 has no VeNCrypt server side, so the proxy's TLS
 * worker (tls.c) greets the viewer, offers the security types the
 * configuration allows (VeNCrypt first when it allows TLS, as TigerVNC's
 * Xvnc does), reads the viewer's choices, and then either runs a TLS
 * handshake (TLSVnc: anonymous TLS; X509Vnc: the desktop's certificate)
 * or, for plain VNC authentication, hands over at once. Either way
 * libvncserver is then given a replayed ProtocolVersion and the choice of
 * VNC authentication, so it does the VNC authentication (through TLS when
 * there is TLS) and everything after it: on a socketpair the worker
 * relays with TLS, on the viewer's own socket without (rfb_handover.c).
 *
 * This file is that dialogue as a state machine on bytes, with no I/O:
 * gfx_venc_feed() takes what the viewer sent and queues the answer. It
 * never consumes bytes past the viewer's last choice (what follows is
 * the TLS ClientHello), and it has a fuzz target. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gfx.h"

#define GFX_SEC_VNCAUTH 2u    /* RFB security type: VNC authentication */
#define GFX_SEC_VENCRYPT 19u  /* RFB security type: VeNCrypt */
#define GFX_VENC_TLSVNC 258u  /* VeNCrypt: anonymous TLS, then VNC authentication */
#define GFX_VENC_X509VNC 261u /* VeNCrypt: x509 TLS, then VNC authentication */

#define GFX_SEC_TYPES_MAX 3u

/* What a server offers, in order of preference: GFX_SEC_VNCAUTH,
 * GFX_VENC_TLSVNC, GFX_VENC_X509VNC, each at most once. */
typedef struct gfx_sec_types {
	uint32_t n;
	uint32_t t[GFX_SEC_TYPES_MAX];
} gfx_sec_types;

/* TigerVNC's SecurityTypes spelling, comma-separated, case-insensitive:
 * "X509Vnc,TLSVnc,VncAuth". Refuses an empty list, an unknown or
 * repeated name (GFX_E_INVALID, naming it). */
int gfx_sec_types_parse(const char *s, gfx_sec_types *ret, scm_error **ret_err);
/* The shorthand (docs/gfx.md, "TLS"): "required" = X509Vnc,TLSVnc;
 * "preferred" = TLSVnc,VncAuth (TigerVNC Xvnc's default), with X509Vnc
 * first when a certificate is configured (have_cert); "off" = VncAuth.
 * Viewers that support X509Vnc refuse a certificate they cannot verify
 * instead of falling back (gtk-vnc, libvncclient), so X509Vnc with the
 * made-up certificate is offered only where TLS is required. */
int gfx_sec_types_for_mode(const char *mode, bool have_cert, gfx_sec_types *ret, scm_error **ret_err);
bool gfx_sec_types_has(const gfx_sec_types *t, uint32_t type);
bool gfx_sec_types_tls(const gfx_sec_types *t); /* any VeNCrypt subtype */
/* "X509Vnc,TLSVnc,VncAuth" into buf. */
void gfx_sec_types_format(const gfx_sec_types *t, char *buf, size_t n);

enum gfx_venc_state {
	GFX_VENC_VERSION,     /* waiting for the viewer's ProtocolVersion */
	GFX_VENC_SECTYPE,     /* for its security type (3.7, 3.8) */
	GFX_VENC_VEN_VERSION, /* for its VeNCrypt version */
	GFX_VENC_SUBTYPE,     /* for its VeNCrypt subtype */
	GFX_VENC_TLS,         /* done: a TLS handshake for v->subtype follows */
	GFX_VENC_PLAIN,       /* done: plain VNC authentication */
	GFX_VENC_FAILED,      /* done: send out, then close; why says why */
};

typedef struct gfx_venc {
	enum gfx_venc_state state;
	gfx_sec_types types;
	unsigned minor;   /* the viewer's RFB 3.x: 3, 7 or 8 */
	uint32_t subtype; /* GFX_VENC_TLS: the one chosen */
	uint8_t in[12];   /* the message being read */
	size_t in_len;
	uint8_t out[128]; /* what to send the viewer next */
	size_t out_len;
	char why[96];     /* GFX_VENC_FAILED */
} gfx_venc;

/* Starts a dialogue: the server's ProtocolVersion (3.8) is queued. */
void gfx_venc_init(gfx_venc *v, const gfx_sec_types *types);
/* How many bytes the current message still lacks (0 when done): read
 * no more than this, so the TLS handshake's bytes stay in the socket. */
size_t gfx_venc_need(const gfx_venc *v);
/* Takes up to len bytes (never more than the current message lacks);
 * returns how many it took. Appends to out what to send back. */
size_t gfx_venc_feed(gfx_venc *v, const uint8_t *buf, size_t len);
/* What the worker writes to libvncserver's end once it hands over: the
 * ProtocolVersion the viewer spoke and, from 3.7 on, the choice of VNC
 * authentication. Returns its length. */
size_t gfx_venc_replay(const gfx_venc *v, uint8_t buf[13]);
/* What libvncserver answers that replay with, which the worker checks and
 * drops: its ProtocolVersion, then (3.7+) its list of one security type,
 * VNC authentication. For 3.3 the 32-bit type it sends next goes on to
 * the viewer, who has not seen one. */
size_t gfx_venc_greeting(const gfx_venc *v, uint8_t buf[16]);
