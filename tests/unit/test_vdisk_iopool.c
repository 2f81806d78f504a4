/* test_vdisk_iopool.c: the disk queues' fence and hold (iopool.c) against
 * what a read ring does: threads that enter a queue as shared readers on
 * their own, never through it. Two such readers hand over to each other so
 * that one is always inside: a wait for an idle queue (iopool_drain) would
 * never end, which is how a client's rings froze the provider's loop at a
 * PREEMPT AND ABORT; a fence must end all the same. And a hold taken again
 * right after its release, before its worker saw the release, must not
 * wait for ever. No timings: a failure is a hang, which the runner's bound
 * ends. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "iopool.h"

static struct iopool_queue q;
static atomic_int inside;      /* readers in q now */
static atomic_uint handovers;  /* times a reader left with the other inside */
static atomic_bool stop;

/* A reader: in, then out only once the other is in (or q has a job
 * waiting, which keeps new readers out: then it must go). */
static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (!iopool_enter_shared(&q)) {
			sched_yield();
			continue;
		}
		atomic_fetch_add(&inside, 1);
		while (!atomic_load(&stop) && atomic_load(&inside) < 2 && !iopool_waiting(&q))
			sched_yield();
		if (atomic_load(&inside) == 2)
			atomic_fetch_add(&handovers, 1);
		atomic_fetch_sub(&inside, 1);
		iopool_leave_shared(&q);
		/* the other is in now (or going): a turn for it */
		sched_yield();
	}
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	return iopool_start(2) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	iopool_stop();
	return 0;
}

struct counted {
	struct iopool_job pj;
	atomic_int *n;
};

static void count_run(struct iopool_job *j)
{
	atomic_fetch_add(((struct counted *)j)->n, 1);
}

static void count_done(struct iopool_job *j)
{
	(void)j;
}

/* not on the stack: a worker calls done after the queue moved on */
static struct counted jobs[21];

static void test_fence_beside_readers(void **state)
{
	(void)state;
	pthread_t t[2];
	atomic_store(&stop, false);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
	/* the relay runs: a reader has left with the other inside */
	while (atomic_load(&handovers) < 3)
		sched_yield();
	static atomic_int ran;
	for (int round = 0; round < 20; round++) {
		/* every other round, a job queued before the fence: done
		 * when it returns; the others, nothing but the readers */
		if (round % 2) {
			jobs[round] = (struct counted){ .pj = { .shared = false, .run = count_run, .done = count_done },
							.n = &ran };
			iopool_submit(&q, &jobs[round].pj);
		}
		unsigned before = atomic_load(&handovers);
		iopool_fence(&q);
		assert_int_equal(atomic_load(&ran), (round + 1) / 2);
		/* and the readers go on after it */
		while (atomic_load(&handovers) == before)
			sched_yield();
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&inside), 0);
}

static void test_hold_again_at_once(void **state)
{
	(void)state;
	static atomic_int ran;
	for (int i = 0; i < 2000; i++) {
		iopool_hold(&q);
		/* nothing runs beside a hold: a shared reader is refused */
		assert_false(iopool_enter_shared(&q));
		iopool_release(&q);
	}
	/* and the queue still serves a job */
	jobs[20] = (struct counted){ .pj = { .shared = false, .run = count_run, .done = count_done }, .n = &ran };
	iopool_submit(&q, &jobs[20].pj);
	iopool_fence(&q);
	assert_int_equal(atomic_load(&ran), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fence_beside_readers),
		cmocka_unit_test(test_hold_again_at_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
