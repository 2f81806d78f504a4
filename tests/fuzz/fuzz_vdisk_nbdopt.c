/* fuzz_vdisk_nbdopt.c: libFuzzer target for the NBD handshake's option
 * parser that scm-vdisk export runs on what a client sends before the
 * provider takes the connection (services/vdisk/nbdproto.c
 * nbd_hs_option). The input is a sequence of options, each a 4-byte code,
 * a 2-byte length and that many bytes. The replies built must stay in
 * their buffer and be well-formed (magic, the option's code, the length
 * they say); a chosen export is only ever this one; with no_meta (a grant
 * without extents) no meta context is ever offered or set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbdproto.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* every reply in hs->out: magic, opt, type, length, that many bytes */
static void check_out(const struct nbd_hs *hs, uint32_t opt)
{
	size_t at = 0;
	while (at < hs->out_len) {
		if (hs->out_len - at < 20)
			abort();
		uint64_t m = (uint64_t)be32(hs->out + at) << 32 | be32(hs->out + at + 4);
		if (m != NBD_REP_MAGIC || be32(hs->out + at + 8) != opt)
			abort();
		if (hs->no_meta && be32(hs->out + at + 12) == NBD_REP_META_CONTEXT)
			abort(); /* block status not allowed: no context offered */
		uint32_t len = be32(hs->out + at + 16);
		if (len > hs->out_len - at - 20)
			abort();
		at += 20 + len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_hs hs = { .name = "disk-1", .size = 64u << 20, .tflags = 1, .min_block = 512, .pref_block = 4096,
			     .max_block = 4u << 20 };
	hs.no_meta = size & 1; /* the grant without extents, for half the inputs */
	nbd_hs_greeting(&hs);
	if (hs.out_len != 18)
		abort();
	while (size >= 6) {
		uint32_t opt = be32(data);
		uint32_t len = (uint32_t)data[4] << 8 | data[5];
		data += 6;
		size -= 6;
		if (len > size)
			len = (uint32_t)size;
		uint8_t *copy = malloc(len ? len : 1); /* exactly len: ASan sees any overread */
		memcpy(copy, data, len);
		enum nbd_hs_step st = nbd_hs_option(&hs, opt, copy, len);
		free(copy);
		data += len;
		size -= len;
		if (hs.out_len > NBD_HS_OUT_MAX || (hs.no_meta && hs.meta))
			abort();
		if (st == NBD_HS_EXPORT_NAME) {
			nbd_hs_export_name_reply(&hs, false);
			if (hs.out_len != 8 + 2 + 124)
				abort();
			return 0;
		}
		check_out(&hs, opt);
		if (st == NBD_HS_GO) {
			if (opt != NBD_OPT_GO)
				abort();
			return 0;
		}
		if (st == NBD_HS_CLOSE)
			return 0;
		if (hs.meta && !hs.structured)
			abort();
	}
	return 0;
}
