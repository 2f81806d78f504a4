/* Fuzz target: a frame as it arrives from a peer, through the decoder; an
 * ERROR frame's chain through the chain decoder and printer (codes are the
 * peer's: every int must have a name); and, when the body holds
 * {"c": CONSTRAINTS, "m": METHOD, "a": ARGS}, the grant check a provider
 * runs on a client's arguments (constraints come from policy, arguments
 * from the client: neither may crash it). */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	scm_message *m = NULL;
	scm_error *e = NULL;

	if (!devnull)
		devnull = fopen("/dev/null", "we");
	if (scm_wire_decode(data, size, NULL, 0, &m, &e) == 0) {
		scm_error *chain = scm_message_error(m);
		if (chain && devnull)
			scm_error_print(chain, devnull);
		json_object *back = scm_error_to_json(chain);
		json_object_put(back);
		scm_error_free(chain);

		json_object *c, *meth, *args = NULL;
		if (m->json && json_object_object_get_ex(m->json, "c", &c) &&
		    json_object_object_get_ex(m->json, "m", &meth) &&
		    json_object_is_type(meth, json_type_string)) {
			json_object_object_get_ex(m->json, "a", &args);
			scm_grant g = { .constraints = c };
			scm_error *ge = NULL;
			(void)scm_grant_check(&g, json_object_get_string(meth), args, &ge);
			scm_error_free(ge);
		}
		scm_message_free(m);
	}
	if (e && devnull)
		scm_error_print(e, devnull);
	scm_error_free(e);
	return 0;
}
