/* provider-migcopy.c: live migration's copying (provider-migrate.h): one
 * BJOB_CHUNK piece into the destination as its class says, the data
 * correspondence record, folding a child back into its parent, and what
 * a restart does with a migration the provider was killed in.
 *
 * Only allocated data moves. A piece's class is what the source's chain
 * says of its block, top file first: data (a present block), zero (a ZERO
 * block, or an UNMAPPED one of the base), or none (no file of the chain
 * holds the block). Data is read and written unless the record says the
 * destination holds those bytes already (hashed first, SHA-256, when the
 * record knows what it holds there; else the hasher hashes it after the
 * write, provider-mighash.c); a piece of zeros
 * over an unallocated destination block makes that block ZERO instead;
 * none is left unallocated. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "provider-migrate.h"
#include "vmap.h"

void mig_sha256(const void *buf, size_t len, uint8_t out[32])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, out) < 0)
		memset(out, 0xff, 32); /* matches nothing a real hash gives twice */
}

/* The class of the piece at off: the first file of the chain that decides. */
int mig_chunk_class(vhdx *h, uint64_t off)
{
	for (vhdx *x = h; x; x = vhdx_parent(x)) {
		int st = vhdx_block_state(x, off);
		if (st < 0)
			return st;
		if (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT)
			return CL_DATA;
		if (st == VHDX_PB_ZERO)
			return CL_ZERO;
		if (!vhdx_parent(x))
			return st == VHDX_PB_UNMAPPED ? CL_ZERO : CL_NONE;
	}
	return CL_NONE;
}

void mig_throttle_take(struct bmig *m, uint64_t bytes)
{
	if (!m->throttle)
		return;
	uint64_t now = mono_ns();
	if (!m->tb_last)
		m->tb_last = now;
	double add = (double)(now - m->tb_last) * (double)m->throttle / 1e9;
	int64_t cap = (int64_t)(m->throttle / 10 + BJOB_CHUNK); /* a tenth of a second's worth */
	m->tokens = m->tokens + (int64_t)add > cap ? cap : m->tokens + (int64_t)add;
	m->tb_last = now;
	m->tokens -= (int64_t)bytes;
	if (m->tokens < 0) {
		m->side = SIDE_SLEEP;
		m->sleep_us = (uint64_t)((double)-m->tokens * 1e6 / (double)m->throttle);
	}
}

/* The hash of len zero bytes: the whole piece's is kept, a short last
 * piece's is made. */
void mig_zero_hash(const struct bmig *m, uint8_t *buf, uint64_t len, uint8_t out[32])
{
	if (len == BJOB_CHUNK) {
		memcpy(out, m->zero_hash, 32);
		return;
	}
	memset(buf, 0, len);
	mig_sha256(buf, len, out);
}

int mig_dst_fail(struct bjob *b, int r)
{
	if (b->mig->to_nbd)
		return r; /* an export's requests put their error in b->serr themselves */
	scm_error_free(b->serr);
	b->serr = vhdx_error(b->other);
	return r;
}

/* A piece of class zero or none: the destination must read zeros there
 * (dst_st: its block's state). */
int mig_no_data(struct bjob *b, uint64_t c, int cl, int dst_st)
{
	struct bmig *m = b->mig;
	vhdx *dst = b->other;
	struct mig_piece pc = mig_piece_of(b, c);
	uint64_t off = pc.off, len = pc.len, bstart = pc.bstart, blen = pc.blen;
	struct mig_rec *rec = &m->rec[c];
	bool dst_alloc = dst_st == VHDX_PB_FULLY_PRESENT || dst_st == VHDX_PB_PARTIALLY_PRESENT;
	uint8_t h[32];
	int r;
	mig_zero_hash(m, b->buf, len, h);
	if (m->to_nbd) {
		/* an export reads zeros there, or is made to (a hole allowed) */
		if (dst_st != VHDX_PB_ZERO && (r = mig_nbd_zeroes(b, len, off, true, &b->serr)) < 0)
			return r;
	} else if (dst_alloc && (!mig_rec_known(rec->st) || memcmp(rec->hash, h, 32))) {
		memset(b->buf, 0, len);
		if ((r = vhdx_write(dst, b->buf, len, off)) < 0)
			return mig_dst_fail(b, r);
		m->copied += len;
	} else if (!dst_alloc && cl == CL_ZERO && dst_st != VHDX_PB_ZERO &&
		   (r = vhdx_zero_blocks(dst, blen, bstart)) < 0) {
		return mig_dst_fail(b, r);
	}
	rec->st = cl == CL_ZERO || dst_alloc || m->to_nbd ? REC_ZERO : REC_NONE;
	memcpy(rec->hash, h, 32);
	return 0;
}

/* (the switch-over's: the disk's I/O held; the record's entries under
 * dlock all the same, which the hasher fills under) */
int mig_copy_chunk(struct bjob *b, vhdx *src, uint64_t c, bool clear)
{
	struct bmig *m = b->mig;
	vhdx *dst = b->other;
	struct mig_piece pc = mig_piece_of(b, c);
	uint64_t off = pc.off, len = pc.len, bstart = pc.bstart, blen = pc.blen;
	struct mig_rec *rec = &m->rec[c];
	if (clear)
		__atomic_fetch_and(&b->dirty[c / 8], (uint8_t)~(1u << (c % 8)), __ATOMIC_RELAXED);
	m->dest_unflushed = true; /* (a skip writes nothing, but this is cheaper to keep right) */
	int cl = mig_chunk_class(src, off), dst_st = mig_dest_state(b, c), r;
	if (cl < 0)
		return cl;
	if (dst_st < 0)
		return mig_dst_fail(b, dst_st);
	bool dst_alloc = dst_st == VHDX_PB_FULLY_PRESENT || dst_st == VHDX_PB_PARTIALLY_PRESENT;
	uint8_t h[32];
	if (cl == CL_DATA) {
		uint64_t t0 = mono_ns();
		uint8_t *buf = b->buf;
		if ((r = vhdx_read(src, buf, len, off)) < 0) {
			scm_error_free(b->serr);
			b->serr = vhdx_error(src);
			return r;
		}
		mig_throttle_take(m, len);
		bool zero = mig_all_zero(buf, len);
		if (zero)
			mig_zero_hash(m, b->buf, len, h);
		else
			mig_sha256(buf, len, h);
		pthread_mutex_lock(&m->dlock);
		bool same = mig_rec_known(rec->st) && !memcmp(rec->hash, h, 32);
		pthread_mutex_unlock(&m->dlock);
		if (zero && !dst_alloc) {
			if (dst_st != VHDX_PB_ZERO && (r = vhdx_zero_blocks(dst, blen, bstart)) < 0)
				return mig_dst_fail(b, r);
		} else if (same) {
			m->skipped += len; /* the destination holds these bytes */
		} else if (m->to_nbd) {
			if ((r = zero ? mig_nbd_zeroes(b, len, off, true, &b->serr) : mig_nbd_write(b, buf, len, off, &b->serr)) < 0)
				return r;
			m->copied += zero ? 0 : len; /* (zeros go as WRITE_ZEROES: no data) */
		} else {
			if ((r = vhdx_write(dst, buf, len, off)) < 0)
				return mig_dst_fail(b, r);
			m->copied += len;
		}
		m->copy_ns += mono_ns() - t0;
		m->copy_bytes += len;
		pthread_mutex_lock(&m->dlock);
		rec->st = zero ? REC_ZERO : REC_DATA;
		memcpy(rec->hash, h, 32);
		pthread_mutex_unlock(&m->dlock);
		return 0;
	}
	pthread_mutex_lock(&m->dlock);
	r = mig_no_data(b, c, cl, dst_st);
	pthread_mutex_unlock(&m->dlock);
	return r;
}

int mig_own(vhdx *h, uint64_t vsize, uint64_t c, bool *ret)
{
	uint64_t off = c * BJOB_CHUNK, end = off + BJOB_CHUNK < vsize ? off + BJOB_CHUNK : vsize, n;
	int kind;
	*ret = false;
	for (; off < end; off += n) {
		int r = vhdx_extent(h, off, end - off, &n, &kind);
		if (r < 0)
			return r;
		if (kind != VHDX_EXT_PARENT) {
			*ret = true;
			return 0;
		}
	}
	return 0;
}

int mig_fold(vhdx *child, vhdx *into, uint64_t vsize, uint8_t *buf)
{
	for (uint64_t off = 0, n; off < vsize; off += n) {
		uint64_t want = vsize - off < BJOB_CHUNK ? vsize - off : BJOB_CHUNK;
		int kind, r = vhdx_extent(child, off, want, &n, &kind);
		if (r < 0)
			return r;
		if (kind == VHDX_EXT_PARENT)
			continue;
		if (kind == VHDX_EXT_ZERO)
			memset(buf, 0, n);
		else if ((r = vhdx_read(child, buf, n, off)) < 0)
			return r;
		if ((r = vhdx_write(into, buf, n, off)) < 0)
			return r;
	}
	return vhdx_flush(into);
}

/* docs/vdisk.md, "The correspondence record" (vmap.c): one extent a
 * piece the destination holds, as both files were at the switch-over;
 * with later (mirror mode, provider-miglater.c), the pieces whose hash is
 * still to be made from the old file too, (*later)[k] true for those. */
int mig_record_map(struct bjob *b, struct vmap *map, bool **later, scm_error **ret_err)
{
	struct bmig *m = b->mig;
	*map = (struct vmap){ .virtual_size = b->vsize, .chunk = BJOB_CHUNK, .source_dwg_set = !m->snapshot,
			      .source_dwg = m->src_dwg, .dest_dwg = m->dst_dwg, .page83 = m->page83 };
	if (strlen(b->path) >= VMAP_PATH_MAX || strlen(b->target) >= VMAP_PATH_MAX)
		return scm_fail(ret_err, -ENAMETOOLONG, "the correspondence record: a path too long");
	strcpy(map->source, b->path);
	strcpy(map->dest, b->target);
	if (!(map->ext = calloc(b->n_chunks ? b->n_chunks : 1, sizeof *map->ext)) ||
	    (later && !(*later = calloc(b->n_chunks ? b->n_chunks : 1, sizeof **later)))) {
		vmap_clear(map);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (uint64_t c = 0; c < b->n_chunks; c++) {
		const struct mig_rec *r = &m->rec[c];
		if (r->st != REC_DATA && r->st != REC_ZERO && !(later && r->st == REC_LATER))
			continue;
		struct mig_piece pc = mig_piece_of(b, c);
		if (later)
			(*later)[map->n] = r->st == REC_LATER;
		struct vmap_extent *e = &map->ext[map->n++];
		*e = (struct vmap_extent){ .src = pc.off, .dst = pc.off, .len = pc.len, .zero = r->st == REC_ZERO };
		memcpy(e->hash, r->hash, 32);
	}
	return 0;
}

/* The record written as DEST's, in its directory ddirfd under dname. */
int mig_record_put(int ddirfd, const char *dname, const struct vmap *map, scm_error **ret_err)
{
	char tmp[PATH_MAX], fin[PATH_MAX], *text = NULL;
	size_t size = 0;
	int r = vmap_format(map, &text, &size);
	if (r < 0)
		return scm_fail(ret_err, r, "the correspondence record of %s: %s", map->dest, strerror(-r));
	snprintf(tmp, sizeof tmp, "%s%s.tmp", dname, MIG_REC_SUFFIX);
	snprintf(fin, sizeof fin, "%s%s", dname, MIG_REC_SUFFIX);
	(void)unlinkat(ddirfd, tmp, 0); /* a new file: never one planted there */
	int fd = openat(ddirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		r = -errno;
	else {
		ssize_t w = write(fd, text, size);
		r = w == (ssize_t)size ? 0 : w < 0 ? -errno : -EIO;
		if (!r && fsync(fd) < 0)
			r = -errno;
		close(fd);
	}
	if (!r && renameat(ddirfd, tmp, ddirfd, fin) < 0)
		r = -errno;
	if (!r && fsync(ddirfd) < 0)
		r = -errno;
	free(text);
	if (r < 0) {
		unlinkat(ddirfd, tmp, 0);
		return scm_fail(ret_err, r, "the correspondence record %s%s: %s", map->dest, MIG_REC_SUFFIX, strerror(-r));
	}
	return 0;
}

int mig_record_write(struct bjob *b, scm_error **ret_err)
{
	struct vmap map;
	int r = mig_record_map(b, &map, NULL, ret_err);
	if (r >= 0)
		r = mig_record_put(b->mig->ddirfd, b->mig->dname, &map, ret_err);
	vmap_clear(&map);
	return r;
}

/* A record in dirfd named name, when it is the provider's own (as the job
 * journal: owned by its user, writable by nobody else) and parses. */
static int record_read(int dirfd, const char *name, size_t max, struct vmap *ret, scm_error **ret_err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : scm_fail(ret_err, -errno, "%s: %m", name);
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		r = scm_fail(ret_err, -EPERM, "%s: not the provider's own file: not believed", name);
	else if ((size_t)st.st_size > max)
		r = scm_fail(ret_err, -EINVAL, "%s: %lld bytes, more than a record of this disk takes", name,
			     (long long)st.st_size);
	char *buf = r ? NULL : malloc((size_t)st.st_size + 1);
	if (!r && !buf)
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
	ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : 0;
	if (!r && n != st.st_size)
		r = scm_fail(ret_err, n < 0 ? -errno : -EIO, "%s: short read", name);
	close(fd);
	if (!r && (r = vmap_parse(buf, (size_t)n, ret, ret_err)) < 0)
		scm_fail(ret_err, r, "%s", name);
	free(buf);
	return r;
}

/* Does map vouch for what the existing destination holds? It must be a
 * record of this disk (page 83, size, pieces) naming the destination, as
 * its source in a mirror migration (the destination was the disk then)
 * or as its destination, and the destination must not have changed since
 * (the DataWriteGuid then is the one it has). */
static bool vouches(const struct bjob *b, const struct vmap *map, const struct vhdx_info *din, const char **why)
{
	const struct bmig *m = b->mig;
	bool as_src = map->source_dwg_set && !strcmp(map->source, b->target) &&
		      !memcmp(&map->source_dwg, &din->data_write_guid, sizeof map->source_dwg);
	bool as_dst = !strcmp(map->dest, b->target) && !memcmp(&map->dest_dwg, &din->data_write_guid, sizeof map->dest_dwg);
	if (memcmp(&map->page83, &m->page83, sizeof m->page83) || map->virtual_size != b->vsize || map->chunk != BJOB_CHUNK)
		*why = "a record of another disk";
	else if (!as_src && !as_dst)
		*why = "a record that does not describe it as it is (written since, or another file)";
	else
		return true;
	return false;
}

int mig_reuse(struct bjob *b, const struct vhdx_info *din, scm_error **ret_err)
{
	struct bmig *m = b->mig;
	const char *why = "no correspondence record beside it or beside the disk";
	char names[2][PATH_MAX];
	int dirs[2] = { m->ddirfd, b->dirfd };
	snprintf(names[0], sizeof names[0], "%s%s", m->dname, MIG_REC_SUFFIX);
	snprintf(names[1], sizeof names[1], "%s%s", b->name, MIG_REC_SUFFIX);
	for (int i = 0; i < 2; i++) {
		struct vmap map;
		scm_error *e = NULL;
		int r = record_read(dirs[i], names[i], vmap_max_size(b->vsize, BJOB_CHUNK), &map, &e);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			scm_error_push(ret_err, e);
			why = "its record is unreadable";
			continue;
		}
		if (vouches(b, &map, din, &why)) {
			/* a piece without a line is not vouched for: copied as
			 * if the destination could hold anything there */
			for (uint64_t c = 0; c < b->n_chunks; c++)
				m->rec[c].st = REC_UNKNOWN;
			for (size_t k = 0; k < map.n; k++) {
				struct mig_rec *rec = &m->rec[map.ext[k].dst / BJOB_CHUNK];
				rec->st = map.ext[k].zero ? REC_ZERO : REC_DATA;
				memcpy(rec->hash, map.ext[k].hash, 32);
			}
			vmap_clear(&map);
			return 0;
		}
		vmap_clear(&map);
	}
	return scm_fail(ret_err, -EEXIST, "%s", why);
}

/* The destination of a migration the provider was killed in: removed
 * when it is the copy (a VHDX with the disk's page 83 identity, which
 * the copy takes), else left alone. */
static void remove_dest(struct disk *d, const char *target, const struct vhdx_scope *scope, scm_error **err)
{
	char dir[PATH_MAX], base[PATH_MAX], rec[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", target);
	snprintf(base, sizeof base, "%s", target);
	const char *name = basename(base);
	int dfd = -1;
	if (scope) {
		if (vhdx_scope_opendir(scope, target, &dfd, err) < 0)
			return;
	} else if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		scm_fail(err, -errno, "the directory of %s: %m", target);
		return;
	}
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	vhdx *h = NULL;
	if (fd >= 0 && vhdx_open_fd(fd, target, NULL, VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_PARENT, &h, err) >= 0) {
		struct vhdx_info a, b;
		vhdx_get_info(h, &a);
		vhdx_get_info(d->h, &b);
		if (!memcmp(&a.page83, &b.page83, sizeof a.page83)) {
			unlinkat(dfd, name, 0);
			snprintf(rec, sizeof rec, "%s.scm-pr", name); /* a switch-over's, when killed in it */
			unlinkat(dfd, rec, 0);
		}
		else
			scm_fail(err, -EEXIST, "%s is not the copy of %s (another page 83 identity): left alone", target,
				 d->path);
		vhdx_close(h);
	}
	if (fd >= 0)
		close(fd);
	snprintf(rec, sizeof rec, "%s%s.tmp", name, MIG_REC_SUFFIX);
	unlinkat(dfd, rec, 0);
	snprintf(rec, sizeof rec, "%s%s", name, MIG_NEW_SUFFIX); /* killed while making it */
	unlinkat(dfd, rec, 0);
	fsync(dfd);
	close(dfd);
}

/* A restart after a SIGKILL in the middle of a migration: the source is
 * complete (mirror: every write went to it; snapshot: the child holding
 * the writes made since is folded back into it, on the loop), the
 * destination goes. The journal is removed last, so a crash here only
 * means doing it again. (A migration that switched over removed its
 * journal then: its destination is the disk.) */
void mig_recover(struct disk *d, const struct vjob_journal *j, const struct vhdx_scope *scope, int dfd)
{
	char base[PATH_MAX], cname[PATH_MAX], cpath[PATH_MAX + 32];
	scm_error *err = NULL;
	int r = 0;
	snprintf(base, sizeof base, "%s", j->disk);
	snprintf(cname, sizeof cname, "%s%s", basename(base), MIG_CHILD_SUFFIX);
	snprintf(cpath, sizeof cpath, "%s%s", j->disk, MIG_CHILD_SUFFIX);
	if (j->kind == VJOB_MIGRATE_SNAPSHOT && faccessat(dfd, cname, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		vhdx *c = NULL;
		unsigned fl = VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_IGNORE_PARENT_ID;
		uint8_t *buf = malloc(BJOB_CHUNK);
		r = !buf ? -ENOMEM : scope ? vhdx_open_scoped(scope, cpath, fl, &c, &err) : vhdx_open(cpath, fl, &c, &err);
		bool opened = r >= 0;
		if (opened && (r = mig_fold(c, d->h, d->virtual_size, buf)) < 0)
			scm_error_push(&err, vhdx_error(d->h));
		vhdx_close(c);
		free(buf);
		if (!opened && r != -ENOMEM) {
			/* killed while vhdx_create made it (it does not open): no
			 * client wrote to it, they move onto it once it is made
			 * and opened */
			int fd = openat(dfd, cname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (bjob_half_made(fd)) {
				scm_error_free(TAKE_PTR(err));
				r = 0;
			}
			safe_close(fd);
		}
		if (r < 0) {
			_cleanup_free_ char *t = err ? scm_error_text(err) : NULL;
			fprintf(stderr, "vdisk-provider: %s: migration job %llu: folding %s back failed, journal kept: %s\n",
				d->path, (unsigned long long)j->id, cpath, t ? t : strerror(-r));
			scm_error_free(err);
			return;
		}
		unlinkat(dfd, cname, 0);
	}
	if (j->target[0] == '/')
		remove_dest(d, j->target, scope, &err);
	else { /* an NBD export (provider-mignbd.c): another's disk, left as it is */
		scm_fail(&err, -EEXIST, "%s keeps what the job wrote to it: it is not the disk", j->target);
		mig_mark_drop(dfd, basename(base)); /* the mark it had ready (provider-migmark.c) */
	}
	vjob_journal_remove(dfd, basename(base), NULL);
	_cleanup_free_ char *t = err ? scm_error_text(err) : NULL;
	fprintf(stderr, "vdisk-provider: %s: migration job %llu to %s rolled back%s%s\n", d->path,
		(unsigned long long)j->id, j->target, t ? ": " : "", t ? t : "");
	scm_error_free(err);
}
