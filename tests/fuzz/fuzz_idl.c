/* Fuzz target: interface definitions through the IDL parser and printer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scm/idl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scm_idl *idl = NULL;
	scm_error *e = NULL;

	if (scm_idl_parse((const char *)data, size, "fuzz", &idl, &e) == 0) {
		FILE *f = fopen("/dev/null", "we");
		if (f) {
			scm_idl_print(idl, f);
			fclose(f);
		}
		scm_idl_free(idl);
	}
	scm_error_free(e);
	return 0;
}
