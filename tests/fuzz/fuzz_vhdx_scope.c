/* fuzz_vhdx_scope.c: libFuzzer target for the parent-locator path parser
 * under a grant (services/vdisk/vhdx-scope.c, vhdx_scope_rel): the paths a
 * hostile VHDX file records for its parent. Input: a child's relative path
 * and a locator, split at the first NUL. Whatever is accepted must be a
 * clean relative path: no empty, "." or ".." component, no leading or
 * doubled slash, nothing a lookup beneath the grant could climb out with. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx-internal.h"

static void check_clean(const char *rel)
{
	if (!rel[0] || rel[0] == '/' || strstr(rel, "//") || strchr(rel, '\\'))
		abort();
	const char *p = rel;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			abort();
		p += n;
		if (*p == '/') {
			p++;
			if (!*p)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *buf = malloc(size + 2);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = 0;
	const char *child = buf, *loc = buf + strlen(buf) + 1;
	struct vhdx_scope s = { .dirfd = -1, .dir = "/srv/disks", .dir_real = "/data/disks" };
	char *rel = NULL;
	/* the child's rel is itself one the parser made from a top path */
	char *crel = NULL;
	if (vhdx_scope_rel(&s, NULL, child[0] == '/' ? child : "/srv/disks/c.vhdx", &crel) == 0) {
		check_clean(crel);
		for (int abs = 0; abs < 2; abs++) {
			if (vhdx_scope_rel(&s, abs ? NULL : crel, loc, &rel) == 0) {
				check_clean(rel);
				free(rel);
			}
		}
	}
	free(crel);
	free(buf);
	return 0;
}
