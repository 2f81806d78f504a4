/* fuzz_vhdx_extents.c: libFuzzer target for the readv/writev extent list
 * parser (services/vdisk/extents.c), the untrusted bytes a vdisk client
 * sends. The first 8 bytes choose the disk size and sector size; the rest
 * is the list. Every accepted extent must lie inside the disk and buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "extents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vdisk_extent ex[VDISK_EXTENTS_MAX];
	if (size < 8)
		return 0;
	uint64_t v;
	memcpy(&v, data, 8);
	uint32_t sector = (v & 1) ? 4096 : 512;
	uint64_t vsize = (v >> 1) / sector * sector, bufsize = 4u << 20;
	size_t n = 0;
	scm_error *why = NULL;
	int r = vdisk_extents_parse(data + 8, size - 8, vsize, sector, bufsize, ex, &n, &why);
	scm_error_free(why);
	if (r == 0)
		for (size_t i = 0; i < n; i++)
			if (ex[i].len == 0 || ex[i].off % sector || ex[i].len % sector || ex[i].off + ex[i].len > vsize ||
			    ex[i].off + ex[i].len < ex[i].off || ex[i].boff + ex[i].len > bufsize)
				abort();
	return 0;
}
