/* Fuzz target: service manifests through the parser scmd uses for
 * CONFIG/services/NAME.json and `scmctl service register` (scm/scmd/manifest.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m = { 0 };
	scm_error *e = NULL;

	if (manifest_parse_text((const char *)data, size, "fuzz", &m, &e) == 0) {
		/* what the registry relies on */
		if (!m.name || !m.iface || !m.exec || !m.exec[0] || strchr(m.iface, '/') || m.iface[0] == '.')
			__builtin_trap();
		manifest_done(&m);
	} else if (!e || !e->message)
		__builtin_trap(); /* every refusal says why */
	scm_error_free(e);
	return 0;
}
