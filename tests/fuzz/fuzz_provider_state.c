/* Fuzz target: the state a provider hands its successor at a handover
 * (stubs/provider-state.c, docs/handover.md): header, envelope version,
 * length, JSON and the members libscm relies on, in envelopes 1 and 2
 * (2 adds "fds", the count of descriptors passed beside the memfd). */
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "scm/scm.h"
#include "scm-internal/provider-state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *doc = NULL;
	scm_error *e = NULL;
	uint32_t version = 0, n_fds = 0;
	if (provider_state_parse(data, size, &version, &n_fds, &doc, &e) == 0) {
		json_object *chans = json_object_object_get(doc, "channels");
		if (version == 0 || n_fds > SCM_HANDOVER_FDS_MAX || !json_object_is_type(chans, json_type_array))
			__builtin_trap();
		json_object_put(doc);
	} else if (!e || !e->message)
		__builtin_trap(); /* a refusal always says why */
	scm_error_free(e);
	return 0;
}
