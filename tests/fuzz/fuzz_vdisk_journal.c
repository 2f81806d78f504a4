/* fuzz_vdisk_journal.c: libFuzzer target for the vdisk job journal parser
 * (services/vdisk/vjob.c), which reads a file next to a disk at provider
 * start. An accepted journal must format back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vjob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vjob_journal j;
	static char out[VJOB_JOURNAL_MAX + 64];
	scm_error *why = NULL;
	int r = vjob_journal_parse((const char *)data, size, &j, &why);
	scm_error_free(why);
	if (r == 0) {
		int n = vjob_journal_format(&j, out, sizeof out);
		if (n < 0 || (size_t)n != size || memcmp(out, data, size))
			abort();
	}
	return 0;
}
