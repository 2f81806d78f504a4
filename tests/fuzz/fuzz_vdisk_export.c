/* fuzz_vdisk_export.c: libFuzzer target for the NBD export record parser
 * (services/vdisk/exportrec.c), which `scm-vdisk export --list/--stop`
 * reads back to find the process to signal. An accepted record formats
 * to a record that parses to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exportrec.h"

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct export_record r, r2;
	scm_error *why = NULL;
	if (export_record_parse((const char *)data, size, &r, &why) < 0) {
		scm_error_free(why);
		return 0;
	}
	char *s = export_record_format(&r);
	if (!s)
		abort();
	if (export_record_parse(s, strlen(s), &r2, NULL) < 0)
		abort();
	if (strcmp(r.name, r2.name) || r.pid != r2.pid || !same(r.disk, r2.disk) || !same(r.uri, r2.uri) ||
	    !same(r.socket, r2.socket) || r.readonly != r2.readonly || r.started != r2.started)
		abort();
	free(s);
	export_record_done(&r);
	export_record_done(&r2);
	return 0;
}
