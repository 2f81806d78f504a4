/* fuzz_profile_audit.c: libFuzzer target for the audit-log reader behind
 * `scmctl policy suggest` (JSON lines written by scmd, read back as
 * untrusted input). */
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	json_object *out = NULL;
	scm_error *err = NULL;
	if (policy_suggest(f, "fuzz.log", &out, &err) == 0)
		json_object_put(out);
	scm_error_free(err);
	fclose(f);
	return 0;
}
