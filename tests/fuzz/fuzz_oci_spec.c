/* libFuzzer target for the OCI config.json parser and the sandbox parser
 * and check: any input must give a spec or an error message, never a
 * crash, a leak or an error without a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	container_spec *s = NULL;
	container_sandbox *sb = NULL;
	scm_error *err = NULL;
	int r = container_spec_parse((const char *)data, size, NULL, &s, &err);
	if (r > 0 && !err)
		abort(); /* a refusal must say why */
	if (r == 0 && (!s || !s->args || !s->args[0] || !s->root_path))
		abort();
	scm_error_free(err);
	err = NULL;
	/* The same bytes as a sandbox, checked against the spec if both parse. */
	r = container_sandbox_parse((const char *)data, size, &sb, &err);
	if (r > 0 && !err)
		abort();
	scm_error_free(err);
	err = NULL;
	if (s && sb) {
		(void)container_sandbox_apply(s, sb);
		(void)container_sandbox_check(s, sb, &err);
		scm_error_free(err);
	}
	container_sandbox_free(sb);
	container_spec_free(s);
	return 0;
}
