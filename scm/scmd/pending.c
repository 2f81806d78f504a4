/* pending.c: connects waiting for their provider's activation.
 *
 * A connect that policy allowed while the provider is not ready waits on
 * its service's list, in arrival order, charged to its endpoint's pending
 * quota (and, through it, to the channel quota) until the provider says
 * ready (broker_flush_pending), fails (broker_fail_pending) or the
 * client's connection closes. */
#include <json-c/json.h>
#include <string.h>

#include "scmd.h"

struct pending_connect *pending_add(struct service *s, struct conn *c, uint32_t call_id, uint64_t t_start,
				    uint64_t t_decided, struct json_object *grant, const char *origin)
{
	struct pending_connect *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	*pc = (struct pending_connect){ .conn = c, .call_id = call_id, .t_start = t_start, .t_decided = t_decided,
					.grant = grant, .origin = strdup(origin) };
	list_add(s->pending.prev, &pc->node);
	quota_charge(&c->ep->used, QUOTA_PENDING);
	c->pending++;
	return pc;
}

void pending_free(struct pending_connect *pc)
{
	list_del(&pc->node);
	quota_release(&pc->conn->ep->used, QUOTA_PENDING);
	pc->conn->pending--;
	json_object_put(pc->grant);
	free(pc->origin);
	free(pc);
}

void pending_drop_conn(struct scmd *d, struct conn *c)
{
	struct list *p, *t;

	if (c->pending == 0)
		return;
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		struct list *q, *u;
		list_for_each_safe(q, u, &s->pending)
		{
			struct pending_connect *pc = list_entry(q, struct pending_connect, node);
			if (pc->conn == c)
				pending_free(pc);
		}
	}
}
