/* provider-migside.c: a migration's copy, the writes of the pieces a step
 * took (mig_write_pieces: read from the source, written to dest, beside
 * the disk's I/O), run on a thread of the job's own as SCHED_BATCH, and
 * in mirror mode to a file at the lowest priority (nice 19), not on the
 * pool's worker that took the side step from the job's queue.
 *
 * Clients' requests are served by the same pool's workers, and on two
 * CPUs they met the copy at every wake-up: a client's request woken onto
 * a CPU where the copy was in the kernel (`io_submit` of a piece, its
 * `pread`; the kernel here is not preemptible, so the wake-up waits
 * until that system call returns or sleeps) waited for it: traced, some
 * 900 such waits of ~130 us in one migration. At nice 19 the scheduler
 * puts a woken client's thread first; the bench's client p99 during a
 * mirror migration went from 3.6-4.1x its idle p99 to 3.0-3.5x, and the
 * copy, which mostly waits for the device, lost no time.
 *
 * Only the copy's writes: the other side steps (making dest, the flushes
 * of dest under the dest lock, the last step) stay on the worker, at its
 * priority. The copy's writes still hold the dest lock for block-table
 * updates (vhdx_place: a block placed, now and then a log commit with its
 * flushes), and in mirror mode to a file a client's flush and the queue's
 * thread (provider-mirq.c) take that lock too: they may wait for a
 * holder the scheduler puts last, for as long as one such update; so
 * does, late in the dirty passes, a client's write to a piece in flight
 * (provider-mirror.c, wait_flight: one side step at most). A mirrored
 * write in snapshot mode or to an export takes the lock for every write,
 * so there the thread stays at nice 0, as before.
 *
 * The job's own threads (this one, the hasher, the early flusher, the
 * mirror queue's thread, the record writer after the job) run on a part
 * of the CPUs the provider may use: the highest-numbered quarter of
 * them, one CPU at least, when it may use two or more (mig_cpus). A
 * client's request then finds a CPU the copy is not on: woken, the
 * scheduler puts it on an idle CPU when there is one, and with the job on
 * one CPU of two the other mostly is. Left free, the copy's system calls
 * and the hasher moved between both CPUs, and each hop of a request
 * (four: the call, the worker, the reply, the client) was likelier to
 * find them there. On the bench (two CPUs; the job on CPU 1, which also
 * takes the disk's interrupts) the client's p99 during a mirror
 * migration was 2.17-2.80x its idle p99 (median 2.5x) against
 * 2.74-3.22x (median 2.9x) without, in 6 pairs of runs alternating; the
 * copy took no longer. The provider's own affinity is read at each
 * thread's start and, on the copy's thread, at each step, so a provider
 * confined by its cgroup or by taskset keeps the job within that (the
 * other threads keep what the kernel leaves them of their mask then).
 * On one CPU the copy's thread at nice 19 may hold the dest lock while
 * the hasher (nice 0, a chain's migration) has the CPU: the hasher
 * leaves it every 0.16 ms of hashing (mig_breathe), which bounds that
 * wait as before.
 *
 * And while a migration's threads run (mig_cpus_hold: from the job's
 * start to its end, and the record writer's time after it), the pool's
 * workers run on the other CPUs (mig_cpus_worker, the pool's placement
 * hook): a client's request then goes from the provider's loop to a
 * worker on a CPU the job is not on. Left free, the workers were woken
 * on the job's CPU whenever it was idle, as it mostly is (the copy waits
 * for the device), and that wake-up is an interrupt to a halted vCPU
 * here: traced, at the end of each early flush of DEST the vCPU that
 * takes the disk's interrupts answered it 13-25 ms late, once per flush,
 * and every request paid the crossing. With the workers kept off, in 5
 * pairs of runs alternating, the bench's client p99 during a mirror
 * migration was 1.51-3.25x its idle p99 (median 2.39x) against
 * 2.37-3.24x (median 2.85x), and the client made up to 40% more writes
 * in the migration's time. The loop itself is not moved: a client's
 * call wakes it where the client runs. A worker moves with the pool's
 * lock let go (moving waits for the other CPU to take the thread), once
 * per turn of the count; threads a worker makes for the job (a detached
 * close, the AIO context's end) are made on the job's CPUs.
 *
 * The worker waits for the thread (asleep, no CPU), so the pool counts the
 * step as running on it, as before. A lowered priority cannot be raised
 * again without CAP_SYS_NICE, hence a thread of its own rather than the
 * worker lowered for the step. When the thread cannot be made, the worker
 * does the writes itself. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "iopool.h"
#include "provider-migrate.h"

/* The provider's CPUs (*all: the process's, its first thread's, not
 * this thread's, which a thread of the job made by another has narrowed
 * already) and the job's among them (*job); false, *all still read when
 * it could be, when the job has no CPUs of its own. */
static bool job_cpus(cpu_set_t *all, cpu_set_t *job)
{
	CPU_ZERO(job);
	if (sched_getaffinity(getpid(), sizeof *all, all) < 0) {
		CPU_ZERO(all);
		return false; /* (more CPUs than a cpu_set_t holds: left as is) */
	}
	int n = CPU_COUNT(all);
	if (n < 2)
		return false;
	for (int c = CPU_SETSIZE - 1, k = (n + 3) / 4; c >= 0 && k; c--)
		if (CPU_ISSET(c, all)) {
			CPU_SET(c, job);
			k--;
		}
	return true;
}

bool mig_cpus(cpu_set_t *ret)
{
	cpu_set_t all;
	return job_cpus(&all, ret);
}

void mig_cpus_enter(void)
{
	cpu_set_t s;
	if (mig_cpus(&s))
		(void)pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

void mig_thread_begin(const char *name)
{
	mig_cpus_enter(); /* (before the name: a thread found by it is confined already) */
	(void)pthread_setname_np(pthread_self(), name);
}

char *mig_cpus_text(char *buf, size_t size)
{
	cpu_set_t s;
	size_t o = 0;
	if (!size)
		return buf;
	buf[0] = 0;
	if (!mig_cpus(&s))
		return buf;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &s))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &s))
			e++;
		int w = e > c ? snprintf(buf + o, size - o, "%s%d-%d", o ? "," : "", c, e)
			      : snprintf(buf + o, size - o, "%s%d", o ? "," : "", c);
		if (w < 0 || (size_t)w >= size - o) {
			buf[o] = 0; /* (cut at the last whole range) */
			break;
		}
		o += (size_t)w;
		c = e;
	}
	return buf;
}

/* Migrations whose own threads may run now (each held once). */
static _Atomic unsigned holding;

void mig_cpus_hold(bool *held)
{
	if (*held)
		return;
	*held = true;
	if (atomic_fetch_add(&holding, 1) == 0)
		iopool_poke(); /* the idle workers move now, not at their next job */
}

void mig_cpus_release(bool *held)
{
	if (!*held)
		return;
	*held = false;
	if (atomic_fetch_sub(&holding, 1) == 1)
		iopool_poke();
}

static __thread bool off; /* this worker placed for a migration (kept off its CPUs, or not movable) */

bool mig_cpus_worker_due(void)
{
	return (atomic_load_explicit(&holding, memory_order_relaxed) > 0) != off;
}

void mig_cpus_worker(void)
{
	bool want = atomic_load_explicit(&holding, memory_order_relaxed) > 0;
	cpu_set_t all, job;
	/* placed, or not to be: either way not asked again until the count
	 * turns (a worker that cannot move stays where it is) */
	off = want;
	bool own = job_cpus(&all, &job);
	if (!CPU_COUNT(&all) || (want && !own))
		return; /* (its mask unread; one CPU: nowhere else to go) */
	if (want)
		CPU_XOR(&all, &all, &job); /* (job is a part of all: the rest) */
	(void)pthread_setaffinity_np(pthread_self(), sizeof all, &all);
}

static void *sider(void *arg)
{
	struct bjob *b = arg;
	struct mig_sider *s = &b->mig->sd;
	struct sched_param sp = { 0 };
	mig_thread_begin("vdisk-migcopy");
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	if (mig_mirq_on(b->mig)) /* (else every mirrored write takes dlock, which the copy's writes hold) */
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
		/* again at each step: a provider's affinity changed meanwhile
		 * (its cpuset, taskset) resets its threads' masks */
		mig_cpus_enter();
		mig_write_pieces(b);
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

void mig_write_beside(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct mig_sider *s = &m->sd;
	/* the threads the copy's writes hand work to, made here, at the
	 * worker's priority: made by the copy's thread they would inherit
	 * its nice 19, and the hasher holds dlock, which a client's flush
	 * takes */
	if (mig_mirq_on(m)) {
		if (!m->hash_later)
			mig_hash_start(m);
		if (b->other)
			mig_flush_start(&m->fl, vhdx_fd(b->other), m->snapshot || m->hash_later ? -1 : vhdx_fd(b->d->h));
	}
	pthread_mutex_lock(&s->lock);
	if (!s->started)
		s->started = pthread_create(&s->thread, NULL, sider, b) == 0;
	if (!s->started) {
		pthread_mutex_unlock(&s->lock);
		mig_write_pieces(b);
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
