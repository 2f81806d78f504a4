/* fuzz_zpool_frame.c: libFuzzer target for what reads a compressed log
 * file back: zpool_decompress (a frame whose header states its size, with
 * a cap). It must refuse what is not one frame of at most the cap, and
 * what it accepts must stay within the cap. */
#include <stdint.h>
#include <stdlib.h>

#include "zpool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *out = NULL;
	size_t n = 0;
	if (zpool_decompress(data, size, 1 << 20, &out, &n) == 0) {
		if (n > (1 << 20))
			abort();
		free(out);
	}
	return 0;
}
