/* evbatch.h: the batch of epoll events the main loop is dispatching.
 *
 * A handler may free objects whose events are still pending later in the
 * same batch (removing an endpoint closes its connections, a revoke frees
 * a channel). Whoever frees an object that owns a watch forgets its events
 * first (watch_del does), so the loop never calls into freed memory. */
#pragma once
#include <stdint.h>
#include <sys/epoll.h>

struct evbatch {
	struct epoll_event *ev;
	int n, i; /* i: the event being dispatched; -1 before the first */
};

void evbatch_start(struct evbatch *b, struct epoll_event *ev, int n);
/* The next event's data.ptr that is still wanted (its events in
 * *ret_events), or NULL at the end of the batch. */
void *evbatch_next(struct evbatch *b, uint32_t *ret_events);
/* Drops the events for ptr not yet dispatched; returns how many. */
int evbatch_forget(struct evbatch *b, const void *ptr);
