/* provider-mirq.c: a mirror migration's clients' writes applied to the
 * destination behind their reply (provider-migrate.h, struct mig_mirq).
 *
 * Active mirroring (provider-mirror.c) used to write dest in the client's
 * own request, so each client's write waited for dest's file as well as
 * the disk's. Traced under the bench's 4 KiB QD1 writer, that wait made
 * the longest of its writes: the copy's O_DIRECT writes into dest's holes
 * hold dest's inode lock (i_rwsem) while ext4 allocates their blocks
 * inside io_submit, 1 to 3 ms each time and up to 55 ms, and a buffered
 * write to dest waits for that lock (38 waits, 113 ms in all, in one
 * migration). It also lets the copy run at nice 19 (provider-migside.c)
 * with no client's write taking a lock the copy holds. Now the client is answered once its write is on the disk
 * (which is what its reply promises: the source is the disk until the
 * switch-over), and the write is queued here; a thread of the job applies
 * the queue to dest in order, and it is the one that waits for dest.
 *
 * Nothing a client was promised depends on the queue:
 *  - its writes are on the source, which is the disk until the switch-
 *    over; that step (exclusive on the disk's queue) applies the whole
 *    queue before it copies what is dirty and moves the handles;
 *  - its flush waits for every write queued before it to be applied, then
 *    flushes dest (bjob_flushed), as before;
 *  - a write the thread fails to apply marks the dirty map: a pass copies
 *    the piece again from the source, as a failed mirrored write did.
 * In order: one thread, FIFO, so a later write to the same bytes lands
 * after an earlier one. Against the copy: a piece the copy takes (a dirty
 * pass; on the disk's queue, so no client's write runs meanwhile) is read
 * from the source after that take, so the queued writes to it are dropped
 * there (mig_mirq_take): the copy carries their bytes, and a stale one can
 * no longer land over the copy's. The one the thread took out of the
 * queue is not applied either if the take came first (apply), else it is
 * in dest before the copy's write there; either way its range is marked
 * dirty after, so a later pass copies it again. The queue is bounded
 * (MIG_MIRQ_BYTES): past it a client's write waits for room, which is the
 * old behaviour's wait, no worse. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-migrate.h"

struct mig_mentry {
	struct mig_mentry *next;
	uint64_t seq, off, len;
	uint8_t op;  /* BW_WRITE or BW_ZERO */
	bool unmap;
	uint8_t data[]; /* a write's bytes */
};

static uint64_t first_piece(const struct mig_mentry *e)
{
	return e->off / BJOB_CHUNK;
}

static uint64_t last_piece(const struct mig_mentry *e)
{
	return (e->off + e->len - 1) / BJOB_CHUNK;
}

/* The seq below which every entry is applied or dropped. Under lock. */
static uint64_t done_below(const struct mig_mirq *q)
{
	if (q->applying)
		return q->a_seq;
	return q->head ? q->head->seq : q->seq + 1;
}

/* One entry into dest, as a client's mirrored write went (under dlock:
 * the engine's handle of dest is the copy's and the flushes' too).
 * Not when the copy took a piece of it since it left the queue: the copy
 * read the source after that take, so it carries these bytes (or newer
 * ones, of writes the take dropped), and the side step puts them in dest
 * outside dlock, its record entry set after; a late write here would land
 * stale over them (a buffered write beside an O_DIRECT one in flight wins)
 * with the record claiming the copy's hash, and a later pass would skip
 * the piece as known. The applier marks the entry's range dirty for the
 * rest of it. Checked under dlock: a take after it finds this write done
 * before the side step's dest calls, which wait for dlock. */
static void apply(struct bjob *b, const struct mig_mentry *e)
{
	struct bmig *m = b->mig;
	struct mig_mirq *q = &m->mq;
	pthread_mutex_lock(&m->dlock);
	pthread_mutex_lock(&q->lock); /* (dlock, then the queue's: nothing takes them the other way) */
	bool raced = q->raced;
	pthread_mutex_unlock(&q->lock);
	if (raced) {
		pthread_mutex_unlock(&m->dlock);
		__atomic_add_fetch(&q->dropped, e->len, __ATOMIC_RELAXED);
		return;
	}
	int r = e->op == BW_WRITE ? vhdx_write(b->other, e->data, e->len, e->off)
				  : vhdx_write_zeroes(b->other, e->len, e->off, e->unmap);
	/* what dest holds there is no longer what the record's hash says
	 * (provider-mirror.c has why) */
	for (uint64_t c = first_piece(e); c <= last_piece(e) && c < b->n_chunks; c++)
		m->rec[c].st = m->hash_later ? REC_LATER : REC_UNKNOWN;
	pthread_mutex_unlock(&m->dlock);
	if (r < 0)
		bjob_dirty(b, e->off, e->len); /* a pass copies it again, or fails the job */
	else
		__atomic_add_fetch(&m->mirrored, e->len, __ATOMIC_RELAXED);
}

static void *applier(void *arg)
{
	struct bjob *b = arg;
	struct mig_mirq *q = &b->mig->mq;
	mig_thread_begin("vdisk-mirror");
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head)
			break; /* stopped, and nothing left to apply */
		struct mig_mentry *e = q->head;
		if (!(q->head = e->next))
			q->tail = NULL;
		q->applying = true;
		q->raced = false;
		q->a_seq = e->seq;
		q->a_c0 = first_piece(e);
		q->a_c1 = last_piece(e);
		bool discard = q->discard;
		pthread_mutex_unlock(&q->lock);
		if (bjob_mirq_us && !discard)
			usleep(bjob_mirq_us); /* (the test hook) */
		if (!discard)
			apply(b, e);
		pthread_mutex_lock(&q->lock);
		if (q->raced) /* the copy took a piece of it meanwhile */
			bjob_dirty(b, e->off, e->len);
		q->applying = false;
		q->bytes -= e->len;
		pthread_cond_broadcast(&q->cond);
		free(e);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

bool mig_mirq_on(const struct bmig *m)
{
	return !m->snapshot && !m->to_nbd;
}

void mig_mirq_setup(struct mig_mirq *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
}

bool mig_mirq_push(struct bjob *b, int op, const void *buf, uint64_t off, uint64_t len, bool unmap)
{
	struct mig_mirq *q = &b->mig->mq;
	struct mig_mentry *e = malloc(sizeof *e + (op == BW_WRITE ? len : 0));
	if (!e)
		return false; /* the caller marks it dirty instead */
	*e = (struct mig_mentry){ .off = off, .len = len, .op = (uint8_t)op, .unmap = unmap };
	if (op == BW_WRITE)
		memcpy(e->data, buf, len);
	pthread_mutex_lock(&q->lock);
	if (!q->started && !q->stop) {
		q->discard = false;
		q->started = pthread_create(&q->thread, NULL, applier, b) == 0;
	}
	if (!q->started || q->stop) { /* (stopping: its thread may be gone) */
		pthread_mutex_unlock(&q->lock);
		free(e);
		return false;
	}
	/* room: the old wait for dest, only once a backlog built up (one
	 * write larger than the bound goes alone) */
	if (q->bytes && q->bytes + len > MIG_MIRQ_BYTES) {
		__atomic_add_fetch(&q->waits, 1, __ATOMIC_RELAXED); /* (read by the status without the lock) */
		while (q->bytes && q->bytes + len > MIG_MIRQ_BYTES)
			pthread_cond_wait(&q->cond, &q->lock);
	}
	e->seq = ++q->seq;
	q->bytes += len;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return true;
}

void mig_mirq_take(struct bjob *b, uint64_t c)
{
	struct mig_mirq *q = &b->mig->mq;
	if (!mig_mirq_on(b->mig))
		return;
	pthread_mutex_lock(&q->lock);
	for (struct mig_mentry **p = &q->head, *prev = NULL; *p;) {
		struct mig_mentry *e = *p;
		if (c < first_piece(e) || c > last_piece(e)) {
			prev = e;
			p = &e->next;
			continue;
		}
		/* the copy reads c after this: it carries these bytes there;
		 * what the write also covers elsewhere goes again by the
		 * dirty map, as the entry is gone */
		uint64_t lo = c * BJOB_CHUNK, hi = lo + BJOB_CHUNK;
		if (e->off < lo)
			bjob_dirty(b, e->off, lo - e->off);
		if (e->off + e->len > hi)
			bjob_dirty(b, hi, e->off + e->len - hi);
		*p = e->next;
		if (q->tail == e)
			q->tail = prev;
		q->bytes -= e->len;
		__atomic_add_fetch(&q->dropped, e->len, __ATOMIC_RELAXED);
		free(e);
	}
	if (q->applying && c >= q->a_c0 && c <= q->a_c1)
		q->raced = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static void wait_below(struct mig_mirq *q, uint64_t seq)
{
	while (done_below(q) <= seq)
		pthread_cond_wait(&q->cond, &q->lock);
}

void mig_mirq_wait(struct bjob *b)
{
	struct mig_mirq *q = &b->mig->mq;
	if (!mig_mirq_on(b->mig))
		return;
	pthread_mutex_lock(&q->lock);
	wait_below(q, q->seq);
	pthread_mutex_unlock(&q->lock);
}

void mig_mirq_stop(struct bjob *b, bool apply_rest)
{
	struct mig_mirq *q = &b->mig->mq;
	pthread_mutex_lock(&q->lock);
	if (!q->started) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->discard = !apply_rest;
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_mutex_lock(&q->lock);
	q->started = q->stop = false; /* (a later write starts it again) */
	pthread_mutex_unlock(&q->lock);
}

void mig_mirq_free(struct bjob *b)
{
	struct mig_mirq *q = &b->mig->mq;
	mig_mirq_stop(b, false);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
}
