/* rfb.h: the RFB (VNC) output of the graphics proxy, RFC 6143.
 *
 * rfb_proto.c is the wire format with no I/O (so it can be fuzzed):
 * version strings, client-to-server messages, pixel formats and the
 * packing of desktop pixels into a viewer's format. rfb_server.c serves
 * viewers on a TCP socket bound to 127.0.0.1: security type None, raw
 * encoding, incremental updates from the compositor's damage. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gfx.h"

typedef struct gfx_pixfmt {
	uint8_t bpp, depth, big_endian, true_colour;
	uint16_t rmax, gmax, bmax;
	uint8_t rshift, gshift, bshift;
} gfx_pixfmt;

/* The desktop's own format: 32bpp little-endian X8R8G8B8. */
extern const gfx_pixfmt gfx_pixfmt_desktop;

enum {
	GFX_RFB_SET_PIXEL_FORMAT = 0,
	GFX_RFB_SET_ENCODINGS = 2,
	GFX_RFB_UPDATE_REQUEST = 3,
	GFX_RFB_KEY = 4,
	GFX_RFB_POINTER = 5,
	GFX_RFB_CUT_TEXT = 6,
};

#define GFX_RFB_ENCODINGS_MAX 1024u
#define GFX_RFB_CUT_TEXT_MAX (60u * 1024u)
/* The longest message the parser accepts fits in this many bytes. */
#define GFX_RFB_MSG_MAX (8u + GFX_RFB_CUT_TEXT_MAX)

typedef struct gfx_rfb_msg {
	uint8_t type;
	gfx_pixfmt pf;                 /* SET_PIXEL_FORMAT */
	uint16_t n_encodings;          /* SET_ENCODINGS */
	bool raw_listed;
	bool incremental;              /* UPDATE_REQUEST */
	uint16_t x, y, w, h;           /* UPDATE_REQUEST; x, y for POINTER */
	bool down;                     /* KEY */
	uint32_t key;
	uint8_t buttons;               /* POINTER */
	uint32_t text_len;             /* CUT_TEXT (the text is skipped) */
} gfx_rfb_msg;

/* Parses one client message at the start of buf. Returns 0 and sets
 * *ret_used when one is complete, -EAGAIN when more bytes are needed, or
 * GFX_E_INVALID with err naming the field. */
int gfx_rfb_parse_msg(const uint8_t *buf, size_t len, gfx_rfb_msg *ret, size_t *ret_used, char *err,
		      size_t err_len);
/* Checks a pixel format a viewer asked for (true colour, 8/16/32 bpp,
 * sane maxima and shifts). */
int gfx_rfb_check_pixfmt(const gfx_pixfmt *pf, char *err, size_t err_len);
void gfx_rfb_encode_pixfmt(const gfx_pixfmt *pf, uint8_t out[16]);
/* "RFB 003.00x\n" -> minor version 3, 7 or 8 (others map as RFC 6143
 * says); GFX_E_INVALID if it is not a version string. */
int gfx_rfb_parse_version(const uint8_t buf[12], int *ret_minor);
/* Packs n desktop pixels into out in format pf; returns bytes written
 * (n * bpp / 8). Unused bits of a 32bpp pixel are set, so the padding
 * byte reads 0xFF. */
size_t gfx_rfb_pack(const gfx_pixfmt *pf, const uint32_t *src, size_t n, uint8_t *out);

/* ---- server (rfb_server.c) --------------------------------------------- */

typedef struct gfx_rfb gfx_rfb;

typedef struct gfx_rfb_ops {
	void (*key)(void *userdata, bool down, uint32_t keysym);
	void (*pointer)(void *userdata, uint8_t buttons, int32_t x, int32_t y);
} gfx_rfb_ops;

#define GFX_RFB_VIEWERS_MAX 8u

/* Listens on 127.0.0.1:port (0 picks a free port) and serves the desktop
 * of c, which must outlive the server. */
int gfx_rfb_new(gfx_compositor *c, uint16_t port, const char *name, const gfx_rfb_ops *ops,
		void *userdata, gfx_rfb **ret);
gfx_rfb *gfx_rfb_free(gfx_rfb *r);
uint16_t gfx_rfb_port(const gfx_rfb *r);
/* An epoll fd: readable when dispatch() has work. */
int gfx_rfb_fd(const gfx_rfb *r);
int gfx_rfb_dispatch(gfx_rfb *r);
/* Tells every viewer which desktop area changed and sends what they asked for. */
void gfx_rfb_damage(gfx_rfb *r, const gfx_region *changed);
uint32_t gfx_rfb_viewers(const gfx_rfb *r);
