/* Fuzz target: the state a restarting scmd hands its successor, through
 * the reader the successor and the dry run (--check-state) use
 * (scm/scmd/restart-state.c): header, version range, length, JSON, the
 * structure, the containers' part (containers/adopt.c, check only) and
 * version 2's channel table (restart-chans.c: counts, record size,
 * indexes, strings). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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
	struct state_chans t = { 0 };
	if (state_memfd_read(fd, &st, &version, &t, &e) == 0) {
		if (version < SCMD_STATE_MIN_VERSION || version > SCMD_STATE_VERSION || !st)
			__builtin_trap();
		/* what the successor relies on without looking again */
		size_t ns = json_object_array_length(json_object_object_get(st, "services"));
		size_t ne = json_object_array_length(json_object_object_get(st, "endpoints"));
		for (size_t i = 0; i < t.n; i++)
			if (t.c[i].service >= ns || (t.c[i].endpoint != SCMD_CHAN_NONE && t.c[i].endpoint >= ne) ||
			    t.c[i].fd < 0 || !t.c[i].origin || strlen(t.c[i].origin) > SCMD_STATE_MAX_BYTES)
				__builtin_trap();
		state_chans_free(&t);
		json_object_put(st);
	} else if (!e || !e->message)
		__builtin_trap(); /* every refusal says why */
	scm_error_free(e);
	close(fd);
	return 0;
}
