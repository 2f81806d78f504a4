/* rfb_ws_handover.c: a websocket viewer carried over a proxy restart
 * (rfb_handover.c has the rest; docs/gfx.md "Restarting the proxy").
 *
 * libvncserver 0.9.14 keeps a websocket's framing state in cl->wsctx, a
 * ws_ctx_t (libvncserver/ws_decode.h) it does not install: the frame
 * being decoded (its header bytes read so far, the payload bytes still
 * to come, up to 3 masked bytes carried over, the decoded bytes not yet
 * handed to the RFB reader), the opcode of a fragmented message, and
 * whether frames are base64 text (subprotocol "base64") or binary. What
 * it writes goes out whole (rfbWriteExact), so only the reading side can
 * be mid-frame. A viewer is carried only when that side is at a frame
 * boundary with nothing buffered: then a fresh context, made by the same
 * upgrade replayed on a socketpair, is the same as the old one. One that
 * is mid-frame, or base64, stays behind (closed; it reconnects) and is
 * counted.
 *
 * The layout below is 0.9.14's (Debian 12's; built against another
 * release, it is not used at all); it is checked on every use (the context
 * points back at its client, its functions are set, its state is one of
 * the decoder's): with another layout no websocket is carried. */
#include <errno.h>
#include <poll.h>
#include <rfb/rfb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>

#include "rfb_private.h"

#define LV_WSHLENMAX 14
#define LV_B64LEN(x) ((((x) + 2) / 3) * 12 / 3)

struct lv_ws_header_data {
	void *data;
	int nRead;
	uint32_t mask;
	int headerLen;
	uint64_t payloadLen;
	unsigned char opcode, fin;
};

struct lv_ws_ctx {
	char codeBufDecode[2048 + LV_WSHLENMAX];
	char codeBufEncode[LV_B64LEN(UPDATE_BUF_SIZE) + LV_WSHLENMAX];
	char *writePos;
	unsigned char *readPos;
	int readlen;
	int hybiDecodeState;
	char carryBuf[3];
	int carrylen;
	int base64;
	struct lv_ws_header_data header;
	uint64_t nReadPayload;
	unsigned char continuation_opcode;
	void *encode, *decode;
	struct {
		void *ctxPtr;
		void *readFunc;
	} ctxInfo;
};

enum { LV_HEADER_PENDING = 0, LV_ERR = 5, LV_OPCODE_INVALID = 0xFF };

int gfx_rfb_ws_state(rfbClientPtr cl)
{
	const struct lv_ws_ctx *w = (const void *)cl->wsctx;
	if (!w)
		return GFX_WS_NONE;
	/* the layout is 0.9.14's: built against another release, nothing is
	 * read from it */
	if (strcmp(LIBVNCSERVER_VERSION, "0.9.14") != 0)
		return GFX_WS_UNKNOWN;
	if (w->ctxInfo.ctxPtr != cl || !w->ctxInfo.readFunc || !w->encode || !w->decode ||
	    w->hybiDecodeState < LV_HEADER_PENDING || w->hybiDecodeState > LV_ERR || (w->base64 & ~1) || !cl->wspath)
		return GFX_WS_UNKNOWN;
	if (w->base64)
		return GFX_WS_BASE64;
	if (w->hybiDecodeState != LV_HEADER_PENDING || w->header.nRead != 0 || w->readlen != 0 || w->carrylen != 0 ||
	    w->continuation_opcode != LV_OPCODE_INVALID || webSocketsHasDataInBuffer(cl))
		return GFX_WS_MIDFRAME;
	return GFX_WS_QUIET;
}

int gfx_ws_fake_upgrade(int fd, const char *path)
{
	uint8_t k[16];
	char key[25], req[GFX_WS_REQUEST_MAX + 256];
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		return -EIO;
	size_t o = 0;
	for (size_t i = 0; i < 15; i += 3) {
		uint32_t v = (uint32_t)k[i] << 16 | (uint32_t)k[i + 1] << 8 | k[i + 2];
		key[o++] = b64[v >> 18], key[o++] = b64[(v >> 12) & 63], key[o++] = b64[(v >> 6) & 63], key[o++] = b64[v & 63];
	}
	key[o++] = b64[k[15] >> 2], key[o++] = b64[(k[15] & 3) << 4], key[o++] = '=', key[o++] = '=', key[o] = 0;
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
			 "Sec-WebSocket-Protocol: binary\r\n\r\n", path, key);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	return send(fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -EPIPE;
}

int gfx_recv_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 2000) <= 0)
			return -ETIMEDOUT;
		ssize_t k = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);
		if (k <= 0)
			return k == 0 ? -EPIPE : -errno;
		got += (size_t)k;
	}
	return 0;
}

int gfx_ws_fake_response(int fd)
{
	char buf[1024];
	size_t n = 0;
	/* byte by byte: what follows the blank line is framed */
	while (n < sizeof(buf)) {
		int e = gfx_recv_exact(fd, buf + n, 1);
		if (e < 0)
			return e;
		n++;
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return n > 12 && memcmp(buf, "HTTP/1.1 101", 12) == 0 ? 0 : -EPROTO;
	}
	return -EPROTO;
}

int gfx_ws_fake_send(int fd, const void *buf, size_t n)
{
	uint8_t f[8 + 4 + 128];
	if (n > 125 || n == 0)
		return -EINVAL;
	uint8_t mask[4];
	if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
		return -EIO;
	f[0] = 0x82, f[1] = (uint8_t)(0x80 | n);
	memcpy(f + 2, mask, 4);
	for (size_t i = 0; i < n; i++)
		f[6 + i] = ((const uint8_t *)buf)[i] ^ mask[i % 4];
	return send(fd, f, 6 + n, MSG_NOSIGNAL) == (ssize_t)(6 + n) ? 0 : -EPIPE;
}

int gfx_ws_fake_read(int fd, uint64_t *left, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		if (*left == 0) {
			uint8_t h[8];
			int e = gfx_recv_exact(fd, h, 2);
			if (e < 0)
				return e;
			if ((h[0] & 0x0f) != 2 || (h[1] & 0x80))
				return -EPROTO; /* binary, unmasked: what a server sends */
			uint64_t l = h[1] & 0x7f;
			size_t ext = l == 126 ? 2 : l == 127 ? 8 : 0;
			if (ext && (e = gfx_recv_exact(fd, h, ext)) < 0)
				return e;
			if (ext)
				for (size_t i = l = 0; i < ext; i++)
					l = l << 8 | h[i];
			*left = l;
			continue;
		}
		size_t k = n < *left ? n : (size_t)*left;
		int e = gfx_recv_exact(fd, p, k);
		if (e < 0)
			return e;
		p += k, n -= k, *left -= k;
	}
	return 0;
}
