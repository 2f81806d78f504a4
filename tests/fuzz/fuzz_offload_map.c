/* fuzz_offload_map.c: libFuzzer target for the checks on an offload_map
 * reply (services/vdisk/offload-map.c), the records a destination provider
 * takes from a source provider before it copies anything. The first 24
 * bytes choose from, next and the token's length; the rest are the
 * records. Whatever is accepted covers [from, next) exactly, in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offload-map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct offload_extent ex[1 + (1u << 20) / OFFLOAD_EXTENT_SIZE];
	if (size < 24 || size - 24 > (1u << 20))
		return 0;
	uint64_t v[3];
	memcpy(v, data, sizeof v);
	scm_error *why = NULL;
	int n = offload_map_parse(data + 24, size - 24, v[0], v[1], v[2], ex, &why);
	scm_error_free(why);
	if (n < 0)
		return 0;
	uint64_t at = v[0];
	for (int i = 0; i < n; i++) {
		if (ex[i].off != at || ex[i].len == 0 || ex[i].off + ex[i].len > v[2])
			abort();
		at += ex[i].len;
	}
	if (at != v[1] || n == 0)
		abort();
	return 0;
}
