/* vhdx-detach.c: a differencing disk that holds all its data itself
 * becomes a disk without parent (vhdx_detach_parent, vhdx.h): the end of a
 * stream job (the provider's merge --from-parent). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx-internal.h"

/* Are all sectors of block b (partially present) set in its bitmap? */
static int block_full(vhdx *h, uint64_t b, bool *ret)
{
	uint8_t *bm;
	int r = vhdx_bitmap_get(h, b / h->chunk_ratio, &bm);
	if (r < 0)
		return r;
	uint64_t per = h->block_size / h->lsec, s = (b % h->chunk_ratio) * per;
	uint64_t n = b * h->block_size + h->block_size > h->vsize ? (h->vsize - b * h->block_size) / h->lsec : per;
	*ret = true;
	for (uint64_t i = s; i < s + n; i++)
		if (!(bm[i / 8] >> (i % 8) & 1)) {
			*ret = false;
			break;
		}
	return 0;
}

/* The metadata pages that clear HasParent and drop the locator's table
 * entry: the table pages up to its last entry, and the page of the file
 * parameters' flags. */
static int meta_pages(vhdx *h, struct vhdx_page **ret, size_t *ret_n)
{
	_cleanup_free_ uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
	if (!t)
		return -ENOMEM;
	int r = vhdx_pread(h, t, VHDX_META_TABLE_SIZE, h->meta_off);
	if (r < 0)
		return r;
	vhdx_guid loc, fp;
	vhdx_guid_const(GUID_PARENT_LOC, &loc);
	vhdx_guid_const(GUID_FILE_PARAMS, &fp);
	uint16_t n = get16(t + 10);
	int64_t kl = -1, kf = -1;
	for (uint16_t i = 0; i < n && i < VHDX_META_MAX_ENTRIES; i++) {
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		if (!memcmp(e, loc.b, 16))
			kl = i;
		if (!memcmp(e, fp.b, 16))
			kf = i;
	}
	if (kl < 0 || kf < 0)
		return vhdx_fail(h, -EINVAL, "%s: detach: no %s metadata entry", h->path,
				 kl < 0 ? "parent locator" : "file parameters");
	uint64_t fp_off = get32(t + 32 + 32 * (size_t)kf + 16);
	if (fp_off < VHDX_META_TABLE_SIZE || fp_off + 8 > h->meta_len)
		return vhdx_fail(h, -EINVAL, "%s: detach: file parameters at %llu", h->path, (unsigned long long)fp_off);
	size_t table_end = 32 + 32 * (size_t)n;
	memmove(t + 32 + 32 * (size_t)kl, t + 32 + 32 * (size_t)(kl + 1), table_end - (32 + 32 * (size_t)(kl + 1)));
	memset(t + table_end - 32, 0, 32);
	put16(t + 10, (uint16_t)(n - 1));
	size_t tpages = (table_end + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
	struct vhdx_page *pg = calloc(tpages + 1, sizeof *pg);
	if (!pg)
		return -ENOMEM;
	for (size_t i = 0; i < tpages; i++) {
		pg[i].off = h->meta_off + i * VHDX_LOG_SECTOR;
		memcpy(pg[i].data, t + i * VHDX_LOG_SECTOR, VHDX_LOG_SECTOR);
	}
	struct vhdx_page *x = &pg[tpages];
	uint64_t page = fp_off / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	x->off = h->meta_off + page;
	if ((r = vhdx_pread(h, x->data, VHDX_LOG_SECTOR, x->off)) < 0) {
		free(pg);
		return r;
	}
	uint8_t *flags = x->data + (fp_off - page) + 4;
	put32(flags, get32(flags) & ~2u);
	*ret = pg;
	*ret_n = tpages + 1;
	return 0;
}

int vhdx_detach_parent(vhdx *h)
{
	if (!h->has_parent)
		return vhdx_fail(h, -EINVAL, "%s: detach: not a differencing disk", h->path);
	int r = vhdx_ensure_writable(h, false);
	/* every bitmap and BAT change so far in place first: the sector
	 * bitmaps are let go below, none may be waiting to be written */
	if (r < 0 || (r = vhdx_log_commit(h)) < 0)
		return r;
	for (uint64_t b = 0; b < h->data_blocks; b++) {
		uint64_t idx = vhdx_bat_index(h, b), e = h->bat[idx];
		unsigned st = BAT_STATE(e);
		bool full = st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_ZERO;
		if (st == VHDX_PB_PARTIALLY_PRESENT && (r = block_full(h, b, &full)) < 0)
			return r;
		if (!full)
			return vhdx_fail(h, -EBUSY, "%s: detach: block %llu still reads from the parent", h->path,
					 (unsigned long long)b);
	}
	struct vhdx_page *pg = NULL;
	size_t np = 0;
	if ((r = meta_pages(h, &pg, &np)) < 0)
		return r;
	for (uint64_t b = 0; b < h->data_blocks; b++) {
		uint64_t idx = vhdx_bat_index(h, b), e = h->bat[idx];
		if (BAT_STATE(e) == VHDX_PB_PARTIALLY_PRESENT)
			vhdx_bat_set(h, idx, BAT_MAKE(BAT_OFF(e), VHDX_PB_FULLY_PRESENT));
	}
	for (uint64_t c = 0; c < h->bitmap_blocks; c++)
		if (h->bat[vhdx_sb_index(h, c)])
			vhdx_bat_set(h, vhdx_sb_index(h, c), 0);
	free(h->extra);
	h->extra = pg;
	h->n_extra = np;
	if ((r = vhdx_log_commit(h)) < 0)
		return r;
	h->has_parent = false;
	h->parent_linkage[0] = h->parent_linkage2[0] = 0;
	vhdx_close(h->parent);
	h->parent = NULL;
	vhdx_remote_close(&h->remote);
	return 0;
}
