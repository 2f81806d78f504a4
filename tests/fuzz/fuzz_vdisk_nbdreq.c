/* fuzz_vdisk_nbdreq.c: libFuzzer target for the NBD request parser the
 * provider runs on every request of a served connection
 * (services/vdisk/nbdproto.c nbd_request_parse). The first 16 bytes choose
 * the disk's size, its sector size and what was negotiated; the next 28
 * are the request. Whatever is accepted is a known command within the
 * disk, whole sectors, no longer than agreed, and never a write on a
 * read-only export; a refusal always says why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbdproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 16 + NBD_REQUEST_SIZE)
		return 0;
	uint64_t disk;
	uint32_t sec;
	memcpy(&disk, data, 8);
	memcpy(&sec, data + 8, 4);
	struct nbd_limits lim = { .size = disk, .min_block = sec % 8192, .max_payload = 4u << 20,
				  .readonly = data[12] & 1, .structured = data[12] & 2, .meta = data[12] & 4 };
	struct nbd_request q;
	char msg[NBD_MSG_MAX];
	int r = nbd_request_parse(data + 16, &lim, &q, msg);
	if (r != 0) {
		if (r != -EPROTO && r != NBD_EINVAL && r != NBD_EPERM && r != NBD_EOVERFLOW)
			abort();
		if (!memchr(msg, 0, sizeof msg) || !msg[0])
			abort();
		if (r > 0 && q.payload > lim.max_payload)
			abort(); /* the payload dropped is bounded */
		return 0;
	}
	if (q.type == NBD_CMD_DISC || q.type == NBD_CMD_FLUSH)
		return 0;
	uint32_t mb = lim.min_block ? lim.min_block : 1;
	if (q.type > NBD_CMD_BLOCK_STATUS || q.type == 5 || q.length == 0 || q.offset % mb || q.length % mb ||
	    q.offset > lim.size || q.length > lim.size - q.offset)
		abort();
	if ((q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE) && q.length > lim.max_payload)
		abort();
	if (lim.readonly && (q.type == NBD_CMD_WRITE || q.type == NBD_CMD_TRIM || q.type == NBD_CMD_WRITE_ZEROES))
		abort();
	if (q.type == NBD_CMD_BLOCK_STATUS && !lim.meta)
		abort();
	if (q.payload != (q.type == NBD_CMD_WRITE ? q.length : 0))
		abort();
	return 0;
}
