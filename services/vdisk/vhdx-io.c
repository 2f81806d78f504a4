/* vhdx-io.c: reading, writing and trimming the virtual disk. Payload goes
 * straight to its block; BAT entries and sector bitmap pages change in
 * memory, are marked dirty and reach the file through the log at flush. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdx-internal.h"

/* Dirty metadata pages above this are committed without waiting for a
 * flush, so that one log entry stays well inside a 1 MiB log. */
#define DIRTY_COMMIT_AT 128

static int check_range(vhdx *h, uint64_t len, uint64_t off, const char *op)
{
	if (off % h->lsec || len % h->lsec)
		return vhdx_fail(h, -EINVAL, "%s: %s at %llu+%llu: not a multiple of the %u-byte sector",
				 h->path, op, (unsigned long long)off, (unsigned long long)len, h->lsec);
	if (off > h->vsize || len > h->vsize - off)
		return vhdx_fail(h, -EINVAL, "%s: %s at %llu+%llu: past the end of the disk (%llu)", h->path,
				 op, (unsigned long long)off, (unsigned long long)len,
				 (unsigned long long)h->vsize);
	return 0;
}

/* Renews FileWriteGuid before the first change of the file in this
 * session, and DataWriteGuid before the first change users can see, as
 * the spec requires; children of this disk then no longer match it. */
int vhdx_ensure_writable(vhdx *h, bool user_data)
{
	if (h->ro)
		return vhdx_fail(h, -EROFS, "%s: opened read-only", h->path);
	if (h->keep_identity)
		user_data = false;
	if (h->file_touched && (h->data_touched || !user_data))
		return 0;
	int r;
	if (!h->file_touched && (r = vhdx_guid_random(&h->hdr.file_write)) < 0)
		return vhdx_fail(h, r, "%s: getrandom failed", h->path);
	if (user_data && (r = vhdx_guid_random(&h->hdr.data_write)) < 0)
		return vhdx_fail(h, r, "%s: getrandom failed", h->path);
	r = vhdx_header_update(h);
	if (r < 0)
		return r;
	h->file_touched = true;
	if (user_data)
		h->data_touched = true;
	return 0;
}

void vhdx_set_keep_identity(vhdx *h, bool keep)
{
	h->keep_identity = keep;
}

int vhdx_renew_identity(vhdx *h)
{
	h->keep_identity = false;
	return vhdx_ensure_writable(h, true);
}

bool vhdx_data_touched(const vhdx *h)
{
	return h->data_touched;
}

int vhdx_bitmap_get(vhdx *h, uint64_t chunk, uint8_t **ret)
{
	if (!h->bitmap[chunk]) {
		uint8_t *b = calloc(1, VHDX_BITMAP_BLOCK);
		if (!b)
			return -ENOMEM;
		uint64_t e = h->bat[vhdx_sb_index(h, chunk)];
		if (BAT_STATE(e) == SB_PRESENT) {
			int r = vhdx_pread(h, b, VHDX_BITMAP_BLOCK, BAT_OFF(e));
			if (r < 0) {
				free(b);
				return r;
			}
		}
		h->bitmap[chunk] = b;
	}
	*ret = h->bitmap[chunk];
	return 0;
}

static void bat_set(vhdx *h, uint64_t idx, uint64_t v)
{
	h->bat[idx] = v;
	size_t pg = idx * 8 / VHDX_LOG_SECTOR;
	if (!h->bat_dirty[pg]) {
		h->bat_dirty[pg] = 1;
		h->n_dirty++;
	}
}

void vhdx_bat_set(vhdx *h, uint64_t idx, uint64_t v)
{
	bat_set(h, idx, v);
}

static int maybe_commit(vhdx *h)
{
	return h->n_dirty >= DIRTY_COMMIT_AT ? vhdx_log_commit(h) : 0;
}

/* New space at the end of the file; it reads as zeros. */
static int alloc_space(vhdx *h, uint64_t len, uint64_t *ret_off)
{
	uint64_t off = h->alloc_end;
	if (ftruncate(h->fd, (off_t)(off + len)) < 0)
		return vhdx_fail(h, -errno, "%s: extend to 0x%llx: %m", h->path,
				 (unsigned long long)(off + len));
	h->alloc_end = off + len;
	if (h->alloc_end > h->file_size)
		h->file_size = h->alloc_end;
	*ret_off = off;
	return 0;
}

/* Sector run [s, s+n) of the chunk bitmap: are all bits equal to the first?
 * Returns the length of the run that shares the first bit's value. */
static uint64_t bit_run(const uint8_t *bm, uint64_t s, uint64_t n, bool *ret_set)
{
	bool v = bm[s / 8] >> (s % 8) & 1;
	uint64_t i = 1;
	while (i < n) {
		uint64_t k = s + i;
		if (k % 8 == 0 && i + 8 <= n && bm[k / 8] == (v ? 0xff : 0)) {
			i += 8;
			continue;
		}
		if ((bm[k / 8] >> (k % 8) & 1) != v)
			break;
		i++;
	}
	*ret_set = v;
	return i;
}

static void bits_set(vhdx *h, uint64_t chunk, uint8_t *bm, uint64_t s, uint64_t n)
{
	for (uint64_t k = s; k < s + n;) {
		if (k % 8 == 0 && s + n - k >= 8) {
			bm[k / 8] = 0xff;
			k += 8;
		} else {
			bm[k / 8] |= (uint8_t)(1u << (k % 8));
			k++;
		}
	}
	uint64_t p0 = s / 8 / VHDX_LOG_SECTOR, p1 = ((s + n - 1) / 8) / VHDX_LOG_SECTOR;
	for (uint64_t p = p0; p <= p1; p++)
		if (!h->bm_dirty[chunk][p]) {
			h->bm_dirty[chunk][p] = 1;
			h->n_dirty++;
		}
}

static int write_block(vhdx *h, const uint8_t *buf, uint64_t len, uint64_t off);

/* What the parent holds of [off, off + len) (within one block). A remote
 * parent's data is kept by a read-write handle (copy-on-read): the block
 * is written as any write would write it, but it changes nothing a reader
 * sees, so DataWriteGuid stays (children of this disk still match it). */
static int parent_read(vhdx *h, uint8_t *buf, uint64_t len, uint64_t off)
{
	int r;
	if (h->parent) {
		r = vhdx_read(h->parent, buf, len, off);
		return r < 0 ? vhdx_fail_parent(h, r) : 0;
	}
	if ((r = vhdx_remote_fetch(h, buf, len, off)) < 0 || h->ro)
		return r;
	if ((r = vhdx_ensure_writable(h, false)) < 0)
		return r;
	return write_block(h, buf, len, off);
}

static int read_block(vhdx *h, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t blk = off / h->block_size, in = off % h->block_size;
	uint64_t e = h->bat[vhdx_bat_index(h, blk)];
	switch (BAT_STATE(e)) {
	case VHDX_PB_FULLY_PRESENT:
		return vhdx_data_pread(h, buf, len, BAT_OFF(e) + in);
	case VHDX_PB_PARTIALLY_PRESENT: {
		uint64_t chunk = blk / h->chunk_ratio;
		uint8_t *bm;
		int r = vhdx_bitmap_get(h, chunk, &bm);
		if (r < 0)
			return r;
		uint64_t s = ((blk % h->chunk_ratio) * h->block_size + in) / h->lsec;
		uint64_t n = len / h->lsec, done = 0;
		while (done < n) {
			bool set;
			uint64_t run = bit_run(bm, s + done, n - done, &set);
			uint64_t boff = done * h->lsec, blen = run * h->lsec;
			r = set ? vhdx_data_pread(h, buf + boff, blen, BAT_OFF(e) + in + boff)
				: parent_read(h, buf + boff, blen, off + boff);
			if (r < 0)
				return r;
			done += run;
		}
		return 0;
	}
	case VHDX_PB_ZERO:
		memset(buf, 0, len);
		return 0;
	default: /* NOT_PRESENT, UNDEFINED, UNMAPPED: the parent's, or zeros */
		if (h->parent || h->remote.pread)
			return parent_read(h, buf, len, off);
		memset(buf, 0, len);
		return 0;
	}
}

/* Splits [off, off+len) at payload block boundaries and runs fn on each
 * piece with the matching part of buf: reads and writes share the walk. */
typedef int (*piece_fn)(vhdx *h, const uint8_t *buf, uint64_t len, uint64_t off);

static int each_block(vhdx *h, const void *buf, uint64_t len, uint64_t off, piece_fn fn)
{
	const uint8_t *p = buf;
	while (len) {
		uint64_t n = h->block_size - off % h->block_size;
		if (n > len)
			n = len;
		int r = fn(h, p, n, off);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* The caller's read buffer is writable; the walk only carries it. */
static int read_piece(vhdx *h, const uint8_t *buf, uint64_t len, uint64_t off)
{
	return read_block(h, (uint8_t *)buf, len, off);
}

/* Opened without its parent (VHDX_O_NO_PARENT): reads would have to make
 * up the parent's sectors, so there are none. */
static int parentless(vhdx *h)
{
	if (h->has_parent && !h->parent && !h->remote.pread)
		return vhdx_fail(h, -ENXIO, "%s: opened without its parent: the disk's contents cannot be read",
				 h->path);
	return 0;
}

int vhdx_read(vhdx *h, void *buf, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "read");
	if (r < 0 || (r = parentless(h)) < 0)
		return r;
	return each_block(h, buf, len, off, read_piece);
}

int vhdx_read_nowait(vhdx *h, void *buf, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "read");
	if (r < 0 || (r = parentless(h)) < 0)
		return r;
	vhdx_nowait = true;
	r = each_block(h, buf, len, off, read_piece);
	vhdx_nowait = false;
	return r;
}

/* Makes sure the chunk's sector bitmap block has file space. */
static int bitmap_alloc(vhdx *h, uint64_t chunk)
{
	uint64_t idx = vhdx_sb_index(h, chunk);
	uint8_t *bm;
	int r = vhdx_bitmap_get(h, chunk, &bm);
	if (r < 0)
		return r;
	if (!h->bm_dirty[chunk] && !(h->bm_dirty[chunk] = calloc(VHDX_BITMAP_BLOCK / VHDX_LOG_SECTOR, 1)))
		return -ENOMEM;
	if (BAT_STATE(h->bat[idx]) == SB_PRESENT)
		return 0;
	uint64_t off;
	r = alloc_space(h, VHDX_BITMAP_BLOCK, &off);
	if (r < 0)
		return r;
	bat_set(h, idx, BAT_MAKE(off, SB_PRESENT));
	return 0;
}

static int write_block(vhdx *h, const uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t blk = off / h->block_size, in = off % h->block_size;
	uint64_t idx = vhdx_bat_index(h, blk);
	uint64_t e = h->bat[idx];
	unsigned st = BAT_STATE(e);
	int r;
	if (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT) {
		uint64_t boff;
		if (h->has_parent && st != VHDX_PB_ZERO && (r = bitmap_alloc(h, blk / h->chunk_ratio)) < 0)
			return r;
		r = alloc_space(h, h->block_size, &boff);
		if (r < 0)
			return r;
		/* a differencing block starts with every sector from the parent,
		 * except over a ZERO block, whose sectors are all ours (zeros) */
		st = h->has_parent && st != VHDX_PB_ZERO ? VHDX_PB_PARTIALLY_PRESENT
							 : VHDX_PB_FULLY_PRESENT;
		e = BAT_MAKE(boff, st);
		bat_set(h, idx, e);
	}
	r = vhdx_data_pwrite(h, buf, len, BAT_OFF(e) + in);
	if (r < 0)
		return r;
	if (st == VHDX_PB_PARTIALLY_PRESENT) {
		uint64_t chunk = blk / h->chunk_ratio;
		uint8_t *bm;
		if ((r = bitmap_alloc(h, chunk)) < 0 || (r = vhdx_bitmap_get(h, chunk, &bm)) < 0)
			return r;
		uint64_t s = ((blk % h->chunk_ratio) * h->block_size + in) / h->lsec;
		bits_set(h, chunk, bm, s, len / h->lsec);
	}
	return maybe_commit(h);
}

int vhdx_write(vhdx *h, const void *buf, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "write");
	if (r < 0)
		return r;
	if ((r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	return each_block(h, buf, len, off, write_block);
}

/* The bytes go from fd to the block's place in the file in the kernel
 * (copy_file_range: a reflink where the file system shares blocks), with
 * read and write as the fallback; blocks are allocated as vhdx_write
 * allocates them. */
int vhdx_write_fd(vhdx *h, int fd, uint64_t fd_off, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "write");
	if (r < 0)
		return r;
	if (h->has_parent)
		return vhdx_fail(h, -EOPNOTSUPP, "%s: a differencing disk takes vhdx_write only", h->path);
	if ((r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	uint8_t *buf = NULL;
	while (len && r >= 0) {
		uint64_t blk = off / h->block_size, in = off % h->block_size;
		uint64_t n = h->block_size - in < len ? h->block_size - in : len;
		uint64_t idx = vhdx_bat_index(h, blk), e = h->bat[idx];
		if (BAT_STATE(e) != VHDX_PB_FULLY_PRESENT) {
			uint64_t boff;
			if ((r = alloc_space(h, h->block_size, &boff)) < 0)
				break;
			e = BAT_MAKE(boff, VHDX_PB_FULLY_PRESENT);
			bat_set(h, idx, e);
		}
		uint64_t at = BAT_OFF(e) + in, done = 0;
		while (done < n) {
			loff_t si = (loff_t)(fd_off + done), di = (loff_t)(at + done);
			ssize_t k = copy_file_range(fd, &si, h->fd, &di, n - done, 0);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			done += (uint64_t)k;
		}
		while (done < n && r >= 0) { /* no copy_file_range between these files */
			size_t k = n - done < (1u << 20) ? n - done : (1u << 20);
			if (!buf && !(buf = malloc(1u << 20))) {
				r = -ENOMEM;
				break;
			}
			if (pread(fd, buf, k, (off_t)(fd_off + done)) != (ssize_t)k)
				r = vhdx_fail(h, -EIO, "%s: reading the source of a copy at 0x%llx: %m", h->path,
					      (unsigned long long)(fd_off + done));
			else if ((r = vhdx_pwrite(h, buf, k, at + done)) >= 0)
				done += k;
		}
		if (r < 0)
			break;
		if (at + n > h->file_size)
			h->file_size = at + n;
		off += n, fd_off += n, len -= n;
		r = maybe_commit(h);
	}
	free(buf);
	return r < 0 ? r : 0;
}

int vhdx_flush(vhdx *h)
{
	if (h->ro)
		return 0;
	int r = vhdx_log_commit(h);
	if (r < 0)
		return r;
	if (fdatasync(h->fd) < 0)
		return vhdx_fail(h, -errno, "%s: fdatasync: %m", h->path);
	return 0;
}

static int punch(vhdx *h, uint64_t off, uint64_t len)
{
	if (fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return vhdx_fail(h, -errno, "%s: punch hole at 0x%llx: %m", h->path, (unsigned long long)off);
	return 0;
}

/* Whole blocks become UNMAPPED and give their space back; parts of blocks
 * in a disk without parent are punched (they read as zeros). A fixed disk
 * keeps its blocks FULLY_PRESENT (LeaveBlocksAllocated) but is punched. In a
 * differencing disk partial ranges are left alone: their sectors may still
 * hide the parent's. */
int vhdx_trim(vhdx *h, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "trim");
	if (r < 0)
		return r;
	if (len && (r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	while (len) {
		uint64_t blk = off / h->block_size, in = off % h->block_size;
		uint64_t n = h->block_size - in;
		if (n > len)
			n = len;
		uint64_t idx = vhdx_bat_index(h, blk), e = h->bat[idx];
		unsigned st = BAT_STATE(e);
		bool whole = in == 0 && (n == h->block_size || off + n == h->vsize);
		bool present = st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT;
		if (whole && (!h->leave_alloc || h->has_parent)) {
			if (present || st == VHDX_PB_ZERO) {
				bat_set(h, idx, BAT_MAKE(0, VHDX_PB_UNMAPPED));
				if (present && (r = punch(h, BAT_OFF(e), h->block_size)) < 0)
					return r;
			}
		} else if (st == VHDX_PB_FULLY_PRESENT && !h->has_parent) {
			if ((r = punch(h, BAT_OFF(e) + in, n)) < 0)
				return r;
		}
		off += n;
		len -= n;
	}
	return maybe_commit(h);
}

int vhdx_place(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_foff)
{
	int r = check_range(h, len, off, "place");
	if (r < 0)
		return r;
	if (h->has_parent || off / h->block_size != (off + len - 1) / h->block_size)
		return vhdx_fail(h, -EINVAL, "%s: place at %llu+%llu: not within one block of a disk without parent",
				 h->path, (unsigned long long)off, (unsigned long long)len);
	if ((r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	uint64_t idx = vhdx_bat_index(h, off / h->block_size), e = h->bat[idx];
	if (BAT_STATE(e) != VHDX_PB_FULLY_PRESENT) {
		/* new space reads as zeros: what a NOT_PRESENT or ZERO block of
		 * a disk without parent read before */
		uint64_t boff;
		if ((r = alloc_space(h, h->block_size, &boff)) < 0)
			return r;
		e = BAT_MAKE(boff, VHDX_PB_FULLY_PRESENT);
		bat_set(h, idx, e);
		if ((r = maybe_commit(h)) < 0)
			return r;
	}
	*ret_foff = BAT_OFF(e) + off % h->block_size;
	return 0;
}

uint32_t vhdx_block_size(const vhdx *h)
{
	return h->block_size;
}

/* New space past every block: no BAT entry points there until adopted. */
int vhdx_reserve(vhdx *h, uint64_t len, uint64_t *ret_foff)
{
	int r = vhdx_ensure_writable(h, true);
	if (r < 0)
		return r;
	return alloc_space(h, (len + MiB - 1) / MiB * MiB, ret_foff);
}

int vhdx_adopt(vhdx *h, uint64_t off, uint64_t len, uint64_t foff)
{
	int r = check_range(h, len, off, "adopt");
	if (r < 0)
		return r;
	if (h->has_parent || off % h->block_size || len % h->block_size || foff % MiB ||
	    foff + len > h->alloc_end)
		return vhdx_fail(h, -EINVAL, "%s: adopt at %llu+%llu from 0x%llx: not whole blocks of a disk without parent, "
				 "or not reserved space", h->path, (unsigned long long)off, (unsigned long long)len,
				 (unsigned long long)foff);
	if ((r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	for (uint64_t k = 0; k < len / h->block_size && r >= 0; k++) {
		uint64_t idx = vhdx_bat_index(h, off / h->block_size + k), old = h->bat[idx];
		if (BAT_STATE(old) == VHDX_PB_FULLY_PRESENT && (r = punch(h, BAT_OFF(old), h->block_size)) < 0)
			break;
		bat_set(h, idx, BAT_MAKE(foff + k * h->block_size, VHDX_PB_FULLY_PRESENT));
		r = maybe_commit(h);
	}
	return r;
}

int vhdx_block_state(vhdx *h, uint64_t off)
{
	if (off >= h->vsize)
		return vhdx_fail(h, -EINVAL, "%s: block state: offset %llu beyond the disk", h->path,
				 (unsigned long long)off);
	return (int)BAT_STATE(h->bat[vhdx_bat_index(h, off / h->block_size)]);
}

/* ZERO is a promise (reads zero, whatever a parent holds) that
 * NOT_PRESENT is not (undefined contents): compact keeps it. */
int vhdx_zero_blocks(vhdx *h, uint64_t len, uint64_t off)
{
	int r = check_range(h, len, off, "zero");
	if (r < 0)
		return r;
	if (off % h->block_size || (len % h->block_size && off + len != h->vsize))
		return vhdx_fail(h, -EINVAL, "%s: zero: range 0x%llx+0x%llx is not whole blocks", h->path,
				 (unsigned long long)off, (unsigned long long)len);
	if (len && (r = vhdx_ensure_writable(h, true)) < 0)
		return r;
	for (uint64_t b = off / h->block_size; b * h->block_size < off + len; b++) {
		uint64_t idx = vhdx_bat_index(h, b), e = h->bat[idx];
		unsigned st = BAT_STATE(e);
		bool present = st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT;
		if (h->leave_alloc && !h->has_parent) {
			/* a fixed disk keeps its blocks; the punched ones read zero */
			if (present && (r = punch(h, BAT_OFF(e), h->block_size)) < 0)
				return r;
			continue;
		}
		if (st == VHDX_PB_ZERO)
			continue;
		bat_set(h, idx, BAT_MAKE(0, VHDX_PB_ZERO));
		if (present && (r = punch(h, BAT_OFF(e), h->block_size)) < 0)
			return r;
	}
	return maybe_commit(h);
}

/* The run of sectors starting at off (up to len, within one block) that
 * share where their data lives: VHDX_EXT_HERE (this file), VHDX_EXT_ZERO
 * (reads zero, decided by this file) or VHDX_EXT_PARENT. */
int vhdx_extent(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, int *ret_kind)
{
	uint64_t fo;
	return vhdx_extent_file(h, off, len, ret_len, ret_kind, &fo);
}

int vhdx_extent_file(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, int *ret_kind,
		     uint64_t *ret_file_off)
{
	int r = check_range(h, len, off, "extent");
	if (r < 0)
		return r;
	uint64_t blk = off / h->block_size, in = off % h->block_size;
	uint64_t n = h->block_size - in < len ? h->block_size - in : len;
	uint64_t e = h->bat[vhdx_bat_index(h, blk)];
	int kind;
	switch (BAT_STATE(e)) {
	case VHDX_PB_FULLY_PRESENT: kind = VHDX_EXT_HERE; break;
	case VHDX_PB_ZERO: kind = VHDX_EXT_ZERO; break;
	case VHDX_PB_PARTIALLY_PRESENT: {
		uint8_t *bm;
		if ((r = vhdx_bitmap_get(h, blk / h->chunk_ratio, &bm)) < 0)
			return r;
		bool set;
		uint64_t s = ((blk % h->chunk_ratio) * h->block_size + in) / h->lsec;
		n = bit_run(bm, s, n / h->lsec, &set) * h->lsec;
		kind = set ? VHDX_EXT_HERE : VHDX_EXT_PARENT;
		break;
	}
	default: kind = h->has_parent ? VHDX_EXT_PARENT : VHDX_EXT_ZERO; break;
	}
	*ret_len = n;
	*ret_kind = kind;
	*ret_file_off = kind == VHDX_EXT_HERE ? BAT_OFF(e) + in : 0;
	return 0;
}
