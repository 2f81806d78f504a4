/* provider-migside.c: a migration's side steps (mig_side) run on a thread
 * of the job's own, at the lowest priority (nice 19, SCHED_BATCH), not on
 * the pool's worker that took them from the job's queue.
 *
 * The side steps are the copy's reads of the source and writes to dest
 * beside the disk's I/O (provider-migpiece.c), its flushes of dest, the
 * making of dest and the last step. Clients' requests are served by the
 * same pool's workers, and on two CPUs they met the copy's threads at
 * every wake-up: a client's request woken onto a CPU where a side step was
 * in the kernel (the kernel here is not preemptible: the wake-up waits
 * until that system call returns or sleeps) waited for it. At nice 19 the
 * scheduler puts a woken client's request first; the bench's client p99
 * during a mirror migration went from 3.6-4.1x its idle p99 to 3.0-3.5x,
 * and the copy, which mostly waits for the device, lost no time.
 *
 * A priority that low needs no lock of ours to be taken by a client while
 * a side step holds it (that would make the client wait for a thread the
 * scheduler puts last): a mirror migration to a file queues its clients'
 * writes for dest (provider-mirq.c), and they take no lock the side steps
 * hold. Snapshot mode's and an export's mirrored writes still take the
 * dest lock, which side steps hold for block-table updates: there the
 * thread stays at nice 0 (SCHED_BATCH, as the side steps' writes ran
 * before).
 *
 * The worker waits for the thread (asleep, no CPU), so the pool counts the
 * step as running on it, as before. Its priority cannot be taken back
 * without CAP_SYS_NICE, hence a thread of its own rather than a worker
 * lowered for the step. When the thread cannot be made, the worker runs
 * the step itself. */
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "provider-migrate.h"

static void *sider(void *arg)
{
	struct bjob *b = arg;
	struct mig_sider *s = &b->mig->sd;
	struct sched_param sp = { 0 };
	(void)pthread_setname_np(pthread_self(), "vdisk-migside");
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	if (mig_mirq_on(b->mig)) /* (else clients' mirrored writes take dlock, which side steps hold) */
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	/* its breathers (mig_breathe): 20 us, not 20 to 70 */
	(void)prctl(PR_SET_TIMERSLACK, 1ul);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->want && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->want)
			break;
		pthread_mutex_unlock(&s->lock);
		mig_side(b);
		pthread_mutex_lock(&s->lock);
		s->want = false;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void mig_sider_setup(struct mig_sider *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

void mig_side_run(struct bjob *b)
{
	struct mig_sider *s = &b->mig->sd;
	pthread_mutex_lock(&s->lock);
	if (!s->started)
		s->started = pthread_create(&s->thread, NULL, sider, b) == 0;
	if (!s->started) {
		pthread_mutex_unlock(&s->lock);
		mig_side(b);
		return;
	}
	s->want = true;
	pthread_cond_broadcast(&s->cond);
	while (s->want)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void mig_sider_free(struct bmig *m)
{
	struct mig_sider *s = &m->sd;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}
