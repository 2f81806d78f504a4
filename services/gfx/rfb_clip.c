/* rfb_clip.c: text between the RFB clipboard messages and UTF-8, and the
 * RFB server's clipboard hooks.
 *
 * ClientCutText and ServerCutText carry Latin-1 (RFC 6143 6.4.6, 6.5.4);
 * libvncserver's extended clipboard carries UTF-8. The desktop clipboard
 * holds UTF-8, so Latin-1 is widened on the way in, and characters
 * outside it become '?' on the way out (for viewers without the
 * extension). */
#include <rfb/rfb.h>
#include <stdlib.h>

#include "rfb_private.h"

char *gfx_latin1_to_utf8(const char *in, size_t len, size_t *ret_len)
{
	char *out = malloc(2 * len + 1);
	size_t n = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x80) {
			out[n++] = (char)c;
		} else {
			out[n++] = (char)(0xc0 | (c >> 6));
			out[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[n] = '\0';
	*ret_len = n;
	return out;
}

char *gfx_utf8_to_latin1(const char *in, size_t len, size_t *ret_len)
{
	char *out = malloc(len + 1);
	size_t n = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x80) {
			out[n++] = (char)c;
			i++;
			continue;
		}
		/* a two-byte form of U+0080..U+00FF, else one '?' per character */
		if ((c == 0xc2 || c == 0xc3) && i + 1 < len && ((unsigned char)in[i + 1] & 0xc0) == 0x80) {
			out[n++] = (char)(((c & 0x1f) << 6) | ((unsigned char)in[i + 1] & 0x3f));
			i += 2;
			continue;
		}
		out[n++] = '?';
		for (i++; i < len && ((unsigned char)in[i] & 0xc0) == 0x80; i++)
			;
	}
	out[n] = '\0';
	*ret_len = n;
	return out;
}

/* A viewer's clipboard (the desktop clipboard decides what becomes of it).
 * View-only viewers give no input, and this is input. */
void gfx_rfb_on_cut_text_utf8(char *str, int len, rfbClientPtr cl)
{
	gfx_rfb *r = cl->screen->screenData;
	if (!cl->viewOnly && len >= 0 && r->ops.cut_text)
		r->ops.cut_text(r->userdata, str, (size_t)len);
}

void gfx_rfb_on_cut_text(char *str, int len, rfbClientPtr cl)
{
	size_t n;
	char *u = len >= 0 ? gfx_latin1_to_utf8(str, (size_t)len, &n) : NULL;
	if (u && n <= INT32_MAX)
		gfx_rfb_on_cut_text_utf8(u, (int)n, cl);
	free(u);
}

/* Not rfbSendServerCutText(): it writes to every connection, those still
 * in the handshake (no password shown yet) and view-only ones included.
 * The clipboard goes to authenticated full viewers only, as plain
 * (Latin-1) ServerCutText, which extended-clipboard viewers read too. */
void gfx_rfb_send_cut_text(gfx_rfb *r, const char *utf8, size_t len)
{
	size_t n;
	char *l1 = len <= INT32_MAX ? gfx_utf8_to_latin1(utf8, len, &n) : NULL;
	if (!l1)
		return;
	rfbServerCutTextMsg sct = { .type = rfbServerCutText, .length = Swap32IfLE((uint32_t)n) };
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		if (cl->state != RFB_NORMAL || cl->viewOnly || cl->sock < 0)
			continue;
		if (rfbWriteExact(cl, (char *)&sct, sz_rfbServerCutTextMsg) < 0 || rfbWriteExact(cl, l1, (int)n) < 0)
			rfbCloseClient(cl);
	}
	rfbReleaseClientIterator(it);
	free(l1);
}
