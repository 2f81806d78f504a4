/* scm-zpool.h: the messages between scmd (logzip.c) and its compressor
 * helper, libexec/scm-zpool, on a SOCK_SEQPACKET socket. */
#pragma once
#include <stdint.h>

#define ZREQ_MAGIC 0x31505a53u /* "SZP1" */
#define ZREQ_MAX (256ull << 20) /* the largest file the helper reads */

/* + SCM_RIGHTS: the file to compress (read to its end), where the frame goes */
struct zreq {
	uint32_t magic, flags;
	uint64_t id;
};

struct zrep {
	uint64_t id;
	int32_t r;     /* 0, or -errno (the frame is then not written) */
	int32_t level; /* the zstd level the pool chose */
	uint64_t in_len, out_len;
};
