/* provider-migpiece.c: a live migration's copy passes (the first, and
 * the dirty passes) in two halves (provider-migrate.h): the step on the
 * disk's queue takes pieces, the side step beside the disk's I/O reads
 * them from the source and writes them to the destination (O_DIRECT,
 * Linux AIO); the job's hasher (provider-mighash.c) hashes them for the
 * correspondence record after that, off the copy's path.
 *
 * A piece of data the source holds itself, in one run of its file (the
 * source has no parent: what a mirror migration of a plain disk, and
 * snapshot mode's copy of the read-only parent, see), is not read on the
 * disk's queue at all: the step notes where its bytes lie and the side
 * step reads them from the file with pread, beside the clients' I/O, as
 * qemu's mirror reads without holding the guest's requests. A client's
 * write meanwhile lands in place in that run (an allocated block never
 * moves; only a trim frees it, and trims mark the dirty map) and marks
 * the piece dirty again, since it is in flight (provider-mirror.c): a
 * later pass copies it again, so a read torn by such a write is never
 * the last word. A piece of a chain is read through the engine on the
 * disk's queue, as before. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "provider-migrate.h"

/* Where the side step may read piece pc of src from: its file, at
 * *foff, when src has no parent and holds the whole piece in one run. */
static bool deferrable(vhdx *src, const struct mig_piece *pc, uint64_t *foff)
{
	uint64_t n = 0;
	int kind;
	if (vhdx_parent(src) || vhdx_remote_uri(src))
		return false;
	return vhdx_extent_file(src, pc->off, pc->len, &n, &kind, foff) >= 0 && kind == VHDX_EXT_HERE && n == pc->len;
}

int mig_read_piece(struct bjob *b, vhdx *src, uint64_t c, bool clear, unsigned slot)
{
	struct bmig *m = b->mig;
	struct mig_piece pc = mig_piece_of(b, c);
	struct mig_pend p = { .c = c, .rfd = -1, .slot = (uint8_t)slot };
	int r;
	if (clear)
		__atomic_fetch_and(&b->dirty[c / 8], (uint8_t)~(1u << (c % 8)), __ATOMIC_RELAXED);
	/* from here a client's write to it only marks it dirty, until the
	 * side step has put it in dest */
	__atomic_fetch_or(&m->inflight[c / 8], (uint8_t)(1u << (c % 8)), __ATOMIC_RELEASE);
	mig_mirq_take(b, c); /* what clients' writes queued for it: carried by the copy now */
	int cl = mig_chunk_class(src, pc.off);
	if (cl < 0)
		return cl;
	if (cl == CL_DATA) {
		if (deferrable(src, &pc, &p.foff)) {
			p.rfd = vhdx_fd(src);
		} else {
			uint64_t t0 = mono_ns();
			if ((r = vhdx_read(src, m->wbuf + (size_t)slot * BJOB_CHUNK, pc.len, pc.off)) < 0) {
				scm_error_free(b->serr);
				b->serr = vhdx_error(src);
				return r;
			}
			m->copy_ns += mono_ns() - t0;
		}
		mig_throttle_take(m, pc.len);
	}
	p.cl = (uint8_t)cl;
	m->wpend[m->n_wpend++] = p;
	return cl;
}

/* ---- the steps on the disk's queue ------------------------------------------- */

/* A pass over every piece from the cursor, its first half: the pieces
 * are taken (a chain's data read into wbuf; a plain source's left for the
 * side step to read from its file) and queued for the side step that
 * writes them to dest beside the disk's I/O (provider-migpiece.c). A step
 * ends after a piece of data as soon as a client's request waits on the
 * disk's queue (a step is exclusive on it), else after MIG_BATCH_MAX
 * pieces of data or MIG_BATCH_NS (so that pause and cancel are seen), or
 * when the throttle wants a wait. own: only the pieces the top file holds
 * itself (snapshot mode's merge). */
int mig_copy_pass(struct bjob *b, vhdx *src, bool clear, bool own, uint64_t base)
{
	struct bmig *m = b->mig;
	uint64_t t0 = mono_ns();
	unsigned data = 0;
	for (unsigned i = 0; i < MIG_SCAN_MAX && b->cursor < b->n_chunks && m->side == SIDE_NONE; i++) {
		if (data == MIG_BATCH_MAX ||
		    (data && (mono_ns() - t0 >= MIG_BATCH_NS || iopool_waiting(&b->d->q))))
			break;
		uint64_t c = b->cursor++;
		bool mine = true;
		int r = own ? mig_own(src, b->vsize, c, &mine) : 0;
		if (r < 0 || (mine && (r = mig_read_piece(b, src, c, clear, data)) < 0))
			return r;
		if (mine && r == CL_DATA)
			data++;
	}
	b->done = base + (b->cursor * BJOB_CHUNK < b->vsize ? b->cursor * BJOB_CHUNK : b->vsize);
	if (m->n_wpend) { /* first, then what else the step asked for */
		m->side_also = m->side;
		m->side = SIDE_WRITE;
	}
	return 0;
}

/* The dirty passes. A pass starts (cursor 0) by asking whether what is
 * dirty could be copied within max_pause at the measured rate: then the
 * switch-over comes next (after a flush of dest beside the I/O, so that
 * the one in the pause is short), once nothing is dirty or, after
 * MIG_PASSES_EAGER passes, once the rest fits; after MIG_PASSES_MAX passes
 * it comes anyway. Else dirty pieces are taken as the first pass takes them
 * (their dirty bits cleared, their data left to the side step where it
 * can read it), and a step ends as mig_copy_pass's do. */
int mig_dirty_step(struct bjob *b)
{
	struct bmig *m = b->mig;
	uint64_t t0 = mono_ns();
	unsigned data = 0;
	for (int round = 0; round < 2 && !data; round++) {
		uint64_t n, c;
		if (b->cursor == 0) {
			bjob_dirty_next(b, 0, &n);
			m->dirty_bytes = n * BJOB_CHUNK;
			uint64_t est = !n ? 0 : m->copy_bytes ? (uint64_t)((double)n * BJOB_CHUNK * (double)m->copy_ns / (double)m->copy_bytes / 1000)
							       : UINT64_MAX;
			/* nothing dirty is best: no copy and no flush of dest in
			 * the pause; what a pass leaves (pieces written while in
			 * flight) is a few pieces at most, so a few passes get
			 * there before settling for what fits in max_pause */
			if (!n || (est <= m->max_pause_us && m->passes >= MIG_PASSES_EAGER) ||
			    m->passes >= MIG_PASSES_MAX) {
				m->phase = MP_SWITCH;
				if (m->side == SIDE_NONE)
					m->side = SIDE_FLUSH;
				return 0;
			}
			m->passes++;
		}
		while (m->n_wpend < MIG_SCAN_MAX && m->side == SIDE_NONE && data < MIG_BATCH_MAX &&
		       !(data && (mono_ns() - t0 >= MIG_BATCH_NS || iopool_waiting(&b->d->q)))) {
			c = bjob_dirty_next(b, b->cursor, &n);
			if (c == UINT64_MAX) {
				b->cursor = 0; /* the pass is over: the next one decides */
				break;
			}
			b->cursor = c + 1;
			b->total += BJOB_CHUNK;
			b->done += BJOB_CHUNK;
			int r = mig_read_piece(b, b->d->h, c, true, data);
			if (r < 0)
				return r;
			data += r == CL_DATA;
		}
		if (m->n_wpend)
			break;
	}
	if (m->n_wpend) { /* first, then what else the step asked for */
		m->side_also = m->side;
		m->side = SIDE_WRITE;
	}
	return 0;
}

/* ---- the side step ------------------------------------------------------------ */

/* A deferred piece's bytes from the source's file, into its slot. The
 * file never shrinks (the engine only extends it), so a short read is an
 * error. */
static int side_read(struct bjob *b, const struct mig_pend *p, uint64_t len)
{
	struct bmig *m = b->mig;
	uint8_t *buf = m->wbuf + (size_t)p->slot * BJOB_CHUNK;
	uint64_t t0 = mono_ns();
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(p->rfd, buf + done, len - done, (off_t)(p->foff + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return scm_fail(&b->serr, n < 0 ? -errno : -EIO, "%s: reading the source at 0x%llx: %s", b->path,
					(unsigned long long)(p->foff + done), n < 0 ? strerror(errno) : "short read");
		done += (uint64_t)n;
	}
	m->side_read_ns += mono_ns() - t0;
	/* the CPU left to whoever waits for it (a client's thread woken
	 * here), rather than kept for the whole batch's reads */
	mig_breathe();
	return 0;
}

/* len bytes at foff of dest's file, through dfd when they are aligned for
 * it, else through the handle's own fd (both outside the engine). */
static int put(struct bjob *b, const uint8_t *buf, uint64_t len, uint64_t foff)
{
	struct bmig *m = b->mig;
	if (m->to_nbd) /* an export: foff is the piece's own offset */
		return mig_nbd_write(b, buf, len, foff, &b->serr);
	int fd = m->dfd >= 0 && !((len | foff) & 4095) ? m->dfd : vhdx_fd(b->other);
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(foff + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return scm_fail(&b->serr, n < 0 ? -errno : -EIO, "%s: writing the copy at 0x%llx: %s", b->target,
					(unsigned long long)(foff + done), n < 0 ? strerror(errno) : "no progress");
		done += (uint64_t)n;
	}
	return 0;
}

/* The side step's pieces, each: what to do with it, then its write in
 * flight. */
struct wp {
	uint64_t len, foff;
	bool zero, known, write, flying;
	uint8_t h[32];
	struct iocb cb;
};

/* put() started, when dest takes asynchronous writes (O_DIRECT and AIO):
 * true when it is in flight. */
static bool put_start(struct bjob *b, const uint8_t *buf, struct wp *w)
{
	struct bmig *m = b->mig;
	struct iocb *cbs[1] = { &w->cb };
	if (!m->aio || m->dfd < 0 || ((w->len | w->foff) & 4095))
		return false;
	w->cb = (struct iocb){ .aio_fildes = (uint32_t)m->dfd, .aio_lio_opcode = IOCB_CMD_PWRITE,
			       .aio_buf = (uint64_t)(uintptr_t)buf, .aio_nbytes = w->len,
			       .aio_offset = (int64_t)w->foff, .aio_data = (uint64_t)(uintptr_t)w };
	return syscall(SYS_io_submit, m->aio, 1, cbs) == 1;
}

/* Waits for n writes in flight; the first failure is the result (every
 * one is waited for all the same: their buffers are the job's). */
static int put_wait(struct bjob *b, unsigned n)
{
	int r = 0;
	while (n) {
		struct io_event ev[MIG_BATCH_MAX];
		long k = syscall(SYS_io_getevents, b->mig->aio, 1, n < MIG_BATCH_MAX ? n : MIG_BATCH_MAX, ev, NULL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) { /* (cannot happen with events outstanding) */
			b->mig->aio_lost = true; /* (mig_direct_close waits for them then) */
			return scm_fail(&b->serr, k < 0 ? -errno : -EIO, "%s: waiting for the copy's writes: %s",
					b->target, k < 0 ? strerror(errno) : "no event");
		}
		for (long i = 0; i < k; i++) {
			struct wp *w = (struct wp *)(uintptr_t)ev[i].data;
			const uint8_t *buf = (const uint8_t *)(uintptr_t)w->cb.aio_buf;
			int64_t res = ev[i].res;
			w->flying = false;
			if (r < 0)
				continue;
			if (res < 0)
				r = scm_fail(&b->serr, (int)res, "%s: writing the copy at 0x%llx: %s", b->target,
					     (unsigned long long)w->foff, strerror((int)-res));
			else if ((uint64_t)res < w->len) /* short: the rest the plain way */
				r = put(b, buf + res, w->len - (uint64_t)res, w->foff + (uint64_t)res);
		}
		n -= (unsigned)k;
	}
	return r;
}

/* A piece the read step queued, first half: its bytes read when the
 * step left that to us; what dest needs, decided as mig_copy_chunk does,
 * with only the engine's calls on dest under the dest lock (clients'
 * mirrored writes take it too); its bytes' write is started (or done,
 * without AIO) outside it. No client mirrors a write into this piece (it
 * is in flight), so its record entry is this step's alone. */
static int piece_start(struct bjob *b, const struct mig_pend *p, struct wp *w)
{
	struct bmig *m = b->mig;
	vhdx *dst = b->other;
	struct mig_piece pc = mig_piece_of(b, p->c);
	uint64_t off = pc.off, len = pc.len, bstart = pc.bstart, blen = pc.blen;
	struct mig_rec *rec = &m->rec[p->c];
	const uint8_t *buf = m->wbuf + (size_t)p->slot * BJOB_CHUNK;
	int r;
	*w = (struct wp){ .len = len };
	if (p->cl == CL_DATA && p->rfd >= 0 && (r = side_read(b, p, len)) < 0)
		return r;
	w->zero = p->cl == CL_DATA && mig_all_zero(buf, len);
	/* a piece of data over something the record knows: hashed first, to
	 * tell whether dest holds it already (the only hash a copy waits
	 * for); anywhere else the hasher makes it after the write. (The
	 * entry's state is read under the lock the hasher fills it under.) */
	pthread_mutex_lock(&m->dlock);
	uint8_t st = rec->st;
	pthread_mutex_unlock(&m->dlock);
	w->known = p->cl == CL_DATA && !w->zero && (st == REC_ZERO || st == REC_DATA);
	uint64_t th = mono_ns();
	if (w->zero)
		mig_zero_hash(m, b->buf, len, w->h);
	else if (w->known)
		mig_sha256(buf, len, w->h);
	m->hash_ns += w->known ? mono_ns() - th : 0;
	pthread_mutex_lock(&m->dlock);
	int dst_st = mig_dest_state(b, p->c);
	bool dst_alloc = dst_st == VHDX_PB_FULLY_PRESENT || dst_st == VHDX_PB_PARTIALLY_PRESENT;
	if (dst_st < 0) {
		r = mig_dst_fail(b, dst_st);
	} else if (p->cl != CL_DATA) {
		r = mig_no_data(b, p->c, p->cl, dst_st);
	} else if (w->zero && !dst_alloc) {
		if ((r = dst_st == VHDX_PB_ZERO ? 0 : vhdx_zero_blocks(dst, blen, bstart)) < 0)
			mig_dst_fail(b, r);
	} else if ((w->zero || w->known) && mig_rec_known(rec->st) && !memcmp(rec->hash, w->h, 32)) {
		r = 0;
		m->skipped += len; /* the destination holds these bytes */
	} else if (m->to_nbd) {
		/* written below, outside the lock; zeros as WRITE_ZEROES */
		w->foff = off;
		w->write = !w->zero;
		r = w->zero ? mig_nbd_zeroes(b, len, off, true, &b->serr) : 0;
	} else if ((r = vhdx_place(dst, off, len, &w->foff)) < 0) {
		mig_dst_fail(b, r);
	} else {
		w->write = true;
	}
	pthread_mutex_unlock(&m->dlock);
	if (r < 0 || !w->write)
		return r;
	m->copied += len;
	w->flying = put_start(b, buf, w);
	return w->flying ? 0 : put(b, buf, len, w->foff);
}

/* Every piece the read step queued, into dest: each read (when
 * deferred) and its write started, the writes waited for; then their
 * record entries (a new piece's REC_HASHING, for the hasher), and the
 * pieces are no longer in flight: a client's write there mirrors from
 * then on. The new pieces' buffer goes to the hasher, and the next step
 * reads into a free one. */
void mig_write_pieces(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct wp w[MIG_SCAN_MAX];
	struct mig_hbatch hb = { .buf = m->wbuf };
	unsigned n = 0, flying = 0;
	uint64_t t0 = mono_ns();
	int r = 0;
	m->dest_unflushed = true;
	for (; n < m->n_wpend && r >= 0; n++) {
		r = piece_start(b, &m->wpend[n], &w[n]);
		flying += w[n].flying;
	}
	uint64_t tw = mono_ns();
	int rw = flying ? put_wait(b, flying) : 0;
	m->write_wait_ns += mono_ns() - tw;
	if (r >= 0)
		r = rw;
	if (r < 0) {
		/* the next work step fails the job: it rolls back; the pieces
		 * stay in flight, so a client's write there only marks them
		 * dirty meanwhile */
		m->pending_r = r;
		m->pending_err = TAKE_PTR(b->serr);
		m->n_wpend = 0;
		pthread_mutex_lock(&m->dlock);
		m->wfail = true;
		pthread_cond_broadcast(&m->pcond);
		pthread_mutex_unlock(&m->dlock);
		return;
	}
	pthread_mutex_lock(&m->dlock);
	for (unsigned i = 0; i < n; i++)
		if (m->wpend[i].cl == CL_DATA) {
			uint64_t c = m->wpend[i].c;
			struct mig_rec *rec = &m->rec[c];
			if (w[i].zero || w[i].known) {
				rec->st = w[i].zero ? REC_ZERO : REC_DATA;
				memcpy(rec->hash, w[i].h, 32);
			} else if (m->to_nbd) { /* no record for an export: nothing to hash */
				rec->st = REC_UNKNOWN;
			} else if (m->hash_later) { /* hashed from the disk's old file after the job */
				rec->st = REC_LATER;
			} else { /* nothing at dest to compare with: hashed later */
				rec->st = REC_HASHING;
				hb.p[hb.n++] = (typeof(hb.p[0])){ .c = c, .seq = ++m->rseq[c], .len = (uint32_t)w[i].len,
								  .slot = m->wpend[i].slot };
			}
			m->copy_bytes += w[i].len;
		}
	/* from here on a client's write there goes to dest too */
	for (unsigned i = 0; i < n; i++)
		__atomic_fetch_and(&m->inflight[m->wpend[i].c / 8], (uint8_t)~(1u << (m->wpend[i].c % 8)),
				   __ATOMIC_RELEASE);
	pthread_cond_broadcast(&m->pcond);
	pthread_mutex_unlock(&m->dlock);
	m->copy_ns += mono_ns() - t0;
	m->n_wpend = 0;
	if (hb.n)
		mig_hash_batch(m, &hb); /* (hashed here when the hasher is every other buffer behind) */
	if (b->other && m->copied - m->wb_mark >= MIG_WRITEBACK) {
		/* what the copy wrote (in the device's cache, O_DIRECT or not)
		 * and what went through the page cache (clients' mirrored
		 * writes) on its way to stable storage while the copy goes on,
		 * not all of it in the flush before the switch-over
		 * (provider-migflush.c); and the source's clients' writes, which
		 * the last step's close of it flushes (not when the record is
		 * made after the job, which closes it then: the clients' writes
		 * to it meet no writeback of ours during the copy) */
		m->wb_mark = m->copied;
		mig_flush_kick(&m->fl, vhdx_fd(b->other), m->snapshot || m->hash_later ? -1 : vhdx_fd(b->d->h));
	}
}

