/* fuzz_gfx_rfb.c: the RFB client-message parser, version strings and
 * pixel packing on arbitrary bytes. A message the parser accepts must
 * claim no more bytes than it was given; a pixel format it accepts must
 * pack without writing past n * bpp / 8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int minor;
	char err[160];
	if (size >= 12)
		(void)gfx_rfb_parse_version(data, &minor);
	size_t off = 0;
	while (off < size) {
		gfx_rfb_msg m;
		size_t used = 0;
		int r = gfx_rfb_parse_msg(data + off, size - off, &m, &used, err, sizeof(err));
		if (r != 0)
			break;
		if (used == 0 || used > size - off)
			abort();
		if (m.type == GFX_RFB_SET_PIXEL_FORMAT) {
			uint32_t px[4] = { 0xFF000000, 0xFFFFFFFF, 0xFF123456, 0xFF808080 };
			uint8_t *out = malloc(4 * (m.pf.bpp / 8));
			if (!out)
				abort();
			if (gfx_rfb_pack(&m.pf, px, 4, out) != 4u * (m.pf.bpp / 8))
				abort();
			free(out);
		}
		off += used;
	}
	return 0;
}
