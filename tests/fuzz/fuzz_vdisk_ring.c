/* fuzz_vdisk_ring.c: libFuzzer target for the checks on a read ring's
 * request slot (services/vdisk/vring.c), the fields a client writes into
 * memory the provider shares with it. The first 24 bytes choose the ring's
 * handle, the disk's size and its sector size; the next 128 are the slot.
 * Whatever is accepted is a read of the ring's handle, inside the disk,
 * whole sectors, into a data area that exists. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 24 + sizeof(struct vring_slot))
		return 0;
	uint64_t v[3];
	memcpy(v, data, sizeof v);
	struct vring_limits lim = { .handle = v[0], .virtual_size = v[1], .sector_size = (uint32_t)v[2] };
	struct vring_slot s;
	memcpy(&s, data + 24, sizeof s);
	struct vring_req q;
	char msg[VRING_MSG_MAX];
	int r = vring_entry_parse(&s, &lim, &q, msg);
	if (r < 0) {
		if (r != -EINVAL && r != -EBADF && r != -EOPNOTSUPP)
			abort();
		if (!memchr(msg, 0, sizeof msg) || !msg[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	uint32_t sec = lim.sector_size ? lim.sector_size : 1;
	if (s.op != VRING_OP_READ || s.handle != lim.handle || q.data >= VRING_SLOTS || q.length == 0 ||
	    q.length > VRING_DATA_SIZE || q.offset % sec || q.length % sec || q.offset > lim.virtual_size ||
	    q.length > lim.virtual_size - q.offset)
		abort();
	return 0;
}
