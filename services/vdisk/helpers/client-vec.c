/* client-vec.c: vdisk-client's batched commands, for the tests of readv and
 * writev: vcopy-in/vcopy-out move a raw file through batches of 64 KiB
 * extents placed in the buffer in reverse order (so a provider that mixed up
 * buffer offsets, or extents, would be caught), and badvec sends malformed
 * batches and prints what the provider said about each. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "scm/vdisk-client.h"

#define PIECE (64u << 10)

static void put(uint8_t *p, uint64_t off, uint64_t len, uint64_t boff)
{
	uint64_t v[3] = { off, len, boff };
	for (int k = 0; k < 3; k++)
		for (int b = 0; b < 8; b++)
			p[k * 8 + b] = (uint8_t)(v[k] >> (8 * b));
}

int client_vcopy(scm_channel *ch, uint64_t h, uint64_t vsize, uint8_t *buf, uint64_t bsz, bool in,
		 int fd, scm_error **ret_err)
{
	static uint8_t ext[1024 * 24];
	uint64_t per = bsz / PIECE < 1024 ? bsz / PIECE : 1024;
	for (uint64_t off = 0; off < vsize; off += per * PIECE) {
		/* piece j of this chunk sits at buffer slot (k - 1 - j) */
		uint64_t k = 0, lens[1024];
		for (uint64_t o = off; o < vsize && k < per; o += PIECE, k++)
			lens[k] = vsize - o < PIECE ? vsize - o : PIECE;
		for (uint64_t j = 0; j < k; j++) {
			uint64_t boff = (k - 1 - j) * PIECE, doff = off + j * PIECE;
			put(ext + j * 24, doff, lens[j], boff);
			if (in) {
				ssize_t n = pread(fd, buf + boff, lens[j], (off_t)doff);
				if (n < 0)
					return -errno;
				memset(buf + boff + n, 0, lens[j] - (uint64_t)n);
			}
		}
		int r = in ? scm_vdisk_writev(ch, h, ext, k * 24, ret_err)
			   : scm_vdisk_readv(ch, h, ext, k * 24, ret_err);
		if (r)
			return r;
		for (uint64_t j = 0; !in && j < k; j++)
			if (pwrite(fd, buf + (k - 1 - j) * PIECE, lens[j], (off_t)(off + j * PIECE)) !=
			    (ssize_t)lens[j])
				return -EIO;
	}
	return in ? scm_vdisk_flush(ch, h, ret_err) : 0;
}

/* Every case must be refused; prints "CASE: refused: <error>" for each and
 * returns -EPROTO if one was accepted. */
int client_badvec(scm_channel *ch, uint64_t h, uint64_t vsize, uint64_t bsz, bool ro)
{
	static uint8_t ext[1025 * 24];
	struct {
		const char *name;
		size_t n_bytes;
		uint64_t off, len, boff; /* extent 1 (extent 0 is always good) */
	} cases[] = {
		{ "empty", 0, 0, 0, 0 },
		{ "partial record", 47, 0, 4096, 0 },
		{ "too many", 1025 * 24, 0, 4096, 0 },
		{ "unaligned offset", 48, 100, 4096, 0 },
		{ "unaligned length", 48, 0, 1000, 0 },
		{ "zero length", 48, 0, 0, 0 },
		{ "past the disk", 48, vsize - 4096, 8192, 0 },
		{ "offset wraps", 48, UINT64_MAX - 511, 4096, 0 },
		{ "past the buffer", 48, 0, 4096, bsz - 512 },
		{ "buffer offset wraps", 48, 0, 4096, UINT64_MAX - 4095 },
	};
	int bad = 0;
	/* on a read-only handle the good batch alone is the case */
	if (ro)
		cases[0] = (typeof(cases[0])){ "good batch, read-only handle", 48, 4096, 4096, 4096 };
	for (size_t i = 0; i < (ro ? 1 : sizeof cases / sizeof cases[0]); i++) {
		for (size_t j = 0; j < 1025; j++)
			put(ext + j * 24, 0, 4096, 0);
		put(ext + 24, cases[i].off, cases[i].len, cases[i].boff);
		scm_error *e = NULL;
		int r = scm_vdisk_writev(ch, h, ext, cases[i].n_bytes, &e);
		printf("%s: ", cases[i].name);
		if (r) {
			printf("refused: ");
			scm_error_print(e, stdout);
		} else {
			printf("ACCEPTED\n");
			bad = -EPROTO;
		}
		scm_error_free(e);
	}
	/* the single-extent calls check the same way */
	for (int wr = 0; !ro && wr < 2; wr++) {
		scm_error *e = NULL;
		int r = wr ? scm_vdisk_write(ch, h, 0, 4096, bsz - 512, &e)
			   : scm_vdisk_read(ch, h, 0, 4096, bsz - 512, &e);
		printf("%s past the buffer: ", wr ? "write" : "read");
		if (r) {
			printf("refused: ");
			scm_error_print(e, stdout);
		} else {
			printf("ACCEPTED\n");
			bad = -EPROTO;
		}
		scm_error_free(e);
	}
	return bad;
}
