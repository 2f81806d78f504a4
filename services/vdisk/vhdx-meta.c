/* vhdx-meta.c: the metadata region: its table, the known items (file
 * parameters, virtual disk size, sector sizes, page 83 data) and the parent
 * locator of a differencing disk (UTF-16LE key/value pairs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhdx-internal.h"

/* UTF-16LE -> UTF-8; NULL on malformed input. */
static char *utf16_to_utf8(const uint8_t *p, size_t len)
{
	if (len % 2)
		return NULL;
	char *out = malloc(len / 2 * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t c = get16(p + i);
		if (c >= 0xd800 && c < 0xdc00) {
			if (i + 2 >= len)
				goto bad;
			uint32_t lo = get16(p + i + 2);
			if (lo < 0xdc00 || lo >= 0xe000)
				goto bad;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		} else if (c >= 0xdc00 && c < 0xe000) {
			goto bad;
		}
		if (c == 0)
			goto bad;
		if (c < 0x80) {
			*o++ = (char)c;
		} else if (c < 0x800) {
			*o++ = (char)(0xc0 | c >> 6);
			*o++ = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			*o++ = (char)(0xe0 | c >> 12);
			*o++ = (char)(0x80 | ((c >> 6) & 0x3f));
			*o++ = (char)(0x80 | (c & 0x3f));
		} else {
			/* 4 bytes fit: a surrogate pair took 4 input bytes */
			*o++ = (char)(0xf0 | c >> 18);
			*o++ = (char)(0x80 | ((c >> 12) & 0x3f));
			*o++ = (char)(0x80 | ((c >> 6) & 0x3f));
			*o++ = (char)(0x80 | (c & 0x3f));
		}
	}
	*o = 0;
	return out;
bad:
	free(out);
	return NULL;
}

int vhdx_locator_parse(vhdx *h, const uint8_t *p, uint32_t len)
{
	vhdx_guid type, want;
	vhdx_guid_const(GUID_PARENT_TYPE_VHDX, &want);
	if (len < 20)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: %u bytes is too short", h->path, len);
	memcpy(type.b, p, 16);
	if (!vhdx_guid_eq(&type, &want)) {
		char gs[39];
		vhdx_guid_format(&type, gs);
		return vhdx_fail(h, -EOPNOTSUPP, "%s: parent locator: unknown locator type %s", h->path, gs);
	}
	for (size_t i = 0; i < h->n_loc_kv; i++) {
		free(h->loc_kv[i].key);
		free(h->loc_kv[i].value);
	}
	h->n_loc_kv = 0;
	h->parent_linkage2[0] = 0;
	uint16_t n = get16(p + 18);
	if (20 + (uint64_t)n * 12 > len)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: %u entries do not fit in %u bytes", h->path,
				 n, len);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *e = p + 20 + 12 * (size_t)i;
		uint32_t ko = get32(e), vo = get32(e + 4);
		uint16_t kl = get16(e + 8), vl = get16(e + 10);
		if (!kl || !vl || (uint64_t)ko + kl > len || (uint64_t)vo + vl > len)
			return vhdx_fail(h, -EINVAL,
					 "%s: parent locator entry %u: key/value at 0x%x/0x%x out of the item (%u bytes)",
					 h->path, i, ko, vo, len);
		_cleanup_free_ char *k = utf16_to_utf8(p + ko, kl);
		char *v = utf16_to_utf8(p + vo, vl);
		if (!k || !v) {
			free(v);
			return vhdx_fail(h, -EINVAL, "%s: parent locator entry %u: malformed UTF-16", h->path, i);
		}
		char *vk = strdup(k), *vv = strdup(v);
		struct vhdx_locator_entry *kv = realloc(h->loc_kv, (h->n_loc_kv + 1) * sizeof *kv);
		if (!vk || !vv || !kv) {
			free(vk);
			free(vv);
			free(v);
			if (kv)
				h->loc_kv = kv;
			return -ENOMEM;
		}
		h->loc_kv = kv;
		kv[h->n_loc_kv++] = (struct vhdx_locator_entry){ vk, vv };
		char **slot = NULL;
		if (!strcmp(k, "parent_linkage2")) {
			/* a second accepted DataWriteGuid; anything else (Hyper-V
			 * writes a zero GUID) accepts nothing but is kept */
			vhdx_guid g;
			if (vhdx_guid_parse(v, &g) == 0 && !vhdx_guid_is_zero(&g))
				vhdx_guid_format(&g, h->parent_linkage2);
		} else if (!strcmp(k, "parent_linkage")) {
			vhdx_guid g;
			if (vhdx_guid_parse(v, &g) < 0) {
				vhdx_fail(h, -EINVAL, "%s: parent locator: parent_linkage \"%.60s\" is not a GUID",
					  h->path, v);
				free(v);
				return -EINVAL;
			}
			vhdx_guid_format(&g, h->parent_linkage);
		} else if (!strcmp(k, "relative_path"))
			slot = &h->loc_relative;
		else if (!strcmp(k, "absolute_win32_path"))
			slot = &h->loc_absolute;
		else if (!strcmp(k, "volume_path"))
			slot = &h->loc_volume;
		if (slot) {
			free(*slot);
			*slot = v;
		} else
			free(v);
	}
	if (!h->parent_linkage[0])
		return vhdx_fail(h, -EINVAL, "%s: parent locator: no parent_linkage entry", h->path);
	if (!h->loc_relative && !h->loc_absolute && !h->loc_volume && !vhdx_locator_get(h, VHDX_LOC_NBD))
		return vhdx_fail(h, -EINVAL, "%s: parent locator: no parent path entry (nor " VHDX_LOC_NBD ")",
				 h->path);
	return 0;
}

enum { IT_PARAMS, IT_VSIZE, IT_PAGE83, IT_LSEC, IT_PSEC, IT_LOC, IT_N };
static const char *const item_guid[IT_N] = { GUID_FILE_PARAMS, GUID_VDISK_SIZE, GUID_PAGE83,
					     GUID_LSEC, GUID_PSEC, GUID_PARENT_LOC };
static const char *const item_name[IT_N] = { "file parameters", "virtual disk size", "page 83 data",
					     "logical sector size", "physical sector size",
					     "parent locator" };
static const uint32_t item_len[IT_N] = { 8, 8, 16, 4, 4, 0 };

int vhdx_meta_load(vhdx *h)
{
	if (h->meta_len < VHDX_META_TABLE_SIZE)
		return vhdx_fail(h, -EINVAL, "%s: metadata region: length 0x%llx below 64 KiB", h->path,
				 (unsigned long long)h->meta_len);
	_cleanup_free_ uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
	if (!t)
		return -ENOMEM;
	int r = vhdx_pread(h, t, VHDX_META_TABLE_SIZE, h->meta_off);
	if (r < 0)
		return r;
	if (get64(t) != SIG_META)
		return vhdx_fail(h, -EINVAL, "%s: metadata table: bad signature (want \"metadata\")", h->path);
	uint16_t n = get16(t + 10);
	if (n > VHDX_META_MAX_ENTRIES)
		return vhdx_fail(h, -EINVAL, "%s: metadata table: entry count %u exceeds %u", h->path, n,
				 VHDX_META_MAX_ENTRIES);
	int64_t where[IT_N];
	uint32_t len[IT_N];
	for (int i = 0; i < IT_N; i++)
		where[i] = -1;
	vhdx_guid known[IT_N];
	for (int i = 0; i < IT_N; i++)
		vhdx_guid_const(item_guid[i], &known[i]);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		vhdx_guid g;
		memcpy(g.b, e, 16);
		uint32_t off = get32(e + 16), l = get32(e + 20), fl = get32(e + 24);
		char gs[39];
		vhdx_guid_format(&g, gs);
		if (l && (off < VHDX_META_TABLE_SIZE || (uint64_t)off + l > h->meta_len))
			return vhdx_fail(h, -EINVAL,
					 "%s: metadata entry %u %s: offset 0x%x length 0x%x outside the metadata region (0x%llx)",
					 h->path, i, gs, off, l, (unsigned long long)h->meta_len);
		int k;
		for (k = 0; k < IT_N; k++)
			if (vhdx_guid_eq(&g, &known[k]))
				break;
		if (k == IT_N) {
			if (fl & 4)
				return vhdx_fail(h, -EOPNOTSUPP, "%s: metadata entry %u: unknown required item %s",
						 h->path, i, gs);
			continue;
		}
		if (where[k] >= 0)
			return vhdx_fail(h, -EINVAL, "%s: metadata entry %u: %s appears twice", h->path, i,
					 item_name[k]);
		if (item_len[k] && l != item_len[k])
			return vhdx_fail(h, -EINVAL, "%s: metadata entry %u: %s has length %u (want %u)", h->path,
					 i, item_name[k], l, item_len[k]);
		if (k == IT_LOC && (l == 0 || l > MiB))
			return vhdx_fail(h, -EINVAL, "%s: metadata entry %u: parent locator length %u", h->path, i,
					 l);
		where[k] = off;
		len[k] = l;
	}
	uint8_t v[16];
	for (int k = 0; k < IT_PSEC + 1; k++) {
		if (where[k] < 0)
			return vhdx_fail(h, -EINVAL, "%s: metadata: required item %s missing", h->path,
					 item_name[k]);
		r = vhdx_pread(h, v, item_len[k], h->meta_off + (uint64_t)where[k]);
		if (r < 0)
			return r;
		switch (k) {
		case IT_PARAMS: {
			uint32_t flags = get32(v + 4);
			h->block_size = get32(v);
			h->leave_alloc = flags & 1;
			h->has_parent = flags & 2;
			if (h->block_size < MiB || h->block_size > 256 * MiB ||
			    (h->block_size & (h->block_size - 1)))
				return vhdx_fail(h, -EINVAL,
						 "%s: metadata file parameters: block size %u is not a power of two in 1..256 MiB",
						 h->path, h->block_size);
			break;
		}
		case IT_VSIZE: h->vsize = get64(v); break;
		case IT_PAGE83: memcpy(h->page83.b, v, 16); break;
		case IT_LSEC: h->lsec = get32(v); break;
		case IT_PSEC: h->psec = get32(v); break;
		}
	}
	if (h->lsec != 512 && h->lsec != 4096)
		return vhdx_fail(h, -EINVAL, "%s: metadata logical sector size: %u (want 512 or 4096)", h->path,
				 h->lsec);
	if (h->psec != 512 && h->psec != 4096)
		return vhdx_fail(h, -EINVAL, "%s: metadata physical sector size: %u (want 512 or 4096)",
				 h->path, h->psec);
	if (h->vsize == 0 || h->vsize % h->lsec || h->vsize > VHDX_MAX_VSIZE)
		return vhdx_fail(h, -EINVAL,
				 "%s: metadata virtual disk size: %llu is not a non-zero multiple of %u up to 64 TiB",
				 h->path, (unsigned long long)h->vsize, h->lsec);
	if (h->has_parent) {
		if (where[IT_LOC] < 0)
			return vhdx_fail(h, -EINVAL, "%s: metadata: differencing disk without a parent locator",
					 h->path);
		_cleanup_free_ uint8_t *loc = malloc(len[IT_LOC]);
		if (!loc)
			return -ENOMEM;
		r = vhdx_pread(h, loc, len[IT_LOC], h->meta_off + (uint64_t)where[IT_LOC]);
		if (r < 0)
			return r;
		r = vhdx_locator_parse(h, loc, len[IT_LOC]);
		if (r < 0)
			return r;
	}
	vhdx_geometry(h);
	return 0;
}

void vhdx_geometry(vhdx *h)
{
	h->chunk_ratio = (VHDX_SECTORS_PER_BITMAP * h->lsec) / h->block_size;
	h->data_blocks = (h->vsize + h->block_size - 1) / h->block_size;
	h->bitmap_blocks = (h->data_blocks + h->chunk_ratio - 1) / h->chunk_ratio;
	if (h->has_parent)
		h->bat_entries = h->bitmap_blocks * (h->chunk_ratio + 1);
	else
		h->bat_entries = h->data_blocks + (h->data_blocks - 1) / h->chunk_ratio;
}
