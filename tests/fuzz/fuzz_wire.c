/* Fuzz target: a frame as it arrives from a peer, through the decoder; an
 * ERROR frame's chain through the chain decoder and printer (codes are the
 * peer's: every int must have a name); and, when the body holds
 * {"c": CONSTRAINTS, "m": METHOD, "a": ARGS}, the grant check a provider
 * runs on a client's arguments (constraints come from policy, arguments
 * from the client: neither may crash it); and the type checks generated
 * client stubs run on a reply's "r" result, for every IDL type. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scm/stub-rt.h"
#include "scm-internal/wire.h"

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
		for (int t = 0; t < _SCM_IDL_TYPE_MAX; t++) {
			json_object *v = NULL;
			scm_error *re = NULL;
			if (scm__result(m, "r", (enum scm_idl_type)t, &v, &re) == 0 && v) {
				/* what the generated code then reads from it */
				(void)json_object_get_int64(v);
				(void)json_object_get_uint64(v);
				(void)json_object_get_double(v);
				(void)json_object_get_boolean(v);
				(void)json_object_get_string(v);
			}
			scm_error_free(re);
		}
		scm_message_free(m);
	}
	if (e && devnull)
		scm_error_print(e, devnull);
	scm_error_free(e);
	return 0;
}
