/* fuzz_vhdx_reserve.c: libFuzzer target for the reservation state file
 * parser (services/vdisk/reserve.c), which reads a file an attacker with
 * access to the disk's directory may have written. Whatever it accepts
 * must be a state the machine can reach (a holder registered, names
 * NUL-free and bounded) and must format back to a file that parses to
 * the same state. An input that starts with '!' is a body without its CRC
 * line: the target appends the right one, so the mutations reach the
 * lines behind the checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reserve.h"
#include "vhdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vdisk_pr pr, again;
	static char out[VDISK_PR_FILE_MAX + 1];
	char id[40];
	static char in[VDISK_PR_FILE_MAX + 32];
	scm_error *e = NULL;
	if (size > 0 && data[0] == '!' && size - 1 < VDISK_PR_FILE_MAX) {
		memcpy(in, data + 1, size - 1);
		size = size - 1 + (size_t)sprintf(in + size - 1, "crc32c %08x\n", vhdx_crc32c(0, data + 1, size - 1));
		data = (const uint8_t *)in;
	}
	int r = vdisk_pr_parse((const char *)data, size, NULL, &pr, id, &e);
	scm_error_free(e);
	e = NULL;
	if (r < 0)
		return 0;
	if (pr.n_regs > VDISK_PR_REGS_MAX || strlen(id) != 38)
		abort();
	if (pr.type != VDISK_PR_NONE && !vdisk_pr_type_name(pr.type))
		abort();
	for (size_t i = 0; i < pr.n_regs; i++)
		if (!pr.regs[i].key || !pr.regs[i].nexus[0] || strlen(pr.regs[i].nexus) >= VDISK_PR_NEXUS_MAX)
			abort();
	size_t n = vdisk_pr_format(&pr, id, out, sizeof out);
	if (!n || vdisk_pr_parse(out, n, id, &again, NULL, &e) < 0)
		abort();
	if (again.generation != pr.generation || again.type != pr.type || again.n_regs != pr.n_regs ||
	    strcmp(again.holder, pr.holder))
		abort();
	/* the access check holds on what was read */
	(void)vdisk_pr_access(&pr, "someone", true);
	return 0;
}
