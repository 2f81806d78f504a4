/* fuzz_vdisk_migmap.c: libFuzzer target for the live migration's
 * correspondence record parser (services/vdisk/vmap.c), which the vdisk
 * provider reads from beside a disk. An accepted record must format back
 * to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmap m;
	scm_error *why = NULL;
	int r = vmap_parse((const char *)data, size, &m, &why);
	scm_error_free(why);
	if (r == 0) {
		char *out = NULL;
		size_t n = 0;
		if (vmap_format(&m, &out, &n) < 0 || n != size || memcmp(out, data, size))
			abort();
		free(out);
		vmap_clear(&m);
	}
	return 0;
}
