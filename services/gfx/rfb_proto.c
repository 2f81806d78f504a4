/* rfb_proto.c: RFB wire format without I/O (RFC 6143 section 7).
 *
 * Everything a viewer sends is untrusted: every length is checked before
 * it is used, oversized lists and cut texts are refused, and pixel
 * formats that would make packing shift past the pixel are rejected. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rfb.h"

#define ERR(...) (snprintf(err, err_len, __VA_ARGS__), GFX_E_INVALID)

const gfx_pixfmt gfx_pixfmt_desktop = {
	.bpp = 32, .depth = 24, .big_endian = 0, .true_colour = 1,
	.rmax = 255, .gmax = 255, .bmax = 255, .rshift = 16, .gshift = 8, .bshift = 0,
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int digits3(const uint8_t *p)
{
	int v = 0;
	for (int i = 0; i < 3; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int gfx_rfb_parse_version(const uint8_t buf[12], int *ret_minor)
{
	if (memcmp(buf, "RFB ", 4) != 0 || buf[7] != '.' || buf[11] != '\n')
		return GFX_E_INVALID;
	int maj = digits3(buf + 4), min = digits3(buf + 8);
	if (maj != 3 || min < 0)
		return GFX_E_INVALID;
	/* RFC 6143 7.1.1: unknown minors below 7 behave as 3.3, above 8 as 3.8. */
	*ret_minor = min >= 8 ? 8 : min == 7 ? 7 : 3;
	return 0;
}

static void decode_pixfmt(const uint8_t *p, gfx_pixfmt *pf)
{
	*pf = (gfx_pixfmt){
		.bpp = p[0], .depth = p[1], .big_endian = p[2] != 0, .true_colour = p[3] != 0,
		.rmax = be16(p + 4), .gmax = be16(p + 6), .bmax = be16(p + 8),
		.rshift = p[10], .gshift = p[11], .bshift = p[12],
	};
}

void gfx_rfb_encode_pixfmt(const gfx_pixfmt *pf, uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = pf->bpp;
	out[1] = pf->depth;
	out[2] = pf->big_endian;
	out[3] = pf->true_colour;
	out[4] = (uint8_t)(pf->rmax >> 8), out[5] = (uint8_t)pf->rmax;
	out[6] = (uint8_t)(pf->gmax >> 8), out[7] = (uint8_t)pf->gmax;
	out[8] = (uint8_t)(pf->bmax >> 8), out[9] = (uint8_t)pf->bmax;
	out[10] = pf->rshift;
	out[11] = pf->gshift;
	out[12] = pf->bshift;
}

static int bits(uint32_t max)
{
	int b = 0;
	while (max) {
		b++;
		max >>= 1;
	}
	return b;
}

int gfx_rfb_check_pixfmt(const gfx_pixfmt *pf, char *err, size_t err_len)
{
	if (pf->bpp != 8 && pf->bpp != 16 && pf->bpp != 32)
		return ERR("pixel-format/bits-per-pixel: %u, want 8, 16 or 32", pf->bpp);
	if (!pf->true_colour)
		return ERR("pixel-format/true-colour-flag: colour maps are not supported");
	const uint16_t max[3] = { pf->rmax, pf->gmax, pf->bmax };
	const uint8_t sh[3] = { pf->rshift, pf->gshift, pf->bshift };
	const char *name[3] = { "red", "green", "blue" };
	for (int i = 0; i < 3; i++) {
		/* A max must be 2^n - 1 and the field must lie inside the pixel. */
		if (max[i] == 0 || (max[i] & (max[i] + 1u)) != 0)
			return ERR("pixel-format/%s-max: %u is not 2^n-1", name[i], max[i]);
		if (sh[i] + bits(max[i]) > pf->bpp)
			return ERR("pixel-format/%s-shift: %u puts the field outside %u bits", name[i],
				   sh[i], pf->bpp);
	}
	return 0;
}

int gfx_rfb_parse_msg(const uint8_t *buf, size_t len, gfx_rfb_msg *ret, size_t *ret_used, char *err,
		      size_t err_len)
{
	gfx_rfb_msg m = { 0 };
	size_t need;

	if (len < 1)
		return -EAGAIN;
	m.type = buf[0];
	switch (m.type) {
	case GFX_RFB_SET_PIXEL_FORMAT:
		need = 20;
		if (len < need)
			return -EAGAIN;
		decode_pixfmt(buf + 4, &m.pf);
		if (gfx_rfb_check_pixfmt(&m.pf, err, err_len))
			return GFX_E_INVALID;
		break;
	case GFX_RFB_SET_ENCODINGS:
		if (len < 4)
			return -EAGAIN;
		m.n_encodings = be16(buf + 2);
		if (m.n_encodings > GFX_RFB_ENCODINGS_MAX)
			return ERR("SetEncodings/number-of-encodings: %u, at most %u", m.n_encodings,
				   GFX_RFB_ENCODINGS_MAX);
		need = 4 + 4u * m.n_encodings;
		if (len < need)
			return -EAGAIN;
		for (uint16_t i = 0; i < m.n_encodings; i++)
			if (be32(buf + 4 + 4u * i) == 0)
				m.raw_listed = true;
		break;
	case GFX_RFB_UPDATE_REQUEST:
		need = 10;
		if (len < need)
			return -EAGAIN;
		m.incremental = buf[1] != 0;
		m.x = be16(buf + 2), m.y = be16(buf + 4), m.w = be16(buf + 6), m.h = be16(buf + 8);
		break;
	case GFX_RFB_KEY:
		need = 8;
		if (len < need)
			return -EAGAIN;
		m.down = buf[1] != 0;
		m.key = be32(buf + 4);
		break;
	case GFX_RFB_POINTER:
		need = 6;
		if (len < need)
			return -EAGAIN;
		m.buttons = buf[1];
		m.x = be16(buf + 2), m.y = be16(buf + 4);
		break;
	case GFX_RFB_CUT_TEXT:
		if (len < 8)
			return -EAGAIN;
		m.text_len = be32(buf + 4);
		if (m.text_len > GFX_RFB_CUT_TEXT_MAX)
			return ERR("ClientCutText/length: %u, at most %u", m.text_len, GFX_RFB_CUT_TEXT_MAX);
		need = 8 + (size_t)m.text_len;
		if (len < need)
			return -EAGAIN;
		break;
	default:
		return ERR("message-type: %u is not a client message this server knows", m.type);
	}
	*ret = m;
	*ret_used = need;
	return 0;
}

static inline uint32_t scale(uint32_t v8, uint32_t max)
{
	return (v8 * max + 127u) / 255u;
}

size_t gfx_rfb_pack(const gfx_pixfmt *pf, const uint32_t *src, size_t n, uint8_t *out)
{
	size_t bpp = pf->bpp / 8;
	if (pf->bpp == 32 && !pf->big_endian && pf->rmax == 255 && pf->gmax == 255 && pf->bmax == 255 &&
	    pf->rshift == 16 && pf->gshift == 8 && pf->bshift == 0) {
		/* The desktop's own layout, whose X byte is already 0xFF. */
		memcpy(out, src, n * 4);
		return n * 4;
	}
	uint32_t used = (uint32_t)pf->rmax << pf->rshift | (uint32_t)pf->gmax << pf->gshift |
			(uint32_t)pf->bmax << pf->bshift;
	uint32_t pad = pf->bpp == 32 ? ~used : 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t p = src[i];
		uint32_t v = scale((p >> 16) & 0xFF, pf->rmax) << pf->rshift |
			     scale((p >> 8) & 0xFF, pf->gmax) << pf->gshift |
			     scale(p & 0xFF, pf->bmax) << pf->bshift | pad;
		uint8_t *o = out + i * bpp;
		for (size_t b = 0; b < bpp; b++) {
			size_t byte = pf->big_endian ? bpp - 1 - b : b;
			o[b] = (uint8_t)(v >> (8 * byte));
		}
	}
	return n * bpp;
}
