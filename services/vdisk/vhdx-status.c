/* vhdx-status.c: what an NBD server asks of a disk beyond read and write:
 * where the whole chain holds data and where it reads as zeros without
 * storage (NBD base:allocation), and write-zeroes that leave ZERO blocks
 * where a client allows holes. */
#include <errno.h>
#include <string.h>

#include "vhdx-internal.h"

/* The run at off (at most len) through the chain: a range this file does
 * not decide is asked of its parent, and the base decides the rest. */
int vhdx_alloc_extent(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, bool *ret_data)
{
	if (!len || off % h->lsec || len % h->lsec || off > h->vsize || len > h->vsize - off)
		return vhdx_fail(h, -EINVAL, "%s: extent at %llu+%llu: not whole sectors inside the disk (%llu)",
				 h->path, (unsigned long long)off, (unsigned long long)len,
				 (unsigned long long)h->vsize);
	for (vhdx *f = h;; f = f->parent) {
		uint64_t n;
		int kind, r;
		if ((r = vhdx_extent(f, off, len, &n, &kind)) < 0) {
			if (f != h)
				vhdx_fail_set(h, vhdx_error(f));
			return r;
		}
		len = n; /* a parent's answer is about this run only */
		if (kind == VHDX_EXT_PARENT && f->parent)
			continue;
		*ret_len = n;
		/* what a remote parent holds is not known here: data */
		*ret_data = kind == VHDX_EXT_HERE || (kind == VHDX_EXT_PARENT && f->remote.pread);
		return 0;
	}
}

static const uint8_t zeros[64 << 10];

static int write_zeros(vhdx *h, uint64_t len, uint64_t off)
{
	while (len) {
		uint64_t n = len < sizeof zeros ? len : sizeof zeros;
		int r = vhdx_write(h, zeros, n, off);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Whole blocks become ZERO blocks (vhdx_zero_blocks) when unmap allows
 * holes; the pieces of blocks at either end, and everything when it does
 * not, are written with zeros (NBD_CMD_FLAG_NO_HOLE wants storage). */
int vhdx_write_zeroes(vhdx *h, uint64_t len, uint64_t off, bool unmap)
{
	if (off % h->lsec || len % h->lsec || off > h->vsize || len > h->vsize - off)
		return vhdx_fail(h, -EINVAL, "%s: zero at %llu+%llu: not whole sectors inside the disk (%llu)",
				 h->path, (unsigned long long)off, (unsigned long long)len,
				 (unsigned long long)h->vsize);
	if (!unmap)
		return write_zeros(h, len, off);
	uint64_t end = off + len, bs = h->block_size;
	uint64_t first = (off + bs - 1) / bs * bs; /* the first whole block */
	uint64_t last = end == h->vsize ? end : end / bs * bs;
	if (first >= last) /* no whole block */
		return write_zeros(h, len, off);
	int r;
	if (first > off && (r = write_zeros(h, first - off, off)) < 0)
		return r;
	if ((r = vhdx_zero_blocks(h, last - first, first)) < 0)
		return r;
	return last < end ? write_zeros(h, end - last, last) : 0;
}
