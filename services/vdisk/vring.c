/* vring.c: the checks on a read ring's request slot (vring.h). The slot
 * lives in memory the client writes while we read it: each field is read
 * once, into a local, and only the locals are checked and used. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vring.h"

#define ONCE(x) (*(const volatile __typeof__(x) *)&(x))

static int refuse(char *msg, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *msg, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, VRING_MSG_MAX, fmt, ap);
	va_end(ap);
	return r;
}

int vring_entry_parse(const struct vring_slot *s, const struct vring_limits *lim, struct vring_req *out,
		      char msg[VRING_MSG_MAX])
{
	uint32_t op = ONCE(s->op), length = ONCE(s->length), data = ONCE(s->data);
	uint64_t handle = ONCE(s->handle), offset = ONCE(s->offset);
	if (op != VRING_OP_READ)
		return refuse(msg, -EOPNOTSUPP, "op %" PRIu32 ": the ring only reads (1)",
			      op);
	if (handle != lim->handle)
		return refuse(msg, -EBADF,
			      "handle %" PRIu64 ": the ring serves handle %" PRIu64 " only", handle, lim->handle);
	if (data >= VRING_SLOTS)
		return refuse(msg, -EINVAL, "data area %" PRIu32 " of %u", data,
			      VRING_SLOTS);
	if (length == 0 || length > VRING_DATA_SIZE)
		return refuse(msg, -EINVAL, "length %" PRIu32 ": 1 to %u bytes", length,
			      VRING_DATA_SIZE);
	uint32_t sec = lim->sector_size ? lim->sector_size : 1;
	if (offset % sec || length % sec)
		return refuse(msg, -EINVAL,
			      "offset %" PRIu64 " length %" PRIu32 ": not multiples of the %" PRIu32 "-byte sector",
			      offset, length, sec);
	if (offset > lim->virtual_size || length > lim->virtual_size - offset)
		return refuse(msg, -EINVAL,
			      "offset %" PRIu64 " + length %" PRIu32 " is past the disk's %" PRIu64 " bytes", offset,
			      length, lim->virtual_size);
	*out = (struct vring_req){ .offset = offset, .length = length, .data = data };
	return 0;
}
