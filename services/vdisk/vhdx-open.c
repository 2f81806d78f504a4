/* vhdx-open.c: opening a VHDX file (file type identifier, headers, log
 * replay, region table, metadata, BAT) and its parent chain, and closing
 * it cleanly (metadata committed, LogGuid cleared). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx-internal.h"

static vhdx *vhdx_free(vhdx *h)
{
	if (!h)
		return NULL;
	safe_close(h->fd);
	safe_close(h->dfd);
	vhdx_free(h->parent);
	for (size_t c = 0; c < h->bitmap_blocks; c++) {
		if (h->bitmap)
			free(h->bitmap[c]);
		if (h->bm_dirty)
			free(h->bm_dirty[c]);
	}
	free(h->bitmap);
	free(h->bm_dirty);
	for (size_t i = 0; i < h->n_ov; i++)
		free(h->ov[i].data);
	free(h->ov);
	free(h->bat);
	free(h->bat_dirty);
	free(h->extra);
	free(h->loc_relative);
	free(h->loc_absolute);
	free(h->loc_volume);
	free(h->path);
	free(h);
	return NULL;
}

static int load_headers(vhdx *h)
{
	uint8_t buf[2][VHDX_HDR_SIZE];
	struct vhdx_header hd[2] = { 0 };
	char why[2][200];
	for (int i = 0; i < 2; i++) {
		int r = vhdx_pread(h, buf[i], VHDX_HDR_SIZE, i ? VHDX_HDR2_OFF : VHDX_HDR1_OFF);
		if (r < 0)
			return r;
		if (vhdx_header_parse(buf[i], &hd[i], why[i], sizeof why[i]) < 0)
			hd[i].valid = false;
	}
	if (!hd[0].valid && !hd[1].valid)
		return vhdx_fail(h, -EINVAL, "%s: no valid header: header 1: %s; header 2: %s", h->path, why[0],
				 why[1]);
	int cur = !hd[0].valid ? 1 : !hd[1].valid ? 0 : hd[1].seq > hd[0].seq ? 1 : 0;
	h->hdr = hd[cur];
	h->hdr_slot = cur;
	h->hdr_other_valid = hd[1 - cur].valid;
	return 0;
}

static int load_regions(vhdx *h)
{
	_cleanup_free_ uint8_t *buf = malloc(VHDX_RT_SIZE);
	char why[2][256];
	int r = -EINVAL;
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread(h, buf, VHDX_RT_SIZE, i ? VHDX_RT2_OFF : VHDX_RT1_OFF);
		if (r < 0)
			return r;
		r = vhdx_region_parse(buf, h->file_size, h, why[i], sizeof why[i]);
		if (r == 0)
			return 0;
		if (r == -EOPNOTSUPP)
			return vhdx_fail(h, r, "%s: region table %d: %s", h->path, i + 1, why[i]);
	}
	return vhdx_fail(h, r, "%s: no valid region table: region table 1: %s; region table 2: %s",
			 h->path, why[0], why[1]);
}

int vhdx_bat_validate(vhdx *h)
{
	uint64_t max_end = h->bat_off + h->bat_len;
	if (h->meta_off + h->meta_len > max_end)
		max_end = h->meta_off + h->meta_len;
	for (uint64_t i = 0; i < h->bat_entries; i++) {
		uint64_t e = h->bat[i];
		unsigned st = BAT_STATE(e);
		bool sb = (i % (h->chunk_ratio + 1)) == h->chunk_ratio;
		uint64_t off = BAT_OFF(e), len = sb ? VHDX_BITMAP_BLOCK : h->block_size;
		uint64_t idx = sb ? i / (h->chunk_ratio + 1) : i - i / (h->chunk_ratio + 1);
		const char *kind = sb ? "sector bitmap block" : "payload block";
		if (sb ? (st != 0 && st != SB_PRESENT) : (st == 4 || st == 5))
			return vhdx_fail(h, -EINVAL, "%s: BAT entry %llu (%s %llu): invalid state %u", h->path,
					 (unsigned long long)i, kind, (unsigned long long)idx, st);
		bool present = sb ? st == SB_PRESENT
				  : (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT);
		if (!sb && st == VHDX_PB_PARTIALLY_PRESENT && !h->has_parent)
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (payload block %llu): PARTIALLY_PRESENT in a disk without parent",
					 h->path, (unsigned long long)i, (unsigned long long)idx);
		if (!present)
			continue;
		if (sb && !h->has_parent)
			continue; /* unused in dynamic and fixed disks */
		if (off < MiB || off + len > h->file_size)
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (%s %llu): file offset 0x%llx + 0x%llx past end of file (0x%llx)",
					 h->path, (unsigned long long)i, kind, (unsigned long long)idx,
					 (unsigned long long)off, (unsigned long long)len,
					 (unsigned long long)h->file_size);
		if (off < max_end && off + len > VHDX_RT2_OFF + VHDX_RT_SIZE &&
		    ((off < h->bat_off + h->bat_len && h->bat_off < off + len) ||
		     (off < h->meta_off + h->meta_len && h->meta_off < off + len) ||
		     (off < h->hdr.log_offset + h->hdr.log_length && h->hdr.log_offset < off + len)))
			return vhdx_fail(h, -EINVAL,
					 "%s: BAT entry %llu (%s %llu): file offset 0x%llx overlaps the BAT, metadata or log region",
					 h->path, (unsigned long long)i, kind, (unsigned long long)idx,
					 (unsigned long long)off);
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

static int load_bat(vhdx *h)
{
	if (h->bat_entries * 8 > h->bat_len)
		return vhdx_fail(h, -EINVAL, "%s: BAT region: 0x%llx bytes cannot hold %llu entries", h->path,
				 (unsigned long long)h->bat_len, (unsigned long long)h->bat_entries);
	h->bat_pages = (h->bat_entries * 8 + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
	h->bat = malloc(h->bat_pages * VHDX_LOG_SECTOR);
	h->bat_dirty = calloc(h->bat_pages, 1);
	if (!h->bat || !h->bat_dirty)
		return -ENOMEM;
	int r = vhdx_pread(h, h->bat, h->bat_pages * VHDX_LOG_SECTOR, h->bat_off);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < h->bat_entries; i++)
		h->bat[i] = le64toh(h->bat[i]);
	if (h->has_parent) {
		h->bitmap = calloc(h->bitmap_blocks, sizeof *h->bitmap);
		h->bm_dirty = calloc(h->bitmap_blocks, sizeof *h->bm_dirty);
		if (!h->bitmap || !h->bm_dirty)
			return -ENOMEM;
	}
	return vhdx_bat_validate(h);
}

/* Turns a locator path (Windows separators) into a path to try, relative
 * ones against the child's directory. */
static char *locator_path(const vhdx *h, const char *loc)
{
	_cleanup_free_ char *p = strdup(loc), *dir = strdup(h->path);
	if (!p || !dir)
		return NULL;
	for (char *c = p; *c; c++)
		if (*c == '\\')
			*c = '/';
	char *s = p;
	if (s[0] == '.' && s[1] == '/')
		s += 2;
	if (*s == '/' || loc == h->loc_absolute)
		return strdup(s);
	char *out;
	if (asprintf(&out, "%s/%s", dirname(dir), s) < 0)
		return NULL;
	return out;
}

int vhdx_chain_open(vhdx *h, unsigned flags, vhdx_err *err, int depth, char **seen)
{
	if (depth + 1 >= VHDX_CHAIN_MAX) {
		snprintf(err->msg, sizeof err->msg, "%s: parent chain longer than %d files", h->path,
			 VHDX_CHAIN_MAX);
		return -ELOOP;
	}
	const char *cands[3] = { h->loc_relative, h->loc_absolute, h->loc_volume };
	_cleanup_free_ char *ppath = NULL;
	for (int i = 0; i < 3 && !ppath; i++) {
		if (!cands[i])
			continue;
		char *p = locator_path(h, cands[i]);
		if (p && access(p, F_OK) == 0)
			ppath = p;
		else
			free(p);
	}
	if (!ppath) {
		snprintf(err->msg, sizeof err->msg,
			 "%s: parent locator: parent not found (relative_path \"%s\", absolute_win32_path \"%s\")",
			 h->path, h->loc_relative ? h->loc_relative : "", h->loc_absolute ? h->loc_absolute : "");
		return -ENOENT;
	}
	char real[PATH_MAX];
	if (!realpath(ppath, real)) {
		snprintf(err->msg, sizeof err->msg, "%s: parent %s: %m", h->path, ppath);
		return -errno;
	}
	for (int i = 0; i <= depth; i++)
		if (seen[i] && !strcmp(seen[i], real)) {
			snprintf(err->msg, sizeof err->msg,
				 "%s: parent locator cycle: parent %s is already in the chain", h->path, real);
			return -ELOOP;
		}
	seen[depth + 1] = strdup(real);
	vhdx *p = NULL;
	extern int vhdx_open_depth(const char *path, unsigned flags, vhdx **ret, vhdx_err *err, int depth,
				   char **seen);
	int r = vhdx_open_depth(ppath, (flags | VHDX_O_RDONLY) & ~VHDX_O_NO_REPLAY, &p, err, depth + 1,
				seen);
	if (r < 0)
		return r;
	char pg[39];
	vhdx_guid_format(&p->hdr.data_write, pg);
	if (strcasecmp(pg, h->parent_linkage) != 0 && !(flags & VHDX_O_IGNORE_PARENT_ID)) {
		snprintf(err->msg, sizeof err->msg,
			 "%s: parent_linkage %s does not match the DataWriteGuid %s of its parent %s (the parent was modified after the child was made; open with the override flag to read it anyway)",
			 h->path, h->parent_linkage, pg, p->path);
		vhdx_free(p);
		return -ESTALE;
	}
	if (p->vsize != h->vsize || p->lsec != h->lsec) {
		snprintf(err->msg, sizeof err->msg,
			 "%s: parent %s has size %llu / sector %u, the child %llu / %u", h->path, p->path,
			 (unsigned long long)p->vsize, p->lsec, (unsigned long long)h->vsize, h->lsec);
		vhdx_free(p);
		return -EINVAL;
	}
	h->parent = p;
	/* A read-write open renews paths that no longer lead to the parent
	 * (the files were moved): Hyper-V does the same. Not fatal. */
	if (!h->ro) {
		bool stale = false;
		const char *both[2] = { h->loc_relative, h->loc_absolute };
		for (int i = 0; i < 2; i++) {
			if (i == 0 && !both[i])
				continue; /* no relative path recorded (other tools may omit it) */
			_cleanup_free_ char *c = both[i] ? locator_path(h, both[i]) : NULL;
			char rp[PATH_MAX];
			if (!c || !realpath(c, rp) || strcmp(rp, real))
				stale = true;
		}
		if (stale && vhdx_locator_rewrite(h, ppath) < 0)
			fprintf(stderr, "vdisk: %s\n", h->err); /* still usable as found */
	}
	return 0;
}

int vhdx_open_depth(const char *path, unsigned flags, vhdx **ret, vhdx_err *err, int depth, char **seen);
int vhdx_open_depth(const char *path, unsigned flags, vhdx **ret, vhdx_err *err, int depth, char **seen)
{
	if (flags & VHDX_O_IGNORE_PARENT_ID)
		flags |= VHDX_O_RDONLY;
	vhdx *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	h->dfd = -1;
	h->ro = flags & VHDX_O_RDONLY;
	h->keep_identity = flags & VHDX_O_KEEP_IDENTITY;
	h->path = strdup(path);
	int r;
	if (!h->path) {
		r = -ENOMEM;
		goto fail;
	}
	h->fd = open(path, (h->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (h->fd < 0) {
		r = vhdx_fail(h, -errno, "%s: %m", path);
		goto fail;
	}
	if (!h->ro && flock(h->fd, LOCK_EX | LOCK_NB) < 0) {
		r = vhdx_fail(h, errno == EWOULDBLOCK ? -EBUSY : -errno, "%s: in use by another writer",
			      path);
		goto fail;
	}
	struct stat st;
	if (fstat(h->fd, &st) < 0) {
		r = vhdx_fail(h, -errno, "%s: fstat: %m", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		r = vhdx_fail(h, -EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	h->file_size = (uint64_t)st.st_size;
	if (h->file_size < MiB) {
		r = vhdx_fail(h, -EINVAL, "%s: %llu bytes is too small for a VHDX file", path,
			      (unsigned long long)h->file_size);
		goto fail;
	}
	uint8_t sig[8];
	if ((r = vhdx_pread(h, sig, 8, 0)) < 0)
		goto fail;
	if (get64(sig) != SIG_FTI) {
		r = vhdx_fail(h, -EINVAL, "%s: file type identifier: bad signature (want \"vhdxfile\")", path);
		goto fail;
	}
	if ((r = load_headers(h)) < 0)
		goto fail;
	if ((r = vhdx_log_load(h, !h->ro && !(flags & VHDX_O_NO_REPLAY))) < 0)
		goto fail;
	if ((r = load_regions(h)) < 0)
		goto fail;
	if ((r = vhdx_meta_load(h)) < 0)
		goto fail;
	if ((r = load_bat(h)) < 0)
		goto fail;
	if (flags & VHDX_O_DIRECT) /* not every file system has it: then buffered */
		h->dfd = open(path, (h->ro ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (h->has_parent) {
		snprintf(err->msg, sizeof err->msg, "%s", "");
		r = vhdx_chain_open(h, flags, err, depth, seen);
		if (r < 0) {
			vhdx_free(h);
			return r;
		}
	}
	*ret = h;
	return 0;
fail:
	snprintf(err->msg, sizeof err->msg, "%s", h->err);
	vhdx_free(h);
	return r;
}

int vhdx_open(const char *path, unsigned flags, vhdx **ret, vhdx_err *err)
{
	char *seen[VHDX_CHAIN_MAX + 2] = { 0 };
	char real[PATH_MAX];
	vhdx_err local;
	if (!err)
		err = &local;
	err->msg[0] = 0;
	if (realpath(path, real))
		seen[0] = strdup(real);
	int r = vhdx_open_depth(path, flags, ret, err, 0, seen);
	for (size_t i = 0; i < ELEMENTSOF(seen); i++)
		free(seen[i]);
	return r;
}

static int close_commit(vhdx *h)
{
	if (h->ro)
		return 0;
	int r = vhdx_log_commit(h);
	if (r < 0)
		return r;
	if (h->file_touched && fdatasync(h->fd) < 0)
		return vhdx_fail(h, -errno, "%s: fdatasync: %m", h->path);
	if (!vhdx_guid_is_zero(&h->hdr.log_guid)) {
		/* everything is in place: the log is no longer needed */
		memset(&h->hdr.log_guid, 0, sizeof h->hdr.log_guid);
		r = vhdx_header_update(h);
		if (r < 0)
			return r;
	}
	return 0;
}

int vhdx_close_checked(vhdx *h)
{
	if (!h)
		return 0;
	int r = close_commit(h);
	vhdx_free(h);
	return r;
}

vhdx *vhdx_close(vhdx *h)
{
	vhdx_close_checked(h);
	return NULL;
}
