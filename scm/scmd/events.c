/* events.c: scmd's live feed of what happens ("events.subscribe").
 *
 * Every record of the audit trail (audit.c: connect decisions, containers
 * started, paused, updated, stopped and ended, services registered and
 * restarted, policy reloads, scmd's own restarts) is also sent, as it is
 * written, to each control connection that subscribed, as an EVENT frame
 * whose JSON is the record. `scmctl events` prints them and the D-Bus
 * manager turns them into signals, instead of asking scmd over and over.
 *
 * A subscribed connection carries events only. It leaves the host
 * identity's ledger for one of its own (d->events), so subscribers never
 * take the queue space control replies need: at most EVENTS_SUBS_MAX of
 * them, each holding at most EVENTS_QUEUE_MAX bytes unread. A reader that
 * falls further behind is dropped (logged), as dbus-broker drops a peer
 * that does not read: the feed never grows without bound and never
 * blocks scmd. A record is never half sent; a dropped reader sees the
 * connection end and may read the rest in the audit trail. */
#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "scmd.h"

#define EVENTS_PATTERNS_MAX 16
#define EVENTS_PATTERN_LEN 64

struct event_sub {
	struct list node; /* in d->event_subs */
	struct conn *conn;
	uint32_t call_id; /* the subscribe call: every event frame carries it */
	size_t n_patterns;
	char *patterns[EVENTS_PATTERNS_MAX]; /* fnmatch() on the event name; none: all */
};

static bool wanted(const struct event_sub *s, const char *event)
{
	if (s->n_patterns == 0)
		return true;
	for (size_t i = 0; i < s->n_patterns; i++)
		if (fnmatch(s->patterns[i], event, 0) == 0)
			return true;
	return false;
}

static void sub_free(struct event_sub *s)
{
	for (size_t i = 0; i < s->n_patterns; i++)
		free(s->patterns[i]);
	free(s);
}

/* audit's tap: runs wherever a record is written. A subscriber over its
 * share is killed (closed by the main loop), never closed here. */
void events_tap(void *userdata, const char *event, const char *json, size_t len)
{
	struct scmd *d = userdata;
	struct list *p, *q;
	list_for_each_safe(p, q, &d->event_subs)
	{
		struct event_sub *s = list_entry(p, struct event_sub, node);
		if (s->conn->dead || !wanted(s, event))
			continue;
		if (s->conn->outq.bytes + len > EVENTS_QUEUE_MAX) {
			log_warning("dropped an event subscriber (uid %u pid %d): %zu bytes of events unread",
				    s->conn->cred.uid, s->conn->cred.pid, s->conn->outq.bytes);
			conn_kill(d, s->conn);
			continue;
		}
		(void)conn_send_raw(d, s->conn, SCM_FRAME_EVENT, s->call_id, json, len);
	}
}

static int parse_patterns(struct event_sub *s, json_object *a, scm_error **ret_err)
{
	json_object *v;
	if (!a || !json_object_object_get_ex(a, "events", &v))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return scm_fail(ret_err, SCM_E_INVALID, "/events: expected an array of event name patterns");
	size_t n = json_object_array_length(v);
	if (n > EVENTS_PATTERNS_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "/events: %zu patterns, at most %d", n, EVENTS_PATTERNS_MAX);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *pat = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
		if (!pat || !*pat || strlen(pat) > EVENTS_PATTERN_LEN)
			return scm_fail(ret_err, SCM_E_INVALID,
					"/events/%zu: expected a pattern of 1-%d characters (e.g. \"container-*\")", i,
					EVENTS_PATTERN_LEN);
		if (!(s->patterns[s->n_patterns] = strdup(pat)))
			return scm_fail(ret_err, -ENOMEM, "out of memory");
		s->n_patterns++;
	}
	return 0;
}

void events_subscribe(struct scmd *d, struct conn *c, uint32_t id, json_object *a)
{
	scm_error *e = NULL;
	struct event_sub *s = calloc(1, sizeof(*s));
	if (!s) {
		conn_reply_fail(d, c, id, -ENOMEM, "out of memory");
		return;
	}
	if (parse_patterns(s, a, &e) != 0)
		goto fail;
	if (!quota_room(&d->events.used, &d->events.limit, QUOTA_CONNS)) {
		scm_fail(&e, SCM_E_QUOTA, "%u event subscribers already: the most scmd feeds", d->events.limit.conns);
		goto fail;
	}
	/* from the host's ledger to the feed's, with what it has queued */
	size_t queued = c->outq.bytes;
	quota_release_bytes(&c->ep->used, queued);
	quota_release(&c->ep->used, QUOTA_CONNS);
	list_del(&c->node);
	c->ep = &d->events;
	list_add(&d->events.conns, &c->node);
	quota_charge(&d->events.used, QUOTA_CONNS);
	(void)quota_charge_bytes(&d->events.used, &d->events.limit, queued);
	s->conn = c;
	s->call_id = id;
	c->sub = s;
	list_add(d->event_subs.prev, &s->node);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "subscribed", json_object_new_boolean(true));
	json_object_object_add(o, "queue_max", json_object_new_int(EVENTS_QUEUE_MAX));
	conn_send(d, c, SCM_FRAME_REPLY, id, o, NULL, 0);
	json_object_put(o);
	return;
fail:
	conn_send_error(d, c, id, e);
	scm_error_free(e);
	sub_free(s);
}

void events_conn_gone(struct scmd *d, struct conn *c)
{
	(void)d;
	if (!c->sub)
		return;
	list_del(&c->sub->node);
	sub_free(c->sub);
	c->sub = NULL;
}

void events_init(struct scmd *d)
{
	list_init(&d->event_subs);
	d->events = (struct endpoint){ .name = "events",
				       .limit = { .conns = EVENTS_SUBS_MAX, .queued = EVENTS_SUBS_MAX * EVENTS_QUEUE_MAX } };
	list_init(&d->events.conns);
	list_init(&d->events.channels);
}
