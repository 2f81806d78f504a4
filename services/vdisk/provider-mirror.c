/* provider-mirror.c: active mirroring during a mirror-mode live migration
 * (docs/vdisk.md "Live migration"), as qemu's mirror job with
 * copy-mode=write-blocking: once the copy has passed a piece, a client's
 * write to it is applied to the destination too, so the dirty map only
 * shrinks and the switch-over has almost nothing left to copy, however
 * fast the client writes. To a file, the write is applied behind the
 * client's reply, by the job's queue of them (write-behind: provider-
 * mirq.c); to an export, and in snapshot mode, before it.
 *
 * The copy takes pieces in a step exclusive on the disk's queue
 * (iopool.h) and reads and writes them to the destination in a side step
 * beside the disk's I/O (provider-migpiece.c); meanwhile they are "in
 * flight". A write to a piece the copy took and put in dest mirrors (it
 * comes after the copy's bytes there); one to a piece the copy has not
 * taken yet, or to one in flight (whose bytes the side step may have read
 * before the write), is only marked dirty: the copy carries it when it
 * gets there, or in a later pass, as qemu's mirror does with its dirty
 * bitmap. No client's write ever waits for the copy's I/O.
 * What cannot mirror (a trim, whose effect on a differencing source the
 * flat copy cannot repeat; a failed write to the destination) falls back
 * to the dirty map and a later pass.
 *
 * The destination's handle is also flushed by a side step beside the
 * disk's I/O (provider-migrate.c), so its writes here (or the queue's)
 * and that flush hold the job's dest lock. A client's flush flushes the
 * destination too (after the writes queued before it):
 * every write a client was promised is then durable on both files, which
 * lets the switch-over skip flushing the destination when it copied
 * nothing since the last flush of it.
 *
 * Also here: the migration's side steps (mig_side), which run beside the
 * disk's I/O on the job's own queue, the copy's own fd of the destination
 * they write through, and the job's status. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "provider-migrate.h"

/* Does b's destination take clients' writes now? A mirror migration's
 * from its copy on; a snapshot migration's once the child is re-parented
 * onto it, while the child is merged (as qemu's active commit is a
 * mirror): a write to the child then goes to its new parent too, where
 * it changes nothing the child reads (the child holds those sectors now),
 * so the merge's dirty passes converge under a writer as mirror's do. */
static bool mirroring(const struct bjob *b)
{
	const struct bmig *m = b->mig;
	if (!m || (!b->other && !m->nbd))
		return false;
	return m->snapshot ? m->phase >= MP_COMMIT && m->phase <= MP_SWITCH : m->phase >= MP_COPY && m->phase <= MP_SWITCH;
}

/* A failure of the destination outside the job's steps: the next work
 * step fails the job (which rolls back: the source is still the disk). */
static void dest_failed(struct bjob *b, int r, scm_error *e)
{
	struct bmig *m = b->mig;
	if (!m->pending_r) {
		m->pending_r = r;
		m->pending_err = e ? e : vhdx_error(b->other);
	} else {
		scm_error_free(e);
	}
}

/* Is piece c where a client's write mirrors: taken by the copy already
 * (the first pass, or snapshot mode's merge, goes in order: c behind its
 * cursor, which only steps exclusive with this write move) and not in
 * flight (dlock held)? */
static bool settled(const struct bjob *b, uint64_t c)
{
	const struct bmig *m = b->mig;
	return (m->phase != MP_COPY && m->phase != MP_COMMIT) || c < b->cursor ? !mig_inflight(m, c) : false;
}

/* Late in the dirty passes (MIG_PASSES_EAGER done), a write to pieces in
 * flight waits for the side step writing them, then mirrors: what a
 * writer hits while the copy has it can then not keep the passes going.
 * Held for one side step at most; a second's bound (a provider shutting
 * down runs no more side steps) falls back to the dirty map. dlock held. */
static void wait_flight(struct bjob *b, uint64_t c0, uint64_t c1)
{
	struct bmig *m = b->mig;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 1;
	m->held++;
	for (uint64_t c = c0; c <= c1 && c < b->n_chunks && !m->wfail;)
		if (!mig_inflight(m, c))
			c++;
		else if (pthread_cond_timedwait(&m->pcond, &m->dlock, &ts) == ETIMEDOUT)
			break;
}

/* Are pieces c0..c1 all settled (a write there mirrors)? *flying: is
 * one of them in flight. */
static bool settled_all(const struct bjob *b, uint64_t c0, uint64_t c1, bool *flying)
{
	bool mir = true;
	*flying = false;
	for (uint64_t c = c0; c <= c1 && c < b->n_chunks; c++) {
		mir = mir && settled(b, c);
		*flying = *flying || mig_inflight(b->mig, c);
	}
	return mir;
}

/* Late in the dirty passes: a write to a piece in flight waits for it. */
static bool late(const struct bmig *m)
{
	return m->phase == MP_DIRTY && m->passes >= MIG_PASSES_EAGER;
}

/* Into the queue for dest (provider-mirq.c), or the dirty map when it
 * cannot be queued. */
static void queue(struct bjob *b, enum bjob_wop op, const void *buf, uint64_t off, uint64_t len, bool unmap)
{
	if (!mig_mirq_push(b, op, buf, off, len, unmap))
		bjob_dirty(b, off, len);
}

void bjob_written(struct bjob *b, enum bjob_wop op, const void *buf, uint64_t off, uint64_t len, bool unmap)
{
	if (!b || !len)
		return;
	if (!mirroring(b) || op == BW_TRIM) {
		bjob_dirty(b, off, len);
		return;
	}
	struct bmig *m = b->mig;
	uint64_t c0 = off / BJOB_CHUNK, c1 = (off + len - 1) / BJOB_CHUNK;
	bool queued = mig_mirq_on(m), flying, mir;
	if (queued) {
		/* decided without dlock, which the queue's thread holds while
		 * it writes dest: on the disk's queue, as the steps that take
		 * pieces, so only a side step's clearing of in-flight bits
		 * runs beside (a stale bit only marks dirty) */
		mir = settled_all(b, c0, c1, &flying);
		if (mir) {
			queue(b, op, buf, off, len, unmap);
			return;
		}
		if (!flying || !late(m)) {
			__atomic_add_fetch(&m->redirtied, flying, __ATOMIC_RELAXED);
			bjob_dirty(b, off, len);
			return;
		}
		/* late in the passes: waits for the side step (below) */
	}
	pthread_mutex_lock(&m->dlock);
	mir = settled_all(b, c0, c1, &flying);
	if (!mir && flying && late(m)) {
		wait_flight(b, c0, c1);
		mir = settled_all(b, c0, c1, &flying);
	}
	if (!mir) {
		/* the copy carries it: when it gets there, or (a piece in
		 * flight, its bytes maybe read before this write) in a later
		 * pass; the client waits for none of it */
		__atomic_add_fetch(&m->redirtied, flying, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&m->dlock);
		bjob_dirty(b, off, len);
		return;
	}
	if (queued) {
		pthread_mutex_unlock(&m->dlock);
		queue(b, op, buf, off, len, unmap);
		return;
	}
	scm_error *e = NULL;
	int r = m->to_nbd ? (op == BW_WRITE ? mig_nbd_write(b, buf, len, off, &e) : mig_nbd_zeroes(b, len, off, unmap, &e))
		: op == BW_WRITE ? vhdx_write(b->other, buf, len, off)
				 : vhdx_write_zeroes(b->other, len, off, unmap);
	/* what the destination holds there is no longer what the record's
	 * hash says (a failed write may have reached it, or may still):
	 * the record leaves the piece out (never a wrong claim); unless it
	 * is hashed from the disk's old file after the job, which holds at
	 * the switch-over what dest holds (a failed write: copied again) */
	for (uint64_t c = c0; c <= c1 && c < b->n_chunks; c++)
		m->rec[c].st = m->hash_later ? REC_LATER : REC_UNKNOWN;
	if (r < 0 && m->to_nbd)
		dest_failed(b, r, e); /* the connection is not used again (provider-mignbd.c): the job fails */
	else
		scm_error_free(e); /* the dirty map takes it: a pass copies it again, or fails the job */
	pthread_mutex_unlock(&m->dlock);
	if (r < 0) {
		bjob_dirty(b, off, len); /* a pass copies it again, or fails the job */
		return;
	}
	__atomic_add_fetch(&m->mirrored, len, __ATOMIC_RELAXED);
}

int bjob_flushed(struct bjob *b)
{
	if (!b || !mirroring(b))
		return 0;
	struct bmig *m = b->mig;
	mig_mirq_wait(b); /* the client's writes queued for dest: there first */
	pthread_mutex_lock(&m->dlock);
	scm_error *e = NULL;
	int r = m->to_nbd ? mig_nbd_flush(b, &e) : vhdx_flush(b->other);
	if (r < 0)
		dest_failed(b, r, e);
	pthread_mutex_unlock(&m->dlock);
	return 0; /* the source is the disk until the switch-over: its flush stands */
}

bool mig_renew_due(const struct bjob *b)
{
	const struct bmig *m = b->mig;
	return !m->to_nbd && !m->snapshot && !m->renewed && b->other && vhdx_data_touched(b->d->h);
}

/* The side step's flush of the destination: the bulk of its data goes
 * out without the lock (the kernel's fdatasync may run beside writes to
 * the file), then the engine's own flush (block table, log) under it,
 * short now. */
static void side_flush(struct bjob *b)
{
	struct bmig *m = b->mig;
	uint64_t t0 = mono_ns();
	if (m->phase == MP_SWITCH) {
		mig_flush_stop(&m->fl); /* (an early flush under way: finished, as this one would wait for it) */
		mig_mirq_wait(b); /* clients' writes queued for dest: in this flush, not the pause */
	}
	if (!m->to_nbd)
		/* (through an open file of its own, so that an error shows
		 * again in the flush below: provider-migflush.c) */
		(void)mig_fdatasync_beside(vhdx_fd(b->other));
	pthread_mutex_lock(&m->dlock);
	scm_error *e = NULL;
	int r = 0;
	if (m->phase == MP_SWITCH && mig_renew_due(b)) {
		/* dest's first write after the switch-over would renew its
		 * DataWriteGuid, a header update with two flushes (each a
		 * FLUSH to the device), while the clients wait on the disk's
		 * queue behind that write. The disk's
		 * identity is this session's already (its own writes renewed
		 * it), so dest renews it here instead, beside the I/O. The
		 * record keeps the DataWriteGuid dest was made with: it vouches
		 * for dest as it was, which dest no longer says it is. */
		if ((r = vhdx_renew_identity(b->other)) < 0)
			e = vhdx_error(b->other);
		m->renewed = r >= 0;
	}
	if (r >= 0)
		r = m->to_nbd ? mig_nbd_flush(b, &e) : vhdx_flush(b->other);
	if (r < 0)
		dest_failed(b, r, e);
	else
		m->dest_unflushed = false;
	pthread_mutex_unlock(&m->dlock);
	if (m->phase == MP_SWITCH)
		/* and what clients queued during that flush: else the pause
		 * applies it, one write after another (traced with a slowed
		 * queue: 65 ms of a 70 ms pause) */
		mig_mirq_wait(b);
	m->flush_us += (mono_ns() - t0) / 1000;
}

/* fn(arg) on a detached thread, on the job's CPUs (mig_cpus: the worker
 * that makes it may be kept off them, and a thread keeps the mask it was
 * made with); false when none can be had. */
static bool detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t a;
	cpu_set_t s;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (mig_cpus(&s))
		(void)pthread_attr_setaffinity_np(&a, sizeof s, &s);
	bool ok = pthread_create(&t, &a, fn, arg) == 0;
	pthread_attr_destroy(&a);
	return ok;
}

static void *closer(void *arg)
{
	(void)pthread_setname_np(pthread_self(), "vdisk-migclose");
	close((int)(intptr_t)arg);
	return NULL;
}

/* fd closed by a detached thread (or here, when none can be had). */
static void close_beside(int fd)
{
	if (fd >= 0 && !detached(closer, (void *)(intptr_t)fd))
		close(fd);
}

/* Beside the disk's I/O, on the job's own queue: making dest, writing
 * and hashing what the last step read (provider-migpiece.c), a throttle's
 * wait, a flush of dest (under the dest lock: mirrored writes touch it
 * too), or after the switch-over the old handle closed, the snapshot
 * child removed and the correspondence record written. None touches the
 * disk's own handle (snapshot mode's first fdatasyncs its file). A
 * failure waits for the next work step. */
static void side_one(struct bjob *b)
{
	struct bmig *m = b->mig;
	int r;
	switch (m->side_run) {
	case SIDE_NONE: break;
	case SIDE_CREATE:
		if ((r = mig_create(b)) < 0) {
			m->pending_r = r;
			m->pending_err = TAKE_PTR(b->serr);
		} else if (m->snapshot) {
			/* the snapshot step flushes the disk with its I/O held:
			 * what the clients wrote and never flushed is written
			 * back here first, beside the I/O (the file's fd only,
			 * not the engine), so that flush has little left */
			(void)mig_fdatasync_beside(vhdx_fd(b->d->h)); /* (its error left for the disk's own flush) */
		}
		break;
	case SIDE_WRITE:
		/* what the last step read, into dest: clients wait for none of
		 * it (on the job's copy thread: provider-migside.c) */
		mig_write_beside(b);
		break;
	case SIDE_SLEEP:
		usleep((useconds_t)(m->sleep_us < 1000000 ? m->sleep_us : 1000000));
		m->slept_us += m->sleep_us;
		break;
	case SIDE_FLUSH: side_flush(b); break;
	case SIDE_FINAL: {
		scm_error *e = NULL;
		uint64_t t0 = mono_ns();
		bool later = m->hash_later && m->old; /* (a disk without parent: the old handle is its file) */
		if ((r = mig_commit_sync(b->d)) < 0) /* a flush will try again */
			fprintf(stderr, "vdisk-provider: %s: fsync of its directory: %s\n", b->path, strerror(-r));
		if (m->to_nbd) {
			/* nothing of ours moved: the export's connection goes (no
			 * client's write reaches it any more: phase final) */
			pthread_mutex_lock(&m->dlock);
			mig_nbd_close(m->nbd);
			m->nbd = NULL;
			pthread_mutex_unlock(&m->dlock);
		} else if (m->child_made) {
			/* snapshot mode: the old handle is the child, merged into
			 * DEST, which is the disk now: removed, and let go of
			 * without flushing it (writing back the clients' writes
			 * to a file about to go took seconds). The last close of
			 * the removed file is its eviction (its pages dropped,
			 * its blocks freed): 4.8 s of a 4.9 s last step, traced,
			 * for a child of 1 GiB at load 20. A thread of its own
			 * closes it, so the job is done without it; the name goes
			 * first, as before (a crash between leaves an orphan
			 * inode, which the file system frees when it mounts). */
			int keep = fcntl(vhdx_fd(m->old), F_DUPFD_CLOEXEC, 3);
			unlinkat(b->dirfd, m->child_name, 0);
			m->old = vhdx_abandon(m->old);
			close_beside(keep);
		} else if (later) {
			/* the old file closed (flushed: the clients' writes to it
			 * going out beside their writes to dest), its hashes made
			 * and the record written, after the job */
			mig_later_start(b);
		} else if ((r = vhdx_close_checked(m->old)) < 0) {
			fprintf(stderr, "vdisk-provider: %s: closing it after the migration: %s\n", b->path, strerror(-r));
		}
		m->old = NULL;
		mig_direct_close(m); /* (its file is the disk now) */
		m->child_made = false;
		mig_hash_drain(m); /* every hash the record needs, made */
		if (!m->to_nbd && !later && mig_record_write(b, &e) < 0) {
			_cleanup_free_ char *t = scm_error_text(e);
			fprintf(stderr, "vdisk-provider: %s\n", t ? t : "the correspondence record: out of memory");
			scm_error_free(e);
		}
		b->done = b->total;
		m->final_us = (mono_ns() - t0) / 1000;
		b->complete = true;
		break;
	}
	}
}

void mig_side(struct bjob *b)
{
	struct bmig *m = b->mig;
	m->n_side++;
	m->queued_ns += mono_ns() - m->t_queued;
	side_one(b);
	if (m->side_run == SIDE_WRITE && m->side_also != SIDE_NONE) { /* what else the read step asked for */
		m->side_run = m->side_also;
		side_one(b);
	}
	m->side_also = SIDE_NONE;
	m->side_run = SIDE_NONE;
}

/* dest's own fd for the copy's writes (provider-migcopy.c), bypassing the
 * page cache where the file system allows it: the copy is written once and
 * not read back, so it costs no copy into the cache, no writeback work on
 * the way and little flushing at the switch-over. Else -1: the copy goes
 * through dest's handle's fd, buffered. */
void mig_direct_open(struct bmig *m, vhdx *dst)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", vhdx_fd(dst));
	m->dfd = open(p, O_WRONLY | O_DIRECT | O_CLOEXEC);
	m->direct = m->dfd >= 0;
	if (m->dfd >= 0 && syscall(SYS_io_setup, MIG_BATCH_MAX, &m->aio) < 0)
		m->aio = 0; /* the writes wait, then the hash */
}

struct aio_end {
	aio_context_t aio;
	int fd;
};

static void aio_end(aio_context_t aio, int fd)
{
	if (aio)
		syscall(SYS_io_destroy, aio);
	safe_close(fd);
}

static void *aio_ender(void *arg)
{
	struct aio_end *a = arg;
	(void)pthread_setname_np(pthread_self(), "vdisk-migaio");
	aio_end(a->aio, a->fd);
	free(a);
	return NULL;
}

/* (No write of it in flight, unless waiting for them failed: aio_lost.)
 * The AIO context goes on a detached thread:
 * io_destroy waits for the context's last references, an RCU grace
 * period later (traced: 30 ms in the last step, which the job's end
 * waited for; in a rollback's exclusive step the clients would); the fd
 * after it, so that nothing can still write through it. */
void mig_direct_close(struct bmig *m)
{
	aio_context_t aio = m->aio;
	int fd = m->dfd;
	m->aio = 0;
	m->dfd = -1;
	if (!aio && fd < 0)
		return;
	if (m->aio_lost) { /* writes may be in flight: io_destroy waits for them, here */
		aio_end(aio, fd);
		return;
	}
	struct aio_end *a = malloc(sizeof *a);
	if (a)
		*a = (struct aio_end){ .aio = aio, .fd = fd };
	if (!a || !detached(aio_ender, a)) {
		free(a);
		aio_end(aio, fd);
	}
}

static const char *const phase_names[] = { "create", "snapshot", "copy", "reparent",
					   "commit", "dirty",    "switch", "final" };

void mig_json(const struct bjob *b, json_object *j)
{
	const struct bmig *m = b->mig;
	json_object_object_add(j, "mode", json_object_new_string(m->snapshot ? "snapshot" : "mirror"));
	json_object_object_add(j, "copy_mode", json_object_new_string(m->snapshot && m->phase < MP_COMMIT ? "background"
								       : mig_mirq_on(m) ? "write-behind"
										      : "write-blocking"));
	json_object_object_add(j, "phase", json_object_new_string(phase_names[m->phase]));
	json_object_object_add(j, "passes", json_object_new_uint64(m->passes));
	json_object_object_add(j, "bytes_copied", json_object_new_uint64(m->copied));
	json_object_object_add(j, "bytes_skipped", json_object_new_uint64(m->skipped));
	json_object_object_add(j, "dirty", json_object_new_uint64(m->dirty_bytes));
	json_object_object_add(j, "bytes_mirrored", json_object_new_uint64(__atomic_load_n(&m->mirrored, __ATOMIC_RELAXED)));
	json_object_object_add(j, "pause_us", json_object_new_uint64(m->pause_us));
	json_object_object_add(j, "pause_bytes", json_object_new_uint64(m->switch_bytes));
	json_object_object_add(j, "pause_wait_us", json_object_new_uint64(m->pause_wait_us));
	json_object_object_add(j, "pause_flush_us", json_object_new_uint64(m->pause_flush_us));
	json_object_object_add(j, "copy_us", json_object_new_uint64(m->copy_ns / 1000));
	json_object_object_add(j, "flush_us", json_object_new_uint64(m->flush_us));
	json_object_object_add(j, "early_flushes", json_object_new_uint64(__atomic_load_n(&m->fl.n, __ATOMIC_RELAXED)));
	json_object_object_add(j, "early_flush_us", json_object_new_uint64(__atomic_load_n(&m->fl.ns, __ATOMIC_RELAXED) / 1000));
	json_object_object_add(j, "final_us", json_object_new_uint64(m->final_us));
	json_object_object_add(j, "throttle", json_object_new_uint64(m->throttle));
	json_object_object_add(j, "throttled_us", json_object_new_uint64(m->slept_us));
	json_object_object_add(j, "max_pause_us", json_object_new_uint64(m->max_pause_us));
	char cpus[256];
	json_object_object_add(j, "cpus", json_object_new_string(mig_cpus_text(cpus, sizeof cpus)));
	if (m->renewed)
		json_object_object_add(j, "dest_renewed", json_object_new_string(m->renewed_in_pause ? "pause" : "beside"));
	json_object_object_add(j, "steps", json_object_new_uint64(b->steps));
	json_object_object_add(j, "direct", json_object_new_boolean(m->direct));
	json_object_object_add(j, "dest_nbd", json_object_new_boolean(m->to_nbd));
	json_object_object_add(j, "writes_redirtied", json_object_new_uint64(m->redirtied));
	json_object_object_add(j, "writes_held", json_object_new_uint64(m->held));
	if (mig_mirq_on(m)) {
		json_object_object_add(j, "mirror_queue_waits", json_object_new_uint64(__atomic_load_n(&m->mq.waits, __ATOMIC_RELAXED)));
		json_object_object_add(j, "mirror_queue_dropped", json_object_new_uint64(__atomic_load_n(&m->mq.dropped, __ATOMIC_RELAXED)));
	}
	json_object_object_add(j, "side_steps", json_object_new_uint64(m->n_side));
	json_object_object_add(j, "hash_us", json_object_new_uint64(mig_hash_ns(m) / 1000));
	json_object_object_add(j, "hash_wait_us", json_object_new_uint64(mig_hash_wait_ns(m) / 1000));
	json_object_object_add(j, "write_wait_us", json_object_new_uint64(m->write_wait_ns / 1000));
	json_object_object_add(j, "side_read_us", json_object_new_uint64(m->side_read_ns / 1000));
	json_object_object_add(j, "queued_us", json_object_new_uint64(m->queued_ns / 1000));
}
