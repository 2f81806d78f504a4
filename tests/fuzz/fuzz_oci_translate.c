/* libFuzzer target for scm-oci's translation of an engine's config.json:
 * any input gives a translated config and binds or an error with a
 * message, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *cfg = NULL, *binds = NULL;
	scm_error *err = NULL;
	int r = oci_translate((const char *)data, size, "/bundle", &cfg, &binds, &err);
	if (r != 0 && !err)
		abort(); /* a refusal must say why */
	if (r == 0 && (!cfg || !binds || err))
		abort();
	scm_error_free(err);
	json_object_put(cfg);
	json_object_put(binds);
	return 0;
}
