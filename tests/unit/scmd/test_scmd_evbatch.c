/* Unit tests of the main loop's event batch (scm/scmd/evbatch.c) and of
 * watch_del() (scm/scmd/loop.c): a handler that frees objects whose events are
 * still pending in the same epoll batch must not get them called. The
 * second half drives the real epoll set with eventfds, the way scmd's
 * loop does, with handlers that free each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "scmd.h"

static void pure_next_skips_forgotten(void **state)
{
	int a, b, c;
	struct epoll_event ev[4] = { { EPOLLIN, { .ptr = &a } }, { EPOLLOUT, { .ptr = &b } },
				     { EPOLLIN, { .ptr = &c } }, { EPOLLHUP, { .ptr = &b } } };
	struct evbatch bt;
	uint32_t e;

	evbatch_start(&bt, ev, 4);
	assert_ptr_equal(evbatch_next(&bt, &e), &a);
	assert_int_equal(e, EPOLLIN);
	/* a's handler frees b: both of b's later events go */
	assert_int_equal(evbatch_forget(&bt, &b), 2);
	assert_ptr_equal(evbatch_next(&bt, &e), &c);
	/* forgetting the event being handled, or one already handled, is a no-op */
	assert_int_equal(evbatch_forget(&bt, &c), 0);
	assert_int_equal(evbatch_forget(&bt, &a), 0);
	assert_null(evbatch_next(&bt, &e));
	assert_null(evbatch_next(&bt, &e)); /* stays at the end */
}

static void pure_empty_and_error_batches(void **state)
{
	struct evbatch bt;
	uint32_t e;
	evbatch_start(&bt, NULL, 0);
	assert_null(evbatch_next(&bt, &e));
	evbatch_start(&bt, NULL, -1); /* epoll_wait failed (EINTR) */
	assert_null(evbatch_next(&bt, &e));
	assert_int_equal(evbatch_forget(&bt, &bt), 0);
}

/* ---- the real loop: eventfd watches that free each other ---- */

#define N 8
struct obj {
	struct watch w;
	bool freed;
	int calls;
};
static struct obj objs[N];
static int handled;

static void must_not_run(struct scmd *d, struct watch *w, uint32_t events)
{
	fail_msg("a handler ran for a watch freed earlier in the batch");
}

static void obj_free(struct scmd *d, struct obj *o)
{
	watch_del(d, &o->w); /* what every owner's free does */
	close(o->w.fd);
	o->w.fd = -1;
	o->w.fn = must_not_run;
	o->freed = true;
}

/* The first handler of a batch frees every other object: whichever order
 * epoll reports them in, exactly one handler runs. */
static void first_wins(struct scmd *d, struct watch *w, uint32_t events)
{
	struct obj *me = (struct obj *)w;
	me->calls++;
	handled++;
	for (int i = 0; i < N; i++)
		if (&objs[i] != me && !objs[i].freed)
			obj_free(d, &objs[i]);
}

static void loop_once(struct scmd *d)
{
	struct epoll_event evs[64];
	struct evbatch bt;
	struct watch *w;
	uint32_t events;
	int n = epoll_wait(d->epoll_fd, evs, 64, 1000);
	assert_int_equal(n, N); /* all readable: one batch holds every event */
	evbatch_start(&bt, evs, n);
	d->batch = &bt;
	while ((w = evbatch_next(&bt, &events)))
		w->fn(d, w, events);
	d->batch = NULL;
}

static void handler_frees_later_watches(void **state)
{
	struct scmd d = { .epoll_fd = epoll_create1(EPOLL_CLOEXEC) };
	assert_true(d.epoll_fd >= 0);
	for (int i = 0; i < N; i++) {
		objs[i] = (struct obj){ .w = { eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK), first_wins } };
		assert_true(objs[i].w.fd >= 0);
		assert_int_equal(watch_add(&d, &objs[i].w, EPOLLIN), 0);
	}
	loop_once(&d);
	assert_int_equal(handled, 1);
	int alive = 0;
	for (int i = 0; i < N; i++)
		if (!objs[i].freed) {
			alive++;
			assert_int_equal(objs[i].calls, 1);
			close(objs[i].w.fd);
		}
	assert_int_equal(alive, 1);
	close(d.epoll_fd);
}

/* watch_del outside a batch (d->batch NULL) only leaves the epoll set. */
static void watch_del_outside_a_batch(void **state)
{
	struct scmd d = { .epoll_fd = epoll_create1(EPOLL_CLOEXEC) };
	struct obj o = { .w = { eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK), must_not_run } };
	struct epoll_event ev;
	assert_int_equal(watch_add(&d, &o.w, EPOLLIN), 0);
	watch_del(&d, &o.w);
	assert_int_equal(epoll_wait(d.epoll_fd, &ev, 1, 0), 0);
	close(o.w.fd);
	close(d.epoll_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pure_next_skips_forgotten),
		cmocka_unit_test(pure_empty_and_error_batches),
		cmocka_unit_test(handler_frees_later_watches),
		cmocka_unit_test(watch_del_outside_a_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
