/* vhdx-bat.c: the checks of a block allocation table as it is loaded
 * (vhdx-open.c) or adopted with pages a handover carried: every entry's
 * state and file range, and no two blocks at the same file bytes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "vhdx-internal.h"

/* An entry's kind and index, for a message (the loops keep their place in
 * the chunk instead: no division per entry, of which there may be 65,000) */
static const char *entry_kind(const vhdx *h, uint64_t i, uint64_t *ret_idx)
{
	bool sb = (i % (h->chunk_ratio + 1)) == h->chunk_ratio;
	*ret_idx = sb ? i / (h->chunk_ratio + 1) : i - i / (h->chunk_ratio + 1);
	return sb ? "sector bitmap block" : "payload block";
}

int vhdx_bat_validate(vhdx *h)
{
	uint64_t max_end = h->bat_off + h->bat_len, idx;
	if (h->meta_off + h->meta_len > max_end)
		max_end = h->meta_off + h->meta_len;
	for (uint64_t i = 0, k = 0; i < h->bat_entries; i++, k = k == h->chunk_ratio ? 0 : k + 1) {
		uint64_t e = h->bat[i];
		if (e == 0)
			continue; /* NOT_PRESENT at offset 0: nothing to check */
		unsigned st = BAT_STATE(e);
		bool sb = k == h->chunk_ratio;
		uint64_t off = BAT_OFF(e), len = sb ? VHDX_BITMAP_BLOCK : h->block_size;
		if (sb ? (st != 0 && st != SB_PRESENT) : (st == 4 || st == 5)) {
			const char *kind = entry_kind(h, i, &idx);
			return vhdx_fail(h, -EINVAL, "%s: BAT entry %llu (%s %llu): invalid state %u", h->path,
					 (unsigned long long)i, kind, (unsigned long long)idx, st);
		}
		bool present = sb ? st == SB_PRESENT
				  : (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT);
		if (!sb && st == VHDX_PB_PARTIALLY_PRESENT && !h->has_parent) {
			entry_kind(h, i, &idx);
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (payload block %llu): PARTIALLY_PRESENT in a disk without parent",
					 h->path, (unsigned long long)i, (unsigned long long)idx);
		}
		if (!present)
			continue;
		if (sb && !h->has_parent)
			continue; /* unused in dynamic and fixed disks */
		if (off < MiB || off + len > h->file_size) {
			const char *kind = entry_kind(h, i, &idx);
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (%s %llu): file offset 0x%llx + 0x%llx past end of file (0x%llx)",
					 h->path, (unsigned long long)i, kind, (unsigned long long)idx,
					 (unsigned long long)off, (unsigned long long)len,
					 (unsigned long long)h->file_size);
		}
		if (off < max_end && off + len > VHDX_RT2_OFF + VHDX_RT_SIZE &&
		    ((off < h->bat_off + h->bat_len && h->bat_off < off + len) ||
		     (off < h->meta_off + h->meta_len && h->meta_off < off + len) ||
		     (off < h->hdr.log_offset + h->hdr.log_length && h->hdr.log_offset < off + len))) {
			const char *kind = entry_kind(h, i, &idx);
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (%s %llu): file offset 0x%llx overlaps the BAT, metadata or log region",
					 h->path, (unsigned long long)i, kind, (unsigned long long)idx,
					 (unsigned long long)off);
		}
		if (off + len > max_end)
			max_end = off + len;
	}
	if (h->hdr.log_offset + h->hdr.log_length > max_end)
		max_end = h->hdr.log_offset + h->hdr.log_length;
	if (h->file_size > max_end)
		max_end = h->file_size;
	h->alloc_end = (max_end + MiB - 1) / MiB * MiB;
	return 0;
}

struct bat_ext {
	uint64_t off, entry;
};

static int cmp_bat_ext(const void *a, const void *b)
{
	const struct bat_ext *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Two BAT entries that place blocks at the same file bytes would let a
 * write to one block change another (a disk made to leak one guest's data
 * into another's view, or to corrupt itself): refused at open, as qemu
 * does, not only found by check. */
int vhdx_bat_unique(vhdx *h)
{
	size_t n = 0;
	for (uint64_t i = 0, k = 0; i < h->bat_entries; i++, k = k == h->chunk_ratio ? 0 : k + 1) {
		unsigned st = BAT_STATE(h->bat[i]);
		bool sb = k == h->chunk_ratio;
		if (sb ? h->has_parent && st == SB_PRESENT
		       : st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT)
			n++;
	}
	if (n < 2)
		return 0;
	_cleanup_free_ struct bat_ext *ex = malloc(n * sizeof *ex);
	if (!ex)
		return -ENOMEM;
	n = 0;
	for (uint64_t i = 0, k = 0; i < h->bat_entries; i++, k = k == h->chunk_ratio ? 0 : k + 1) {
		unsigned st = BAT_STATE(h->bat[i]);
		bool sb = k == h->chunk_ratio;
		if (sb ? h->has_parent && st == SB_PRESENT
		       : st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT)
			ex[n++] = (struct bat_ext){ BAT_OFF(h->bat[i]), i };
	}
	qsort(ex, n, sizeof *ex, cmp_bat_ext);
	for (size_t i = 1; i < n; i++) {
		const struct bat_ext *a = &ex[i - 1], *b = &ex[i];
		bool asb = (a->entry % (h->chunk_ratio + 1)) == h->chunk_ratio;
		uint64_t alen = asb ? VHDX_BITMAP_BLOCK : h->block_size;
		if (b->off < a->off + alen)
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entries %llu and %llu map blocks to overlapping file offsets 0x%llx and 0x%llx",
					 h->path, (unsigned long long)a->entry, (unsigned long long)b->entry,
					 (unsigned long long)a->off, (unsigned long long)b->off);
	}
	return 0;
}
