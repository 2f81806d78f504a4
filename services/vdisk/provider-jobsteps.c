/* provider-jobsteps.c: one step of a vdisk job, on a worker (provider-jobs.h).
 *
 * A step is an exclusive job on the disk's queue (iopool.h): it starts
 * after every read and write queued before it finished and nothing on the
 * disk starts until it is over. That is the job's quiesce point: between
 * two steps clients' I/O goes on, during one the disk is the job's. So a
 * step is small (one block, or BJOB_CHUNK bytes), and the switch-over that
 * moves every handle (snapshot, commit) is one step. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-jobs.h"

int bjob_journal(struct bjob *b, enum vjob_state st, scm_error **ret_err)
{
	struct vjob_journal j = { .version = VJOB_JOURNAL_VERSION, .id = b->id, .kind = b->kind, .state = st,
				  .done = b->done < b->total ? b->done : b->total, .total = b->total };
	if (strlen(b->path) >= sizeof j.disk || strlen(b->target ? b->target : "") >= sizeof j.target)
		return scm_fail(ret_err, -ENAMETOOLONG, "job %llu: a path too long for the journal",
				(unsigned long long)b->id);
	strcpy(j.disk, b->path);
	strcpy(j.target, b->target ? b->target : "");
	return vjob_journal_write(b->dirfd, b->name, &j, ret_err);
}

void bjob_dirty(struct bjob *b, uint64_t off, uint64_t len)
{
	if (!b->dirty || !len)
		return;
	for (uint64_t c = off / BJOB_CHUNK; c <= (off + len - 1) / BJOB_CHUNK && c < b->n_chunks; c++)
		__atomic_fetch_or(&b->dirty[c / 8], (uint8_t)(1u << (c % 8)), __ATOMIC_RELAXED); /* (a lost
		 * migration connection's marks come from another thread) */
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* compact: the block at cursor becomes ZERO if it is in this file and
 * reads as zeros. */
static int compact_step(struct bjob *b, vhdx *h)
{
	uint64_t off = b->cursor, len = b->vsize - off < b->block_size ? b->vsize - off : b->block_size;
	int st = vhdx_block_state(h, off), r = 0;
	if (st < 0)
		return st;
	bool zero = st == VHDX_PB_FULLY_PRESENT;
	for (uint64_t o = 0; zero && o < len; o += BJOB_CHUNK) {
		uint64_t n = len - o < BJOB_CHUNK ? len - o : BJOB_CHUNK;
		if ((r = vhdx_read(h, b->buf, n, off + o)) < 0)
			return r;
		zero = all_zero(b->buf, n);
	}
	if (zero && (r = vhdx_zero_blocks(h, len, off)) < 0)
		return r;
	b->cursor += len;
	b->done = b->cursor;
	if (b->cursor >= b->vsize) {
		if ((r = vhdx_flush(h)) < 0)
			return r;
		b->complete = true;
	}
	return 0;
}

/* commit: what the child holds of [off, off + BJOB_CHUNK) into the parent
 * (read through the child, so a ZERO block of the child zeroes the
 * parent's); the parent's own ranges stay. */
static int commit_chunk(struct bjob *b, vhdx *h, uint64_t off)
{
	uint64_t end = off + BJOB_CHUNK < b->vsize ? off + BJOB_CHUNK : b->vsize;
	b->dirty[off / BJOB_CHUNK / 8] &= (uint8_t)~(1u << (off / BJOB_CHUNK % 8));
	while (off < end) {
		uint64_t n;
		int kind, r = vhdx_extent(h, off, end - off, &n, &kind);
		if (r < 0)
			return r;
		if (kind != VHDX_EXT_PARENT) {
			if ((r = vhdx_read(h, b->buf, n, off)) < 0)
				return r;
			if ((r = vhdx_write(b->other, b->buf, n, off)) < 0) {
				scm_error_free(b->serr);
				b->serr = vhdx_error(b->other);
				return r;
			}
		}
		off += n;
	}
	return 0;
}

uint64_t bjob_dirty_next(const struct bjob *b, uint64_t from, uint64_t *count)
{
	uint64_t first = UINT64_MAX;
	*count = 0;
	for (uint64_t c = from; c < b->n_chunks; c++)
		if (b->dirty[c / 8] & (1u << (c % 8))) {
			if (first == UINT64_MAX)
				first = c;
			++*count;
		}
	return first;
}

/* stream: what block [cursor, +block) reads from the parent, into the
 * child: a block read wholly from the parent that is all zeros becomes
 * ZERO; the rest is copied piece by piece. After the last block the child
 * lets its parent go. */
static int stream_step(struct bjob *b, vhdx *h)
{
	uint64_t off = b->cursor, end = off + b->block_size < b->vsize ? off + b->block_size : b->vsize;
	uint64_t n;
	int kind, r = vhdx_extent(h, off, end - off, &n, &kind);
	if (r < 0)
		return r;
	bool whole = kind == VHDX_EXT_PARENT && n == end - off, zero = whole;
	for (uint64_t o = off; zero && o < end; o += BJOB_CHUNK) {
		uint64_t k = end - o < BJOB_CHUNK ? end - o : BJOB_CHUNK;
		if ((r = vhdx_read(h, b->buf, k, o)) < 0)
			return r;
		zero = all_zero(b->buf, k);
	}
	if (zero) {
		if ((r = vhdx_zero_blocks(h, end - off, off)) < 0)
			return r;
	} else {
		for (uint64_t o = off; o < end; o += n) {
			if ((r = vhdx_extent(h, o, end - o < BJOB_CHUNK ? end - o : BJOB_CHUNK, &n, &kind)) < 0)
				return r;
			if (kind == VHDX_EXT_PARENT &&
			    ((r = vhdx_read(h, b->buf, n, o)) < 0 || (r = vhdx_write(h, b->buf, n, o)) < 0))
				return r;
		}
	}
	b->cursor = end;
	b->done = end;
	if (end >= b->vsize) {
		/* (a restart after the detach finds it done) */
		if (((vhdx_parent(h) || vhdx_remote_uri(h)) && (r = vhdx_detach_parent(h)) < 0) || (r = vhdx_flush(h)) < 0)
			return r;
		b->complete = true;
	}
	return 0;
}

/* The switch-over: the last dirty pieces, then the parent reopened without
 * VHDX_O_KEEP_IDENTITY (the copy kept the child's parent_linkage valid, so
 * a crash meanwhile left a usable child; from now on the parent's first
 * write renews its DataWriteGuid and the old child is refused as stale),
 * then every handle is on the parent. */
static int commit_switch(struct bjob *b, vhdx **hp)
{
	uint64_t n;
	int r;
	for (uint64_t c = bjob_dirty_next(b, 0, &n); c != UINT64_MAX; c = bjob_dirty_next(b, c + 1, &n))
		if ((r = commit_chunk(b, *hp, c * BJOB_CHUNK)) < 0)
			return r;
	if ((r = vhdx_flush(b->other)) < 0) {
		b->serr = vhdx_error(b->other);
		return r;
	}
	if ((r = vjob_journal_remove(b->dirfd, b->name, &b->serr)) < 0)
		return r;
	vhdx *nh = NULL;
	vhdx_unlock(b->other);
	r = vhdx_open_fd(vhdx_fd(b->other), vhdx_path(b->other), b->scoped ? &b->scope : NULL, 0, &nh, &b->serr);
	if (r < 0) {
		/* keep the identity-keeping handle: the data is all there */
		vhdx_relock(b->other);
		nh = b->other;
		scm_error_free(b->serr);
		b->serr = NULL;
	} else {
		vhdx_close(b->other);
	}
	b->other = NULL;
	vhdx *old = *hp;
	*hp = nh;
	vhdx_close(old);
	b->switched = b->complete = true;
	return 0;
}

static int commit_step(struct bjob *b, vhdx **hp)
{
	if (b->phase == 0) {
		int r = commit_chunk(b, *hp, b->cursor);
		if (r < 0)
			return r;
		b->cursor += BJOB_CHUNK;
		b->done = b->cursor < b->vsize ? b->cursor : b->vsize;
		if (b->cursor >= b->vsize) {
			b->phase = 1;
			b->cursor = 0;
		}
		return 0;
	}
	/* dirty passes: once what was written meanwhile fits in a few
	 * pieces, it goes in the switch-over step itself */
	uint64_t n, c = bjob_dirty_next(b, b->cursor, &n);
	if (c == UINT64_MAX && b->cursor) {
		b->cursor = 0;
		c = bjob_dirty_next(b, 0, &n);
	}
	if (c == UINT64_MAX || n <= 8)
		return commit_switch(b, hp);
	b->total += BJOB_CHUNK;
	b->done += BJOB_CHUNK;
	b->cursor = c + 1;
	return commit_chunk(b, *hp, c * BJOB_CHUNK);
}

/* snapshot, one step: the child made and opened beside the disk, the
 * journal removed (from here on the child holds the clients' writes; a
 * crash before this left nothing the clients wrote in it), the handles
 * moved. The disk's locks are dropped first: the child's open takes the
 * reader's locks on it. */
static int snapshot_step(struct bjob *b, vhdx **hp)
{
	int r = vhdx_flush(*hp);
	if (r < 0)
		return r;
	vhdx_unlock(*hp);
	struct vhdx_create_opts o = { .parent = b->path, .scope = b->scoped ? &b->scope : NULL };
	vhdx *nh = NULL;
	r = vhdx_create(b->target, &o, &b->serr);
	if (r >= 0)
		r = b->scoped ? vhdx_open_scoped(&b->scope, b->target, 0, &nh, &b->serr)
			      : vhdx_open(b->target, 0, &nh, &b->serr);
	if (r >= 0)
		r = vjob_journal_remove(b->dirfd, b->name, &b->serr);
	if (r < 0) {
		vhdx_close(nh);
		if (r != -EEXIST)
			unlinkat(b->dirfd, b->target_name, 0);
		vhdx_relock(*hp);
		return r;
	}
	vhdx *old = *hp;
	*hp = nh;
	vhdx_close(old);
	b->done = b->total;
	b->switched = b->complete = true;
	return 0;
}

/* Undoes what a cancelled or failed job left half done: commit lets the
 * parent go (what it got of the child is hidden by the child's own
 * blocks) and takes the chain's locks back. */
static int rollback(struct bjob *b, vhdx *h)
{
	if (b->mig)
		return mig_rollback(b);
	if (b->other) {
		vhdx_close(b->other);
		b->other = NULL;
		vhdx_relock(h);
	}
	return 0;
}

/* Test hook: $SCM_VDISK_JOB_LIMIT names a file holding a byte count.
 * While it exists and a job's done has reached that count, the job's work
 * steps do nothing (it stays running, a handover parks and carries it as
 * ever), so that a test holds a job at a known point whatever the
 * machine's speed. The variable is read once, at the provider's start
 * (bjob_hooks_init, with $SCM_VDISK_JOB_STEP_US); unset, a step costs a
 * test of a pointer. The file is read at each step: a test moves the
 * limit while the job runs. */
static const char *limit_file;
unsigned bjob_mirq_us;

void bjob_hooks_init(void)
{
	const char *p = getenv("SCM_VDISK_JOB_LIMIT");
	limit_file = p && *p ? p : NULL;
	const char *us = getenv("SCM_VDISK_JOB_STEP_US");
	bjob_step_us = us ? (unsigned)strtoul(us, NULL, 10) : 0;
	us = getenv("SCM_VDISK_MIRQ_US");
	bjob_mirq_us = us ? (unsigned)strtoul(us, NULL, 10) : 0;
}

bool bjob_limited(const struct bjob *b)
{
	if (!limit_file)
		return false;
	int fd = open(limit_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return b->done >= strtoull(buf, NULL, 10);
}

void bjob_step_run(struct iopool_job *pj)
{
	struct bjob *b = (struct bjob *)((char *)pj - offsetof(struct bjob, pj));
	struct disk *d = b->d;
	int r = 0;
	b->r = 0;
	/* (after a switch-over the journal is gone for good: the copy is the disk) */
	if (b->persist && b->op != STEP_ROLLBACK && !b->switched && (r = bjob_journal(b, b->jstate, &b->serr)) < 0)
		goto fail;
	b->persist = false;
	switch (b->op) {
	case STEP_PERSIST:
		return;
	case STEP_ROLLBACK:
		d->bjob_io = NULL;
		/* a migration that could not put its source back keeps its
		 * journal: the next open rolls it back */
		if ((r = rollback(b, d->h)) < 0 || (r = vjob_journal_remove(b->dirfd, b->name, &b->serr)) < 0)
			b->r = r;
		return;
	case STEP_SIDE:
		mig_side(b);
		if (b->complete)
			d->bjob_io = NULL;
		return;
	case STEP_WORK:
		break;
	}
	d->bjob_io = b; /* writes mark the dirty map from here on */
	if (bjob_limited(b)) {
		usleep(10000); /* held by the test hook: a step that does nothing */
		return;
	}
	if (bjob_step_us)
		usleep(bjob_step_us);
	b->steps++;
	switch (b->kind) {
	case VJOB_COMPACT: r = compact_step(b, d->h); break;
	case VJOB_COMMIT: r = commit_step(b, &d->h); break;
	case VJOB_SNAPSHOT: r = snapshot_step(b, &d->h); break;
	case VJOB_STREAM: r = stream_step(b, d->h); break;
	case VJOB_MIGRATE_MIRROR:
	case VJOB_MIGRATE_SNAPSHOT: r = mig_step(b); break;
	default: r = -EOPNOTSUPP; break;
	}
	if (r < 0)
		goto fail;
	if (b->complete) {
		d->bjob_io = NULL; /* no write marks the map from now on */
		if (!b->switched && (r = vjob_journal_remove(b->dirfd, b->name, &b->serr)) < 0)
			b->r = r;
	} else if (b->steps % 16 == 0 && !b->mig) {
		/* progress, now and then (a migration's is not: a restart rolls
		 * it back wherever it was, and the journal's two fsyncs would
		 * hold the clients' I/O in its exclusive step) */
		b->persist = true;
	}
	return;
fail:
	b->r = r;
	if (!b->serr && d->h)
		b->serr = vhdx_error(d->h);
	d->bjob_io = NULL;
	if (b->switched)
		return; /* the handles are on the copy: nothing to roll back */
	scm_error *e = NULL;
	if (rollback(b, d->h) < 0)
		return; /* the journal stays: the next open rolls back */
	if (vjob_journal_remove(b->dirfd, b->name, &e) < 0)
		b->serr = e ? (e->cause = b->serr, e) : b->serr;
}
