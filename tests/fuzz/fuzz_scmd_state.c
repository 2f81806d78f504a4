/* Fuzz target: the state a restarting scmd hands its successor, through
 * the reader the successor and the dry run (--check-state) use
 * (scm/scmd/restart-state.c): header, version range, length, JSON, the
 * structure and the containers' part (containers/adopt.c, check only). */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "restart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-state", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	json_object *st = NULL;
	scm_error *e = NULL;
	uint32_t version = 0;
	if (state_memfd_read(fd, &st, &version, &e) == 0) {
		if (version < SCMD_STATE_MIN_VERSION || version > SCMD_STATE_VERSION || !st)
			__builtin_trap();
		json_object_put(st);
	} else if (!e || !e->message)
		__builtin_trap(); /* every refusal says why */
	scm_error_free(e);
	close(fd);
	return 0;
}
