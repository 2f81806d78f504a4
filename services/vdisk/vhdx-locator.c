/* vhdx-locator.c: the parent locator of a differencing disk: the paths we
 * record (relative to the child's directory and absolute, with Windows
 * separators as the spec writes them), building the item, and rewriting
 * it through the log when the recorded paths went stale (the files were
 * moved, and the parent was found by the other path). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhdx-internal.h"

size_t vhdx_put_utf16(uint8_t *out, const char *s)
{
	/* paths are taken as UTF-8; code points above U+FFFF become pairs */
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t c = *p++;
		if (c >= 0xf0 && p[0] && p[1] && p[2]) {
			c = (c & 7) << 18 | (p[0] & 0x3fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
			p += 3;
		} else if (c >= 0xe0 && p[0] && p[1]) {
			c = (c & 15) << 12 | (p[0] & 0x3fu) << 6 | (p[1] & 0x3fu);
			p += 2;
		} else if (c >= 0xc0 && p[0]) {
			c = (c & 31) << 6 | (p[0] & 0x3fu);
			p += 1;
		}
		if (c >= 0x10000) {
			c -= 0x10000;
			put16(out + n, (uint16_t)(0xd800 + (c >> 10)));
			put16(out + n + 2, (uint16_t)(0xdc00 + (c & 0x3ff)));
			n += 4;
		} else {
			put16(out + n, (uint16_t)c);
			n += 2;
		}
	}
	return n;
}

bool vhdx_locator_win_path(const char *v)
{
	if (!v)
		return false;
	/* a drive letter ("C:\\" or "C:"), or "\\\\?\\" / "\\\\server\\" forms */
	bool drive = ((v[0] >= 'A' && v[0] <= 'Z') || (v[0] >= 'a' && v[0] <= 'z')) && v[1] == ':';
	return drive || (v[0] == '\\' && v[1] == '\\');
}

size_t vhdx_locator_merge(const struct vhdx_locator_entry *old, size_t n, const char *rel,
			  const char *abs, struct vhdx_locator_entry *ret)
{
	size_t k = 0;
	bool have_rel = false, have_abs = false;
	for (size_t i = 0; i < n; i++) {
		struct vhdx_locator_entry e = old[i];
		if (!strcmp(e.key, "relative_path")) {
			if (have_rel || !rel)
				continue; /* duplicates would leave readers guessing */
			have_rel = true;
			e.value = (char *)rel;
		} else if (!strcmp(e.key, "absolute_win32_path")) {
			if (have_abs)
				continue;
			have_abs = true;
			/* a Windows path is Windows' to renew: ours is a host path */
			if (!vhdx_locator_win_path(e.value) && abs)
				e.value = (char *)abs;
		}
		ret[k++] = e;
	}
	if (!have_rel && rel)
		ret[k++] = (struct vhdx_locator_entry){ (char *)"relative_path", (char *)rel };
	if (!have_abs && abs)
		ret[k++] = (struct vhdx_locator_entry){ (char *)"absolute_win32_path", (char *)abs };
	return k;
}

/* The parent locator item: type GUID, then key/value pairs in UTF-16LE.
 * Returns the item's length, or 0 when it does not fit in cap. */
size_t vhdx_locator_build_kv(uint8_t *out, size_t cap, const struct vhdx_locator_entry *kv, size_t n)
{
	size_t need = 20 + 12 * n;
	for (size_t i = 0; i < n; i++)
		need += 4 * (strlen(kv[i].key) + strlen(kv[i].value)); /* UTF-16 never takes more */
	if (need > cap || n > UINT16_MAX)
		return 0;
	vhdx_guid t;
	vhdx_guid_const(GUID_PARENT_TYPE_VHDX, &t);
	memset(out, 0, cap);
	memcpy(out, t.b, 16);
	put16(out + 18, (uint16_t)n);
	size_t pos = 20 + 12 * n;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = out + 20 + 12 * i;
		size_t kl = vhdx_put_utf16(out + pos, kv[i].key);
		put32(e, (uint32_t)pos);
		put16(e + 8, (uint16_t)kl);
		pos += kl;
		size_t vl = vhdx_put_utf16(out + pos, kv[i].value);
		put32(e + 4, (uint32_t)pos);
		put16(e + 10, (uint16_t)vl);
		pos += vl;
	}
	return pos;
}

static size_t build_kv(uint8_t *out, size_t cap, const char *const kv[][2], size_t n)
{
	vhdx_guid t;
	vhdx_guid_const(GUID_PARENT_TYPE_VHDX, &t);
	memset(out, 0, cap);
	memcpy(out, t.b, 16);
	put16(out + 18, (uint16_t)n);
	size_t pos = 20 + 12 * n;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = out + 20 + 12 * i;
		size_t kl = vhdx_put_utf16(out + pos, kv[i][0]);
		put32(e, (uint32_t)pos);
		put16(e + 8, (uint16_t)kl);
		pos += kl;
		size_t vl = vhdx_put_utf16(out + pos, kv[i][1]);
		put32(e + 4, (uint32_t)pos);
		put16(e + 10, (uint16_t)vl);
		pos += vl;
	}
	return pos;
}

size_t vhdx_locator_build(uint8_t *out, size_t cap, const vhdx_guid *parent_dwg, const char *rel,
			  const char *abs)
{
	char linkage[39];
	vhdx_guid_format(parent_dwg, linkage);
	/* lower case: libvhdi reads only that form, and Hyper-V accepts it */
	for (char *c = linkage; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	const char *kv[3][2] = { { "parent_linkage", linkage }, { "absolute_win32_path", abs },
				 { "relative_path", rel } };
	return build_kv(out, cap, kv, rel ? 3 : 2);
}

/* The path of pabs relative to the directory cdir (both canonical and
 * absolute), with Windows separators: ".\\d\\p.vhdx" when the parent is
 * below, "..\\..\\x\\p.vhdx" when it is not (the spec's relative_path
 * allows both; Hyper-V writes the second form too). */
static char *relative_to(const char *cdir, const char *pabs)
{
	/* the longest common prefix that ends at a component boundary */
	size_t common = 0;
	for (size_t i = 0;; i++) {
		bool cend = cdir[i] == 0 || cdir[i] == '/', pend = pabs[i] == '/';
		if (cend && pend)
			common = i;
		if (cdir[i] == 0 || pabs[i] == 0 || cdir[i] != pabs[i])
			break;
	}
	size_t ups = 0;
	for (const char *c = cdir + common; *c; c++)
		ups += *c == '/' && c[1] != 0;
	/* cdir "/" is the root, with no component after the common "/" */
	if (!strcmp(cdir, "/"))
		ups = 0;
	const char *rest = pabs + common + 1;
	size_t n = 3 * ups + strlen(rest) + 3;
	char *r = malloc(n);
	if (!r)
		return NULL;
	char *w = r;
	if (!ups)
		w = stpcpy(w, ".\\");
	for (size_t i = 0; i < ups; i++)
		w = stpcpy(w, "..\\");
	w = stpcpy(w, rest);
	for (char *q = r; *q; q++)
		if (*q == '/')
			*q = '\\';
	return r;
}

/* Paths for the locator: relative to the child's directory and absolute,
 * with Windows separators as the spec writes them. canonical: both paths
 * are canonical already (found beneath a grant, no links), so they are
 * taken as they are instead of resolved by name. */
int vhdx_locator_paths(const char *child, const char *parent, bool canonical, char **ret_rel,
		       char **ret_abs)
{
	char pabs[PATH_MAX], cdir[PATH_MAX];
	_cleanup_free_ char *c = strdup(child);
	if (!c)
		return -ENOMEM;
	if (canonical) {
		if ((size_t)snprintf(pabs, sizeof pabs, "%s", parent) >= sizeof pabs ||
		    (size_t)snprintf(cdir, sizeof cdir, "%s", dirname(c)) >= sizeof cdir)
			return -ENAMETOOLONG;
	} else if (!realpath(parent, pabs) || !realpath(dirname(c), cdir)) {
		return -errno;
	}
	char *r = relative_to(cdir, pabs), *a = strdup(pabs);
	if (!a || !r) {
		free(a);
		free(r);
		return -ENOMEM;
	}
	for (char *p = a; *p; p++)
		if (*p == '/')
			*p = '\\';
	*ret_rel = r;
	*ret_abs = a;
	return 0;
}

/* Replaces the locator item with fresh paths to parent_path (keeping the
 * parent_linkage), in place when it fits, else after the last item. The
 * changed metadata pages go through the log like any metadata update. */
static int write_item(vhdx *h, const uint8_t *loc, uint32_t len);

int vhdx_locator_rewrite(vhdx *h, const char *child_path, const char *parent_path, bool canonical)
{
	_cleanup_free_ char *rel = NULL, *abs = NULL;
	int r = vhdx_locator_paths(child_path, parent_path, canonical, &rel, &abs);
	if (r < 0)
		return vhdx_fail(h, r, "%s: parent locator: paths to %s: %s", h->path, parent_path, strerror(-r));
	if (strlen(abs) > 1000 || (rel && strlen(rel) > 1000))
		return vhdx_fail(h, -ENAMETOOLONG, "%s: parent locator: path too long", h->path);
	vhdx_guid dwg;
	if (vhdx_guid_parse(h->parent_linkage, &dwg) < 0)
		return -EINVAL;
	uint8_t loc[16384];
	uint32_t len;
	if (h->n_loc_kv) {
		/* keep what the file says; renew only what we resolved */
		_cleanup_free_ struct vhdx_locator_entry *kv = calloc(h->n_loc_kv + 2, sizeof *kv);
		if (!kv)
			return -ENOMEM;
		size_t n = vhdx_locator_merge(h->loc_kv, h->n_loc_kv, rel, abs, kv);
		len = (uint32_t)vhdx_locator_build_kv(loc, sizeof loc, kv, n);
		if (!len)
			return vhdx_fail(h, -ENAMETOOLONG, "%s: parent locator: entries too long", h->path);
	} else {
		len = (uint32_t)vhdx_locator_build(loc, sizeof loc, &dwg, rel, abs);
	}
	return write_item(h, loc, len);
}

int vhdx_set_locator(vhdx *h, const struct vhdx_locator_entry *kv, size_t n)
{
	if (!h->has_parent)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: not a differencing disk", h->path);
	bool linkage = false, path = false;
	for (size_t i = 0; i < n; i++) {
		linkage = linkage || !strcmp(kv[i].key, "parent_linkage");
		path = path || !strcmp(kv[i].key, "relative_path") || !strcmp(kv[i].key, "absolute_win32_path") ||
		       !strcmp(kv[i].key, "volume_path");
	}
	if (!linkage || !path)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: parent_linkage and a path entry are required",
				 h->path);
	uint8_t loc[16384];
	uint32_t len = (uint32_t)vhdx_locator_build_kv(loc, sizeof loc, kv, n);
	if (!len)
		return vhdx_fail(h, -ENAMETOOLONG, "%s: parent locator: entries too long", h->path);
	return write_item(h, loc, len);
}

int vhdx_set_parent(vhdx *h, const char *parent_path, const vhdx_guid *linkage)
{
	if (!h->has_parent)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: not a differencing disk", h->path);
	_cleanup_free_ char *rel = NULL, *abs = NULL;
	int r = vhdx_locator_paths(h->path, parent_path, false, &rel, &abs);
	if (r < 0)
		return vhdx_fail(h, r, "%s: parent locator: paths to %s: %s", h->path, parent_path, strerror(-r));
	if (strlen(abs) > 1000 || strlen(rel) > 1000)
		return vhdx_fail(h, -ENAMETOOLONG, "%s: parent locator: path too long", h->path);
	uint8_t loc[16384];
	uint32_t len = (uint32_t)vhdx_locator_build(loc, sizeof loc, linkage, rel, abs);
	if ((r = vhdx_ensure_writable(h, false)) < 0 || (r = write_item(h, loc, len)) < 0)
		return r;
	vhdx_guid_format(linkage, h->parent_linkage);
	return 0;
}

/* Replaces the locator item by loc, in place when it fits, else after the
 * last item. The changed metadata pages go through the log like any
 * metadata update; the handle then reads the new item back. */
static int write_item(vhdx *h, const uint8_t *loc, uint32_t len)
{
	int r;
	_cleanup_free_ uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
	if (!t)
		return -ENOMEM;
	if ((r = vhdx_pread(h, t, VHDX_META_TABLE_SIZE, h->meta_off)) < 0)
		return r;
	vhdx_guid want;
	vhdx_guid_const(GUID_PARENT_LOC, &want);
	uint16_t n = get16(t + 10);
	int64_t k = -1;
	uint64_t end = VHDX_META_TABLE_SIZE;
	for (uint16_t i = 0; i < n && i < VHDX_META_MAX_ENTRIES; i++) {
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		uint64_t o = get32(e + 16), l = get32(e + 20);
		if (o + l > end)
			end = o + l;
		if (!memcmp(e, want.b, 16))
			k = i;
	}
	if (k < 0)
		return vhdx_fail(h, -EINVAL, "%s: parent locator: no metadata entry", h->path);
	uint8_t *ent = t + 32 + 32 * (size_t)k;
	uint64_t old_off = get32(ent + 16), old_len = get32(ent + 20);
	uint64_t new_off = len <= old_len ? old_off : (end + 7) / 8 * 8;
	if (new_off + len > h->meta_len)
		return vhdx_fail(h, -ENOSPC, "%s: parent locator: no room in the metadata region", h->path);
	/* the pages to rewrite: the table page of the entry, and the item's */
	uint64_t lo = new_off, hi = new_off + (len <= old_len ? old_len : len);
	size_t npages = 1 + (size_t)((hi - 1) / VHDX_LOG_SECTOR - lo / VHDX_LOG_SECTOR + 1);
	struct vhdx_page *pg = calloc(npages, sizeof *pg);
	if (!pg)
		return -ENOMEM;
	size_t np = 0;
	uint64_t tpage = (32 + 32 * (uint64_t)k) / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	put32(ent + 16, (uint32_t)new_off);
	put32(ent + 20, len);
	pg[np].off = h->meta_off + tpage;
	memcpy(pg[np++].data, t + tpage, VHDX_LOG_SECTOR);
	for (uint64_t p = lo / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR; p < hi; p += VHDX_LOG_SECTOR) {
		if (p == tpage) /* cannot be: items start at 64 KiB */
			continue;
		struct vhdx_page *x = &pg[np++];
		x->off = h->meta_off + p;
		if ((r = vhdx_pread(h, x->data, VHDX_LOG_SECTOR, x->off)) < 0) {
			free(pg);
			return r;
		}
		for (uint64_t b = p; b < p + VHDX_LOG_SECTOR; b++) {
			if (b >= new_off && b < new_off + len)
				x->data[b - p] = loc[b - new_off];
			else if (len <= old_len && b >= old_off && b < old_off + old_len)
				x->data[b - p] = 0;
		}
	}
	free(h->extra);
	h->extra = pg;
	h->n_extra = np;
	if ((r = vhdx_log_commit(h)) < 0)
		return r;
	/* the handle's view follows the file: reparse what was written */
	free(h->loc_relative);
	free(h->loc_absolute);
	free(h->loc_volume);
	h->loc_relative = h->loc_absolute = h->loc_volume = NULL;
	return vhdx_locator_parse(h, loc, len);
}
