/* vhdx-open.c: opening a VHDX file (file type identifier, headers, log
 * replay, region table, metadata, BAT) and its parent chain, and closing
 * it cleanly (metadata committed, LogGuid cleared). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx-internal.h"

vhdx *vhdx_free(vhdx *h)
{
	if (!h)
		return NULL;
	safe_close(h->fd);
	safe_close(h->dfd);
	vhdx_free(h->parent);
	vhdx_remote_close(&h->remote);
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
	for (size_t i = 0; i < h->n_loc_kv; i++) {
		free(h->loc_kv[i].key);
		free(h->loc_kv[i].value);
	}
	free(h->loc_kv);
	free(h->path);
	free(h->rel);
	scm_error_free(h->err);
	scm_error_free(h->log_note);
	pthread_mutex_destroy(&h->err_lock);
	free(h);
	return NULL;
}

static int load_headers(vhdx *h)
{
	uint8_t buf[2][VHDX_HDR_SIZE];
	struct vhdx_header hd[2] = { 0 };
	_cleanup_(scm_error_freep) scm_error *why0 = NULL, *why1 = NULL;
	for (int i = 0; i < 2; i++) {
		int r = vhdx_pread(h, buf[i], VHDX_HDR_SIZE, i ? VHDX_HDR2_OFF : VHDX_HDR1_OFF);
		if (r < 0)
			return r;
		if (vhdx_header_parse(buf[i], &hd[i], i ? &why1 : &why0) < 0)
			hd[i].valid = false;
	}
	/* two copies, neither the cause of the other: both in one message */
	if (!hd[0].valid && !hd[1].valid)
		return vhdx_fail(h, -EINVAL, "%s: no valid header: header 1: %s; header 2: %s", h->path,
				 vhdx_why(why0), vhdx_why(why1));
	int cur = !hd[0].valid ? 1 : !hd[1].valid ? 0 : hd[1].seq > hd[0].seq ? 1 : 0;
	h->hdr = hd[cur];
	h->hdr_slot = cur;
	h->hdr_other_valid = hd[1 - cur].valid;
	return 0;
}

static int load_regions(vhdx *h)
{
	_cleanup_free_ uint8_t *buf = malloc(VHDX_RT_SIZE);
	_cleanup_(scm_error_freep) scm_error *why0 = NULL, *why1 = NULL;
	scm_error **why[2] = { &why0, &why1 };
	int r = -EINVAL;
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread(h, buf, VHDX_RT_SIZE, i ? VHDX_RT2_OFF : VHDX_RT1_OFF);
		if (r < 0)
			return r;
		r = vhdx_region_parse(buf, h->file_size, h, why[i]);
		if (r == 0)
			return 0;
		if (r == -EOPNOTSUPP) {
			char prefix[PATH_MAX + 32];
			snprintf(prefix, sizeof prefix, "%s: region table %d", h->path, i + 1);
			return vhdx_fail_prefix(h, TAKE_PTR(*why[i]), r, prefix);
		}
	}
	/* two copies, neither the cause of the other: both in one message */
	return vhdx_fail(h, r, "%s: no valid region table: region table 1: %s; region table 2: %s",
			 h->path, vhdx_why(why0), vhdx_why(why1));
}

/* What one open of a chain may still take, and who is in it already. */
struct open_ctx {
	const struct vhdx_scope *scope; /* NULL: host paths, links followed */
	/* vhdx_open_adopt: the chain's files, top first, never looked up */
	const int *adopt_fds;
	const char *const *adopt_paths;
	size_t n_adopt;
	const uint8_t *carry; /* block table pages for the top (vhdx_carry_get) */
	size_t carry_len;
	uint64_t bat_left;              /* bytes of block table left for the chain */
	dev_t dev[VHDX_CHAIN_MAX + 1];
	ino_t ino[VHDX_CHAIN_MAX + 1];
};


static int load_bat(vhdx *h, struct open_ctx *ctx, int depth)
{
	if (h->bat_entries * 8 > h->bat_len)
		return vhdx_fail(h, -EINVAL, "%s: BAT region: 0x%llx bytes cannot hold %llu entries", h->path,
				 (unsigned long long)h->bat_len, (unsigned long long)h->bat_entries);
	h->bat_pages = (h->bat_entries * 8 + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
	/* A 32 KiB sparse file may claim 64 TiB in 1 MiB blocks: a 512 MiB
	 * table. The cap is checked before anything is allocated. */
	uint64_t bytes = h->bat_pages * VHDX_LOG_SECTOR;
	if (bytes > ctx->bat_left)
		return vhdx_fail(h, -EFBIG,
				 "%s: the block table takes %llu KiB (virtual size %llu, block size %u), over the %llu KiB this open may use; a larger block size makes it smaller",
				 h->path, (unsigned long long)(bytes >> 10), (unsigned long long)h->vsize,
				 h->block_size, (unsigned long long)(ctx->bat_left >> 10));
	ctx->bat_left -= bytes;
	/* page-aligned and its pages made present in one call, not a page
	 * fault each as the read fills it (a 64 GiB disk of 1 MiB blocks: 128
	 * of them, which a handover's new process would take while clients
	 * wait); a kernel without MADV_POPULATE_WRITE faults them as before */
	if (posix_memalign((void **)&h->bat, VHDX_LOG_SECTOR, bytes) != 0)
		h->bat = NULL;
	else if (bytes > VHDX_LOG_SECTOR)
		(void)madvise(h->bat, bytes, MADV_POPULATE_WRITE);
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
	/* pages a handover carried, checked with the rest of the table */
	if (depth == 0 && ctx->carry_len && (r = vhdx_carry_apply(h, ctx->carry, ctx->carry_len)) < 0)
		return r;
	if ((r = vhdx_bat_validate(h)) < 0)
		return r;
	return vhdx_bat_unique(h);
}

/* Turns a locator path (Windows separators) into a path to try, relative
 * ones against the child's directory (host mode). */
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

static int open_depth(struct open_ctx *ctx, const char *path, const char *rel, int fd, unsigned flags,
		      vhdx **ret, scm_error **ret_err, int depth);

/* Host mode: the parent wherever the locator points (the host tool, run by
 * someone who can read those files anyway). */
static int find_parent_host(vhdx *h, char **ret_path, int *ret_fd)
{
	const char *cands[3] = { h->loc_relative, h->loc_absolute, h->loc_volume };
	for (int i = 0; i < 3; i++) {
		if (!cands[i])
			continue;
		char *p = locator_path(h, cands[i]);
		if (!p)
			return -ENOMEM;
		int fd = open(p, (h->ro ? O_RDONLY : O_RDONLY) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0) {
			*ret_path = p;
			*ret_fd = fd;
			return 0;
		}
		free(p);
	}
	return -ENOENT;
}

/* Scoped: each recorded path read relative to the grant; the first that
 * is a regular file beneath it and passes allow() is the parent. */
static int find_parent_scoped(const struct vhdx_scope *s, vhdx *h, char **ret_rel, int *ret_fd)
{
	const char *cands[2] = { h->loc_relative, h->loc_absolute };
	for (int i = 0; i < 2; i++) {
		if (!cands[i])
			continue;
		_cleanup_free_ char *rel = NULL, *full = NULL;
		if (vhdx_scope_rel(s, i == 0 ? h->rel : NULL, cands[i], &rel) < 0)
			continue;
		if (!(full = vhdx_scope_full(s, rel, false)))
			return -ENOMEM;
		if (s->allow && !s->allow(full, s->userdata))
			continue;
		int fd;
		if (vhdx_scope_open(s, rel, true, &fd, NULL) < 0)
			continue;
		*ret_rel = TAKE_PTR(rel);
		*ret_fd = fd;
		return 0;
	}
	return -ENOENT;
}

/* Would the recorded locator still lead to the parent found? */
static bool locator_stale(const struct open_ctx *ctx, vhdx *h, const char *found)
{
	const char *both[2] = { h->loc_relative, h->loc_absolute };
	for (int i = 0; i < 2; i++) {
		if (i == 0 && !both[i])
			continue; /* no relative path recorded (other tools may omit it) */
		if (!both[i])
			return true;
		/* a Windows path ("C:\\...") leads nowhere here, nor can we
		 * write one: it stays as Windows wrote it */
		if (i == 1 && vhdx_locator_win_path(both[i]))
			continue;
		if (ctx->scope) {
			_cleanup_free_ char *rel = NULL;
			if (vhdx_scope_rel(ctx->scope, i == 0 ? h->rel : NULL, both[i], &rel) < 0 ||
			    strcmp(rel, found))
				return true;
		} else {
			_cleanup_free_ char *c = locator_path(h, both[i]);
			char rp[PATH_MAX], rf[PATH_MAX];
			if (!c || !realpath(c, rp) || !realpath(found, rf) || strcmp(rp, rf))
				return true;
		}
	}
	return false;
}

static int chain_open(struct open_ctx *ctx, vhdx *h, unsigned flags, scm_error **ret_err, int depth)
{
	if (depth + 1 >= VHDX_CHAIN_MAX) {
		return scm_fail(ret_err, -ELOOP, "%s: parent chain longer than %d files", h->path,
				VHDX_CHAIN_MAX);
	}
	_cleanup_free_ char *ppath = NULL, *prel = NULL;
	int pfd = -1, r;
	if (ctx->n_adopt) {
		if ((size_t)depth + 1 >= ctx->n_adopt)
			return scm_fail(ret_err, -ESTALE, "%s: has a parent, but no file was handed over for it",
					h->path);
		if ((pfd = fcntl(ctx->adopt_fds[depth + 1], F_DUPFD_CLOEXEC, 3)) < 0)
			return scm_fail(ret_err, -errno, "%s: the parent's fd: %m", h->path);
		if (!(ppath = strdup(ctx->adopt_paths[depth + 1]))) {
			close(pfd);
			return -ENOMEM;
		}
	} else if ((r = vhdx_remote_attach(h, ctx->scope, !(flags & VHDX_O_NO_REMOTE), ret_err)) <= 0) {
		return r; /* a remote parent (vhdx-remote.c) */
	} else if (ctx->scope) {
		r = find_parent_scoped(ctx->scope, h, &prel, &pfd);
		if (r == 0 && !(ppath = vhdx_scope_full(ctx->scope, prel, false))) {
			close(pfd);
			r = -ENOMEM;
		}
		if (r < 0) {
			/* one message, whatever the reason: where a locator points
			 * outside the grant, nothing about that file is told */
			return scm_fail(ret_err, r == -ENOMEM ? r : -ENOENT, "%s: parent not available under the grant",
					h->path);
		}
	} else if ((r = find_parent_host(h, &ppath, &pfd)) < 0) {
		return scm_fail(ret_err, r,
				"%s: parent locator: parent not found (relative_path \"%s\", absolute_win32_path \"%s\")",
				h->path, h->loc_relative ? h->loc_relative : "", h->loc_absolute ? h->loc_absolute : "");
	}
	vhdx *p = NULL;
	r = open_depth(ctx, ppath, prel, pfd, (flags | VHDX_O_RDONLY) & ~VHDX_O_NO_REPLAY, &p, ret_err, depth + 1);
	if (r < 0)
		return r;
	char pg[39];
	vhdx_guid_format(&p->hdr.data_write, pg);
	/* MS-VHDX 2.6.2.6.3: the parent's DataWriteGuid must match one of
	 * parent_linkage and parent_linkage2 */
	bool linked = !strcasecmp(pg, h->parent_linkage) ||
		      (h->parent_linkage2[0] && !strcasecmp(pg, h->parent_linkage2));
	if (!linked && !(flags & VHDX_O_IGNORE_PARENT_ID)) {
		char l2[64] = "";
		if (h->parent_linkage2[0])
			snprintf(l2, sizeof l2, " (nor parent_linkage2 %s)", h->parent_linkage2);
		scm_fail(ret_err, -ESTALE,
			 "%s: parent_linkage %s%s does not match the DataWriteGuid %s of its parent %s (the parent was modified after the child was made; open with the override flag to read it anyway)",
			 h->path, h->parent_linkage, l2, pg, p->path);
		vhdx_free(p);
		return -ESTALE;
	}
	if (p->vsize != h->vsize || p->lsec != h->lsec) {
		scm_fail(ret_err, -EINVAL,
			 "%s: parent %s has size %llu / sector %u, the child %llu / %u", h->path, p->path,
			 (unsigned long long)p->vsize, p->lsec, (unsigned long long)h->vsize, h->lsec);
		vhdx_free(p);
		return -EINVAL;
	}
	h->parent = p;
	/* A read-write open renews paths that no longer lead to the parent
	 * (the files were moved): Hyper-V does the same. Not fatal. */
	if (!h->ro && !ctx->n_adopt && locator_stale(ctx, h, ctx->scope ? prel : ppath)) {
		int w;
		if (ctx->scope) {
			_cleanup_free_ char *cc = vhdx_scope_full(ctx->scope, h->rel, true),
					    *pc = vhdx_scope_full(ctx->scope, prel, true);
			w = cc && pc ? vhdx_locator_rewrite(h, cc, pc, true) : -ENOMEM;
		} else {
			w = vhdx_locator_rewrite(h, h->path, ppath, false);
		}
		(void)w; /* not fatal: the disk is usable as found, and vhdx_error(h) says why */
	}
	return 0;
}

/* Opens one file of a chain: fd when the caller found it already (ours to
 * keep), else by path (host mode) or rel (beneath the scope). */
static int open_depth(struct open_ctx *ctx, const char *path, const char *rel, int fd, unsigned flags,
		      vhdx **ret, scm_error **ret_err, int depth)
{
	if (flags & (VHDX_O_IGNORE_PARENT_ID | VHDX_O_NO_PARENT | VHDX_O_NO_REMOTE))
		flags |= VHDX_O_RDONLY;
	if (flags & VHDX_O_FORCE_SHARE && !(flags & VHDX_O_RDONLY)) {
		safe_close(fd);
		return scm_fail(ret_err, -EINVAL, "%s: force-share is for read-only opens", path);
	}
	vhdx *h = calloc(1, sizeof *h);
	if (!h) {
		safe_close(fd);
		return -ENOMEM;
	}
	h->fd = -1;
	h->dfd = -1;
	pthread_mutex_init(&h->err_lock, NULL);
	h->ro = flags & VHDX_O_RDONLY;
	h->keep_identity = flags & VHDX_O_KEEP_IDENTITY;
	h->path = strdup(path);
	h->rel = rel ? strdup(rel) : NULL;
	int r;
	if (!h->path || (rel && !h->rel)) {
		safe_close(fd);
		r = -ENOMEM;
		goto fail;
	}
	int mode = h->ro ? O_RDONLY : O_RDWR;
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
	if (fl >= 0 && !(fl & O_PATH) && (fl & O_ACCMODE) == mode) {
		h->fd = fd; /* opened as we need it */
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	} else if (fd >= 0) {
		/* ours, opened read-only: reopen it with our mode, by fd,
		 * never by name */
		r = vhdx_reopen_fd(fd, mode, &h->fd);
		close(fd);
		if (r < 0) {
			r = vhdx_fail(h, r, "%s: reopen: %s", path, strerror(-r));
			goto fail;
		}
	} else if (ctx->scope) {
		scm_error *why = NULL;
		r = vhdx_scope_open(ctx->scope, rel, h->ro, &h->fd, &why);
		if (r < 0) {
			vhdx_fail_prefix(h, why, r, path);
			goto fail;
		}
	} else {
		/* O_NONBLOCK: a FIFO must not hang the open */
		h->fd = open(path, mode | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (h->fd < 0) {
			r = vhdx_fail(h, -errno, "%s: %m", path);
			goto fail;
		}
		int nfl = fcntl(h->fd, F_GETFL);
		if (nfl >= 0)
			(void)fcntl(h->fd, F_SETFL, nfl & ~O_NONBLOCK);
	}
	struct stat st;
	if (fstat(h->fd, &st) < 0) {
		r = vhdx_fail(h, -errno, "%s: fstat: %m", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && (ctx->scope || !S_ISBLK(st.st_mode))) {
		r = vhdx_fail(h, -EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	/* RESOLVE_BENEATH sees names, not inodes: a hard link made inside
	 * the granted directory to a disk outside it (possible where
	 * fs.protected_hardlinks=0, or by the disk's owner) would pass every
	 * name check. Under a grant a disk file must have one name. */
	if (ctx->scope && st.st_nlink > 1) {
		r = vhdx_fail(h, -EACCES,
			      "%s: has %ju hard links; a disk under a grant must have exactly one (a link may "
			      "lead out of the granted directory)",
			      path, (uintmax_t)st.st_nlink);
		goto fail;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	for (int i = 0; i < depth; i++)
		if (ctx->dev[i] == st.st_dev && ctx->ino[i] == st.st_ino) {
			r = vhdx_fail(h, -ELOOP, "%s: parent locator cycle: the file is already in the chain",
				      path);
			goto fail;
		}
	ctx->dev[depth] = st.st_dev;
	ctx->ino[depth] = st.st_ino;
	unsigned lock = flags & VHDX_O_NO_LOCK	   ? VHDX_LOCK_NONE
			: flags & VHDX_O_FORCE_SHARE ? VHDX_LOCK_SHARE_ALL
			: h->ro			     ? VHDX_LOCK_READER
						     : VHDX_LOCK_WRITER;
	/* adopted: the predecessor's locks, held by this very open file
	 * description (vhdx_lock_adopt says why they are not tested again) */
	if ((r = ctx->n_adopt ? vhdx_lock_adopt(h, lock) : vhdx_lock_take(h, lock)) < 0)
		goto fail;
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
	/* adopted, the top goes on with its predecessor's log session, which
	 * committed everything in place (vhdx_session_set says where the log
	 * stands): a replay would rewrite the header under it */
	bool adopt_top = ctx->n_adopt && depth == 0 && !h->ro;
	if (!adopt_top && (r = vhdx_log_load(h, !h->ro && !(flags & VHDX_O_NO_REPLAY))) < 0)
		goto fail;
	if ((r = load_regions(h)) < 0)
		goto fail;
	if ((r = vhdx_meta_load(h)) < 0)
		goto fail;
	if ((r = load_bat(h, ctx, depth)) < 0)
		goto fail;
	if (flags & VHDX_O_DIRECT && vhdx_reopen_fd(h->fd, mode | O_DIRECT, &h->dfd) < 0)
		h->dfd = -1; /* not every file system has it: then buffered */
	/* opened: what failed on the way and was recovered from is no
	 * failure; from here vhdx_error(h) says only what chain_open notes */
	vhdx_fail_set(h, NULL);
	if (h->has_parent && !(flags & VHDX_O_NO_PARENT)) {
		r = chain_open(ctx, h, flags, ret_err, depth);
		if (r < 0) {
			vhdx_free(h);
			return r;
		}
	}
	*ret = h;
	return 0;
fail:
	vhdx_fail_take(h, ret_err);
	vhdx_free(h);
	return r;
}

int vhdx_open_adopt(const int *fds, const char *const *paths, size_t n, unsigned flags, const uint8_t *carry,
		    size_t carry_len, vhdx **ret, scm_error **ret_err)
{
	struct open_ctx ctx = { .bat_left = VHDX_BAT_MAX * VHDX_CHAIN_MAX, .adopt_fds = fds, .adopt_paths = paths,
				.n_adopt = n, .carry = carry, .carry_len = carry_len };
	if (n == 0 || n > VHDX_CHAIN_MAX)
		return scm_fail(ret_err, -EINVAL, "a chain of %zu files cannot be adopted", n);
	int dup_fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return scm_fail(ret_err, -errno, "%s: the fd: %m", paths[0]);
	vhdx *h = NULL;
	int r = open_depth(&ctx, paths[0], NULL, dup_fd, flags & ~VHDX_O_NO_PARENT, &h, ret_err, 0);
	if (r < 0)
		return r;
	size_t depth = 0;
	for (vhdx *c = h; c; c = c->parent)
		depth++;
	if (depth != n) {
		vhdx_free(h);
		return scm_fail(ret_err, -ESTALE, "%s: a chain of %zu files, %zu were handed over", paths[0], depth,
				n);
	}
	*ret = h;
	return 0;
}

int vhdx_open(const char *path, unsigned flags, vhdx **ret, scm_error **ret_err)
{
	return vhdx_open_fd(-1, path, NULL, flags, ret, ret_err);
}

int vhdx_open_scoped(const struct vhdx_scope *scope, const char *path, unsigned flags, vhdx **ret,
		     scm_error **ret_err)
{
	return vhdx_open_fd(-1, path, scope, flags, ret, ret_err);
}

int vhdx_open_fd(int fd, const char *path, const struct vhdx_scope *scope, unsigned flags, vhdx **ret,
		 scm_error **ret_err)
{
	struct open_ctx ctx = { .scope = scope, .bat_left = VHDX_BAT_MAX * VHDX_CHAIN_MAX };
	_cleanup_free_ char *rel = NULL;
	if (scope) {
		if (scope->bat_max)
			ctx.bat_left = scope->bat_max;
		int r = vhdx_scope_rel(scope, NULL, path, &rel);
		if (r < 0 || path[0] != '/') {
			return scm_fail(ret_err, -EACCES, "%s: not a path under the granted directory %s", path,
					scope->dir);
		}
		/* the file opened is the lexically resolved one: that name,
		 * not the one given ("DIR/../x"), is what the grant must allow */
		_cleanup_free_ char *full = vhdx_scope_full(scope, rel, false);
		if (!full)
			return -ENOMEM;
		if (scope->allow && !scope->allow(full, scope->userdata)) {
			return scm_fail(ret_err, -EACCES, "%s: not allowed by the grant (it names %s)", path,
					full);
		}
	}
	int dup_fd = -1;
	if (fd >= 0 && (dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	return open_depth(&ctx, path, rel, dup_fd, flags, ret, ret_err, 0);
}

