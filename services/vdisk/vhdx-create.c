/* vhdx-create.c: writes a new VHDX file: file type identifier, both
 * headers, both region tables, the metadata region (with a parent locator
 * for a differencing disk), an empty log and the BAT; a fixed disk gets
 * every block allocated and FULLY_PRESENT.
 *
 * Layout: log at 1 MiB (1 MiB), metadata at 2 MiB (1 MiB), BAT at 3 MiB,
 * blocks after the BAT, all 1 MiB aligned. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdx-internal.h"
#include "scm-internal/error.h"

#define LOG_OFF (1 * MiB)
#define LOG_LEN (1 * MiB)
#define META_OFF (2 * MiB)
#define META_LEN (1 * MiB)
#define BAT_OFF_C (3 * MiB)

struct meta_item {
	const char *guid;
	uint32_t flags; /* bit 1 IsVirtualDisk, bit 2 IsRequired */
	const void *data;
	uint32_t len;
};

static void build_meta(uint8_t *m, const struct meta_item *it, size_t n)
{
	put64(m, SIG_META);
	put16(m + 10, (uint16_t)n);
	uint32_t pos = VHDX_META_TABLE_SIZE;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = m + 32 + 32 * i;
		vhdx_guid g;
		vhdx_guid_const(it[i].guid, &g);
		memcpy(e, g.b, 16);
		put32(e + 16, pos);
		put32(e + 20, it[i].len);
		put32(e + 24, it[i].flags);
		memcpy(m + pos, it[i].data, it[i].len);
		pos += (it[i].len + 7) / 8 * 8;
	}
}

static void build_region_table(uint8_t *rt, uint64_t bat_len)
{
	vhdx_guid g;
	memset(rt, 0, VHDX_RT_SIZE);
	put32(rt, SIG_REGI);
	put32(rt + 8, 2);
	vhdx_guid_const(GUID_BAT, &g);
	memcpy(rt + 16, g.b, 16);
	put64(rt + 32, BAT_OFF_C);
	put32(rt + 40, (uint32_t)bat_len);
	put32(rt + 44, 1);
	vhdx_guid_const(GUID_METADATA, &g);
	memcpy(rt + 48, g.b, 16);
	put64(rt + 64, META_OFF);
	put32(rt + 72, META_LEN);
	put32(rt + 76, 1);
	put32(rt + 4, vhdx_crc32c(0, rt, VHDX_RT_SIZE));
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int vhdx_create(const char *path, const struct vhdx_create_opts *o, scm_error **ret_err)
{
	vhdx tmp = { .fd = -1 };
	uint64_t vsize = o->size;
	uint32_t lsec = o->sector_size, psec = o->physical_sector_size ? o->physical_sector_size : 4096;
	uint32_t bs = o->block_size;
	vhdx_guid parent_dwg = { 0 };
	_cleanup_free_ char *rel = NULL, *abs = NULL, *ruri = NULL;
	if (o->parent && vhdx_parent_is_remote(o->parent)) {
		/* a remote parent: the opener checks the URI (the grant) and
		 * says the export's size; the child's parent_linkage is its
		 * own (NBD carries no DataWriteGuid) */
		struct vhdx_remote rp;
		int r = vhdx_remote_connect(o->scope, o->parent, &rp, ret_err);
		if (r < 0)
			return scm_fail(ret_err, r, "%s: remote parent", path);
		uint64_t psize = rp.size;
		ruri = rp.uri;
		rp.uri = NULL;
		vhdx_remote_close(&rp);
		if (o->fixed)
			return scm_fail(ret_err, -EINVAL, "%s: a differencing disk cannot be fixed", path);
		if (vsize && vsize != psize)
			return scm_fail(ret_err, -EINVAL, "%s: size %llu differs from the remote parent's %llu", path,
					(unsigned long long)vsize, (unsigned long long)psize);
		lsec = lsec ? lsec : 512;
		if (!psize || psize % lsec)
			return scm_fail(ret_err, -EINVAL, "%s: the remote parent's size %llu is not a multiple of "
					"the %u-byte sector", path, (unsigned long long)psize, lsec);
		vsize = psize;
		if ((r = vhdx_guid_random(&parent_dwg)) < 0)
			return scm_fail(ret_err, r, "%s: getrandom failed", path);
	} else if (o->parent) {
		vhdx *p = NULL;
		/* under a scope the parent must be had beneath it like any
		 * file of a chain, or nothing about it is told */
		int r = o->scope ? vhdx_open_scoped(o->scope, o->parent, VHDX_O_RDONLY, &p, ret_err)
				 : vhdx_open(o->parent, VHDX_O_RDONLY, &p, ret_err);
		if (r < 0)
			return r;
		_cleanup_free_ char *pc = o->scope ? vhdx_scope_full(o->scope, p->rel, true) : NULL;
		_cleanup_free_ char *crel = NULL, *cc = NULL;
		if (o->scope && (vhdx_scope_rel(o->scope, NULL, path, &crel) < 0 ||
				 !(cc = vhdx_scope_full(o->scope, crel, true)) || !pc)) {
			scm_fail(ret_err, -EACCES, "%s: not a path under the granted directory", path);
			vhdx_close(p);
			return -EACCES;
		}
		if (vsize && vsize != p->vsize) {
			scm_fail(ret_err, -EINVAL, "%s: size %llu differs from the parent's %llu", path,
				 (unsigned long long)vsize, (unsigned long long)p->vsize);
			vhdx_close(p);
			return -EINVAL;
		}
		if (lsec && lsec != p->lsec) {
			scm_fail(ret_err, -EINVAL, "%s: sector size %u differs from the parent's %u", path,
				 lsec, p->lsec);
			vhdx_close(p);
			return -EINVAL;
		}
		vsize = p->vsize;
		lsec = p->lsec;
		psec = p->psec;
		parent_dwg = p->hdr.data_write;
		vhdx_close(p);
		if (o->fixed) {
			return scm_fail(ret_err, -EINVAL, "%s: a differencing disk cannot be fixed", path);
		}
		r = o->scope ? vhdx_locator_paths(cc, pc, true, &rel, &abs)
			     : vhdx_locator_paths(path, o->parent, false, &rel, &abs);
		if (r < 0) {
			return scm_fail(ret_err, r, "%s: parent %s: %s", path, o->parent, strerror(-r));
		}
	}
	if (!lsec)
		lsec = 512;
	if (!bs)
		bs = o->parent ? 2 * MiB : 32 * MiB;
	if (lsec != 512 && lsec != 4096) {
		return scm_fail(ret_err, -EINVAL, "sector size %u: must be 512 or 4096", lsec);
	}
	if (psec != 512 && psec != 4096) {
		return scm_fail(ret_err, -EINVAL, "physical sector size %u: must be 512 or 4096", psec);
	}
	if (bs < MiB || bs > 256 * MiB || (bs & (bs - 1))) {
		return scm_fail(ret_err, -EINVAL, "block size %u: must be a power of two from 1 MiB to 256 MiB",
			 bs);
	}
	if (!vsize || vsize % lsec || vsize > VHDX_MAX_VSIZE) {
		return scm_fail(ret_err, -EINVAL, "size %llu: must be a non-zero multiple of the %u-byte sector, at most 64 TiB",
			 (unsigned long long)vsize, lsec);
	}
	tmp.vsize = vsize;
	tmp.lsec = lsec;
	tmp.block_size = bs;
	tmp.has_parent = o->parent != NULL;
	vhdx_geometry(&tmp);
	uint64_t bat_len = (tmp.bat_entries * 8 + MiB - 1) / MiB * MiB;
	if (bat_len > UINT32_MAX - MiB) {
		return scm_fail(ret_err, -EINVAL, "size %llu with block size %u needs a BAT over 4 GiB",
			 (unsigned long long)vsize, bs);
	}
	if (o->bat_max && bat_len > o->bat_max) {
		return scm_fail(ret_err, -EFBIG, "size %llu with block size %u needs a %llu MiB block table, over the %llu MiB allowed (a larger block size needs less)",
			 (unsigned long long)vsize, bs, (unsigned long long)(bat_len / MiB),
			 (unsigned long long)(o->bat_max / MiB));
	}
	uint64_t data_off = BAT_OFF_C + bat_len;
	uint64_t end = o->fixed ? data_off + tmp.data_blocks * bs : data_off;

	int fd, dirfd = AT_FDCWD;
	const char *name = path;
	if (o->scope) {
		/* the directory beneath the scope, then the name in it: O_EXCL
		 * and O_NOFOLLOW, so no link is followed anywhere */
		scm_error *why = NULL;
		int q = vhdx_scope_dir(o->scope, path, &dirfd, &name, &why);
		if (q < 0) {
			scm_error_push(ret_err, vhdx_error_prefix(why, q, path));
			return q;
		}
	}
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		scm_fail(ret_err, -e, "%s: %s", path, strerror(e));
		if (dirfd != AT_FDCWD)
			close(dirfd);
		return -e;
	}
	int r = 0;
	_cleanup_free_ uint8_t *buf = calloc(1, META_LEN);
	_cleanup_free_ uint64_t *bat = calloc(1, bat_len);
	if (!buf || !bat) {
		r = -ENOMEM;
		goto fail;
	}
	if (ftruncate(fd, (off_t)end) < 0) {
		r = -errno;
		goto fail;
	}
	if (o->fixed && fallocate(fd, 0, (off_t)data_off, (off_t)(end - data_off)) < 0 &&
	    errno != EOPNOTSUPP) {
		r = -errno;
		goto fail;
	}
	/* file type identifier */
	put64(buf, SIG_FTI);
	vhdx_put_utf16(buf + 8, "scm-vdisk");
	if ((r = write_all(fd, buf, 64 * KiB, 0)) < 0)
		goto fail;
	/* headers: both valid, the second one current */
	struct vhdx_header hd = { .version = 1, .log_length = LOG_LEN, .log_offset = LOG_OFF, .seq = 1 };
	if ((r = vhdx_guid_random(&hd.file_write)) < 0)
		goto fail;
	if (o->data_write_guid)
		hd.data_write = *o->data_write_guid;
	else if ((r = vhdx_guid_random(&hd.data_write)) < 0)
		goto fail;
	uint8_t hb[VHDX_HDR_SIZE];
	for (int i = 0; i < 2; i++, hd.seq++) {
		vhdx_header_build(&hd, hb);
		if ((r = write_all(fd, hb, sizeof hb, i ? VHDX_HDR2_OFF : VHDX_HDR1_OFF)) < 0)
			goto fail;
	}
	build_region_table(buf, bat_len);
	if ((r = write_all(fd, buf, VHDX_RT_SIZE, VHDX_RT1_OFF)) < 0 ||
	    (r = write_all(fd, buf, VHDX_RT_SIZE, VHDX_RT2_OFF)) < 0)
		goto fail;
	/* metadata */
	uint8_t params[8], vs[8], l[4], p[4];
	vhdx_guid page83;
	put32(params, bs);
	put32(params + 4, (o->fixed ? 1u : 0u) | (o->parent ? 2u : 0u));
	put64(vs, vsize);
	put32(l, lsec);
	put32(p, psec);
	if (o->page83)
		page83 = *o->page83;
	else if ((r = vhdx_guid_random(&page83)) < 0)
		goto fail;
	struct meta_item items[6] = {
		{ GUID_FILE_PARAMS, 4, params, 8 }, { GUID_VDISK_SIZE, 6, vs, 8 },
		{ GUID_PAGE83, 6, page83.b, 16 },   { GUID_LSEC, 6, l, 4 },
		{ GUID_PSEC, 6, p, 4 },             { GUID_PARENT_LOC, 4, NULL, 0 },
	};
	size_t nitems = 5;
	uint8_t loc[8192];
	if (ruri) {
		char linkage[39];
		vhdx_guid_format(&parent_dwg, linkage);
		struct vhdx_locator_entry kv[2] = { { (char *)"parent_linkage", linkage },
						    { (char *)VHDX_LOC_NBD, ruri } };
		items[5].data = loc;
		items[5].len = strlen(ruri) > 1000 ? 0 : (uint32_t)vhdx_locator_build_kv(loc, sizeof loc, kv, 2);
		if (!items[5].len) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		nitems = 6;
	} else if (o->parent) {
		if (strlen(abs) > 1000 || (rel && strlen(rel) > 1000)) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		items[5].data = loc;
		items[5].len = (uint32_t)vhdx_locator_build(loc, sizeof loc, &parent_dwg, rel, abs);
		nitems = 6;
	}
	memset(buf, 0, META_LEN);
	build_meta(buf, items, nitems);
	if ((r = write_all(fd, buf, META_LEN, META_OFF)) < 0)
		goto fail;
	/* BAT */
	if (o->fixed)
		for (uint64_t b = 0; b < tmp.data_blocks; b++)
			bat[b + b / tmp.chunk_ratio] =
				htole64(BAT_MAKE(data_off + b * bs, VHDX_PB_FULLY_PRESENT));
	if ((r = write_all(fd, bat, bat_len, BAT_OFF_C)) < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	close(fd);
	if (dirfd != AT_FDCWD)
		close(dirfd);
	return 0;
fail:
	scm_fail(ret_err, r, "%s: create: %s", path, strerror(-r));
	close(fd);
	unlinkat(dirfd, name, 0);
	if (dirfd != AT_FDCWD)
		close(dirfd);
	return r;
}
