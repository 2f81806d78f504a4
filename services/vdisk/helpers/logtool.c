/* logtool.c: test helper that leaves a VHDX with a pending log, as a crash
 * right after the log write would: it writes a pattern, commits the
 * metadata to the log only and exits without closing.
 *   vdisk-logtool FILE OFFSET LENGTH BYTE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx.h"

/* vdisk-logtool crc FILE OFFSET SIZE: recomputes the CRC-32C field at
 * OFFSET+4 over SIZE bytes, for tests that craft hostile structures. */
static int fix_crc(const char *path, uint64_t off, size_t size)
{
	FILE *f = fopen(path, "r+e");
	uint8_t *b = malloc(size);
	if (!f || !b || fseek(f, (long)off, SEEK_SET) || fread(b, 1, size, f) != size)
		return 1;
	memset(b + 4, 0, 4);
	uint32_t c = vhdx_crc32c(0, b, size);
	uint8_t le[4] = { (uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24) };
	if (fseek(f, (long)off + 4, SEEK_SET) || fwrite(le, 1, 4, f) != 4 || fclose(f))
		return 1;
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "crc"))
		return fix_crc(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc != 5) {
		fprintf(stderr, "usage: vdisk-logtool FILE OFFSET LENGTH BYTE\n");
		return 2;
	}
	vhdx *h;
	scm_error *err = NULL;
	if (vhdx_open(argv[1], 0, &h, &err) < 0) {
		scm_error_print(err, stderr);
		return 1;
	}
	uint64_t off = strtoull(argv[2], NULL, 0), len = strtoull(argv[3], NULL, 0);
	uint8_t *buf = malloc(len);
	if (!buf)
		return 1;
	memset(buf, (int)strtol(argv[4], NULL, 0), len);
	if (vhdx_write(h, buf, len, off) < 0 || vhdx_debug_log_only(h) < 0) {
		fprintf(stderr, "%s\n", vhdx_errmsg(h));
		return 1;
	}
	_exit(0); /* no close: the log stays pending */
}
