/* logtool.c: test helper that leaves a VHDX with a pending log, as a crash
 * right after the log write would: it writes a pattern, commits the
 * metadata to the log only and exits without closing.
 *   vdisk-logtool FILE OFFSET LENGTH BYTE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: vdisk-logtool FILE OFFSET LENGTH BYTE\n");
		return 2;
	}
	vhdx *h;
	vhdx_err err;
	if (vhdx_open(argv[1], 0, &h, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
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
