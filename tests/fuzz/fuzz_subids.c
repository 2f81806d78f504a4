/* fuzz_subids.c: libFuzzer target for the subordinate id parsers: an
 * /etc/subuid-style text (looked up by name and by number) and the
 * START:COUNT option. Whatever they accept must be a range that holds
 * neither host id 0 nor (uid_t)-1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(uint64_t start, uint64_t count)
{
	if (start == 0 || count == 0 || start + count > 4294967295ull)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t start = 0, count = 0;
	if (container_subid_find((const char *)data, size, "scm", 1000, &start, &count) == 0)
		check(start, count);
	if (container_subid_find((const char *)data, size, NULL, 0, &start, &count) == 0)
		check(start, count);
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	container_idrange r;
	if (container_idrange_parse(s, &r) == 0) {
		check(r.uid_start, r.uid_count);
		check(r.gid_start, r.gid_count);
	}
	free(s);
	return 0;
}
