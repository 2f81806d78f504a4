/* evbatch.c: see evbatch.h. */
#include <stddef.h>

#include "evbatch.h"

void evbatch_start(struct evbatch *b, struct epoll_event *ev, int n)
{
	*b = (struct evbatch){ ev, n < 0 ? 0 : n, -1 };
}

void *evbatch_next(struct evbatch *b, uint32_t *ret_events)
{
	while (++b->i < b->n) {
		if (b->ev[b->i].data.ptr) {
			*ret_events = b->ev[b->i].events;
			return b->ev[b->i].data.ptr;
		}
	}
	return NULL;
}

int evbatch_forget(struct evbatch *b, const void *ptr)
{
	int dropped = 0;
	/* the current event is being handled: only later ones matter */
	for (int i = b->i + 1; i < b->n; i++)
		if (b->ev[i].data.ptr == ptr) {
			b->ev[i].data.ptr = NULL;
			dropped++;
		}
	return dropped;
}
