/* iopool.c: worker threads over per-disk ordered queues (iopool.h).
 *
 * One mutex and one condition variable for the whole pool: a job is a disk
 * read or write of 4 KiB to 4 MiB or a flush, so the lock is held for a
 * few list operations per job, never for the I/O. Workers pick the first
 * ready queue whose head may start, and move a queue they took from to the
 * back of the ready list, so each disk with work gets its turn. A
 * placement hook (iopool_set_place) runs as each worker wakes. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "iopool.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER; /* a job may start */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER; /* a job finished */
static struct iopool_queue *ready; /* circular, the next to serve first */
static pthread_t threads[64];
static unsigned n_threads, busy_jobs;
static bool stopping;
static bool (*place_due)(void);
static void (*place)(void);

static void ready_add(struct iopool_queue *q)
{
	if (q->ready)
		return;
	q->ready = true;
	if (!ready) {
		q->rnext = q->rprev = q;
		ready = q;
		return;
	}
	q->rnext = ready;
	q->rprev = ready->rprev;
	ready->rprev->rnext = q;
	ready->rprev = q;
}

static void ready_del(struct iopool_queue *q)
{
	if (!q->ready)
		return;
	q->ready = false;
	if (q->rnext == q)
		ready = NULL;
	else {
		q->rprev->rnext = q->rnext;
		q->rnext->rprev = q->rprev;
		if (ready == q)
			ready = q->rnext;
	}
}

static bool can_start(const struct iopool_queue *q)
{
	const struct iopool_job *j = q->head;
	if (!j || q->running_excl)
		return false;
	return j->shared || q->running_shared == 0;
}

/* Takes the next job that may start, or NULL. Called with the lock held. */
static struct iopool_job *take(struct iopool_queue **ret_q)
{
	struct iopool_queue *q = ready;
	if (!q)
		return NULL;
	do {
		if (can_start(q)) {
			struct iopool_job *j = q->head;
			q->head = j->next;
			if (!q->head)
				q->tail = NULL;
			if (j->shared)
				q->running_shared++;
			else
				q->running_excl = true;
			/* round robin: the queue after this one is served next */
			ready = q->rnext;
			if (!q->head)
				ready_del(q);
			*ret_q = q;
			return j;
		}
		q = q->rnext;
	} while (q != ready);
	return NULL;
}

static void *worker(void *arg)
{
	(void)pthread_setname_np(pthread_self(), "vdisk-io");
	pthread_mutex_lock(&lock);
	for (;;) {
		struct iopool_queue *q;
		if (place_due && place_due()) {
			/* (moving to another CPU waits for it: not under the lock) */
			pthread_mutex_unlock(&lock);
			place();
			pthread_mutex_lock(&lock);
			continue;
		}
		struct iopool_job *j = take(&q);
		if (!j) {
			if (stopping && !busy_jobs)
				break;
			pthread_cond_wait(&work, &lock);
			continue;
		}
		/* a second shared job of the same queue may start beside this one */
		if (can_start(q))
			pthread_cond_signal(&work);
		pthread_mutex_unlock(&lock);
		j->run(j);
		pthread_mutex_lock(&lock);
		if (j->shared)
			q->running_shared--;
		else
			q->running_excl = false;
		busy_jobs--;
		if (q->head)
			pthread_cond_broadcast(&work);
		pthread_cond_broadcast(&idle);
		pthread_mutex_unlock(&lock);
		j->done(j); /* j and q may be gone after this */
		pthread_mutex_lock(&lock);
	}
	pthread_cond_broadcast(&work); /* the other workers stop too */
	pthread_mutex_unlock(&lock);
	return NULL;
}

void iopool_set_place(bool (*due)(void), void (*fn)(void))
{
	place_due = due;
	place = fn;
}

void iopool_poke(void)
{
	pthread_mutex_lock(&lock);
	pthread_cond_broadcast(&work);
	pthread_mutex_unlock(&lock);
}

int iopool_start(unsigned n)
{
	if (n < 1 || n > 64)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		int r = pthread_create(&threads[i], NULL, worker, NULL);
		if (r) {
			iopool_stop();
			return -r;
		}
		n_threads++;
	}
	return 0;
}

void iopool_submit(struct iopool_queue *q, struct iopool_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&lock);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	busy_jobs++;
	ready_add(q);
	if (can_start(q))
		pthread_cond_signal(&work);
	pthread_mutex_unlock(&lock);
}

bool iopool_shared_now(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	bool r = !q->head && !q->running_excl;
	pthread_mutex_unlock(&lock);
	return r;
}

bool iopool_enter_shared(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	bool r = !q->head && !q->running_excl;
	if (r)
		q->running_shared++;
	pthread_mutex_unlock(&lock);
	return r;
}

void iopool_leave_shared(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	q->running_shared--;
	if (q->head)
		pthread_cond_broadcast(&work);
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
}

bool iopool_idle_now(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	bool r = !q->head && !q->running_excl && !q->running_shared;
	pthread_mutex_unlock(&lock);
	return r;
}

bool iopool_waiting(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	bool r = q->head != NULL;
	pthread_mutex_unlock(&lock);
	return r;
}

void iopool_drain(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	while (q->head || q->running_shared || q->running_excl)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}

static void barrier_run(struct iopool_job *j)
{
	struct iopool_barrier *b = (struct iopool_barrier *)j;
	pthread_mutex_lock(&lock);
	b->running = true;
	pthread_cond_broadcast(&idle);
	while (!b->released)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}

/* The worker is done with the barrier (it read pj after run): a next hold
 * may use it again. */
static void barrier_done(struct iopool_job *j)
{
	struct iopool_barrier *b = (struct iopool_barrier *)j;
	pthread_mutex_lock(&lock);
	b->busy = false;
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
}

void iopool_hold(struct iopool_queue *q)
{
	struct iopool_barrier *b = &q->barrier;
	/* the last hold's worker may not have seen its release yet: set up
	 * anew before, it would wait for this hold's release, and this one
	 * behind it for ever */
	pthread_mutex_lock(&lock);
	while (b->busy)
		pthread_cond_wait(&idle, &lock);
	*b = (struct iopool_barrier){ .pj = { .shared = false, .run = barrier_run, .done = barrier_done },
				      .busy = true };
	pthread_mutex_unlock(&lock);
	iopool_submit(q, &b->pj);
	pthread_mutex_lock(&lock);
	while (!b->running)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}

void iopool_release(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	q->barrier.released = true;
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
}

void iopool_fence(struct iopool_queue *q)
{
	iopool_hold(q);
	iopool_release(q);
}

bool iopool_try_inline(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	bool r = !q->head && !q->running_excl && !q->running_shared;
	if (r)
		q->running_excl = true;
	pthread_mutex_unlock(&lock);
	return r;
}

void iopool_end_inline(struct iopool_queue *q)
{
	pthread_mutex_lock(&lock);
	q->running_excl = false;
	if (q->head)
		pthread_cond_broadcast(&work);
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
}

void iopool_stop(void)
{
	pthread_mutex_lock(&lock);
	while (busy_jobs)
		pthread_cond_wait(&idle, &lock);
	stopping = true;
	pthread_cond_broadcast(&work);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	n_threads = 0;
}
