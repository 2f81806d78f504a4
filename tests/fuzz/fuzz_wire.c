/* Fuzz target: a frame as it arrives from a peer, through the decoder, and
 * an ERROR frame's chain through the chain decoder. */
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scm_message *m = NULL;
	scm_error *e = NULL;

	if (scm_wire_decode(data, size, NULL, 0, &m, &e) == 0) {
		scm_error *chain = scm_message_error(m);
		scm_error_free(chain);
		scm_message_free(m);
	}
	scm_error_free(e);
	return 0;
}
