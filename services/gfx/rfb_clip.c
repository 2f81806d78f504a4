/* rfb_clip.c: text between the RFB clipboard messages and UTF-8.
 *
 * ClientCutText and ServerCutText carry Latin-1 (RFC 6143 6.4.6, 6.5.4);
 * libvncserver's extended clipboard carries UTF-8. The desktop clipboard
 * holds UTF-8, so Latin-1 is widened on the way in, and characters
 * outside it become '?' on the way out (for viewers without the
 * extension). */
#include <stdlib.h>

#include "rfb.h"

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
