/* fuzz_gfx_vencrypt.c: the VeNCrypt handshake the proxy's TLS worker
 * speaks before libvncserver (vencrypt.c), on arbitrary bytes fed in
 * arbitrary pieces, for each configured list of security types; and the
 * TigerVNC-style list parser on the same bytes. It never takes more than
 * the current message lacks, never runs past its output buffer, ends in
 * TLS only with a subtype it offered, in plain VNC authentication only
 * when offered, and a failure says why. */
#include <stdlib.h>
#include <string.h>

#include "vencrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const lists[] = { "VncAuth", "TLSVnc", "X509Vnc,TLSVnc", "TLSVnc,VncAuth", "X509Vnc,TLSVnc,VncAuth",
				     "VncAuth,X509Vnc" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* The list parser, on the input as text. */
	char text[64];
	size_t tl = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
	memcpy(text, data + 1, tl);
	text[tl] = 0;
	gfx_sec_types parsed;
	scm_error *err = NULL;
	if (gfx_sec_types_parse(text, &parsed, &err) == 0 && (parsed.n == 0 || parsed.n > GFX_SEC_TYPES_MAX))
		abort();
	scm_error_free(err);

	gfx_sec_types t;
	if (gfx_sec_types_parse(lists[data[0] % (sizeof(lists) / sizeof(lists[0]))], &t, NULL) != 0)
		abort();
	size_t piece = (size_t)(data[0] >> 4) + 1;
	gfx_venc v;
	gfx_venc_init(&v, &t);
	size_t at = 1;
	while (at < size) {
		size_t need = gfx_venc_need(&v);
		size_t k = size - at < piece ? size - at : piece;
		size_t used = gfx_venc_feed(&v, data + at, k);
		/* Something while a message is due, nothing once done. */
		if (used > k || (need > 0 && used == 0) || (need == 0 && used > 0) || v.out_len > sizeof(v.out))
			abort();
		if (used == 0)
			break;
		at += used;
		v.out_len = 0; /* sent */
	}
	switch (v.state) {
	case GFX_VENC_TLS:
		if (!gfx_sec_types_has(&t, v.subtype) || v.subtype == GFX_SEC_VNCAUTH)
			abort();
		break;
	case GFX_VENC_PLAIN:
		if (!gfx_sec_types_has(&t, GFX_SEC_VNCAUTH))
			abort();
		break;
	case GFX_VENC_FAILED:
		if (!v.why[0])
			abort();
		break;
	default: break;
	}
	if (v.state == GFX_VENC_TLS || v.state == GFX_VENC_PLAIN) {
		uint8_t r[13], g[16];
		size_t rn = gfx_venc_replay(&v, r), gn = gfx_venc_greeting(&v, g);
		if (rn < 12 || rn > 13 || memcmp(r, "RFB 003.00", 10) != 0 || gn < 12 || gn > 16)
			abort();
	}
	return 0;
}
