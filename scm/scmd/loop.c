/* loop.c: the epoll set, timers and latency statistics. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "scmd.h"

int watch_add(struct scmd *d, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	return epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

int watch_mod(struct scmd *d, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	return epoll_ctl(d->epoll_fd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void watch_del(struct scmd *d, struct watch *w)
{
	/* A handler may free objects whose events are still pending later in
	 * this batch (endpoint removal closes its conns, a revoke frees a
	 * channel): drop those events, or the loop calls into freed memory. */
	if (d->batch)
		evbatch_forget(d->batch, w);
	if (w->fd >= 0)
		epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
}

int timer_arm(struct watch *w, uint64_t ms)
{
	struct itimerspec its = { .it_value = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L } };
	return timerfd_settime(w->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#define ACCEPT_PAUSE_MS 100

static void listeners(struct scmd *d, bool on)
{
	if (on)
		watch_add(d, &d->control, EPOLLIN); /* EEXIST for one added meanwhile: fine */
	else
		watch_del(d, &d->control);
	for (struct list *p = d->endpoints.next; p != &d->endpoints; p = p->next) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		if (on)
			watch_add(d, &ep->listen, EPOLLIN);
		else
			watch_del(d, &ep->listen);
	}
}

void accept_pause(struct scmd *d)
{
	if (d->accept_paused)
		return;
	d->accept_paused = true;
	listeners(d, false);
	timer_arm(&d->accept_timer, ACCEPT_PAUSE_MS);
	static uint64_t last_log;
	if (now_usec() - last_log > 10 * 1000000ull) {
		last_log = now_usec();
		log_warning("out of file descriptors: pausing accept() for %d ms at a time", ACCEPT_PAUSE_MS);
	}
}

static void accept_resume(struct scmd *d, struct watch *w, uint32_t events)
{
	uint64_t ticks;
	if (read(w->fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	d->accept_paused = false;
	listeners(d, true);
}

int accept_timer_init(struct scmd *d)
{
	d->accept_timer = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), accept_resume };
	if (d->accept_timer.fd < 0)
		return -errno;
	return watch_add(d, &d->accept_timer, EPOLLIN);
}

void latency_add(struct latency *l, uint64_t us)
{
	l->us[l->next] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	l->next = (l->next + 1) % LAT_SAMPLES;
	if (l->n < LAT_SAMPLES)
		l->n++;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* {"n":N,"median_us":..,"p99_us":..,"max_us":..} over the last samples. */
struct json_object *latency_json(const struct latency *l)
{
	json_object *o = json_object_new_object();
	uint32_t s[LAT_SAMPLES];

	json_object_object_add(o, "n", json_object_new_int64((int64_t)l->n));
	if (l->n == 0)
		return o;
	memcpy(s, l->us, l->n * sizeof(s[0]));
	qsort(s, l->n, sizeof(s[0]), cmp_u32);
	json_object_object_add(o, "median_us", json_object_new_int64(s[l->n / 2]));
	json_object_object_add(o, "p99_us", json_object_new_int64(s[(l->n * 99) / 100]));
	json_object_object_add(o, "max_us", json_object_new_int64(s[l->n - 1]));
	return o;
}
