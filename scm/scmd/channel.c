/* channel.c: live channels, their ledger and their revocation.
 *
 * scmd keeps the provider's end of every channel it brokered: watched for
 * hang-up (the client or the provider left), and the means to revoke (an
 * error frame written into it reaches the client, then shutdown() ends
 * the channel for both sides whatever they hold). The broker makes
 * channels (broker.c); policy reload and unregistering revoke them. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "scm-internal/wire.h"
#include "scmd.h"

struct channel *channel_find(struct scmd *d, uint64_t id)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &d->channels)
	{
		struct channel *ch = list_entry(p, struct channel, node);
		if (ch->id == id)
			return ch;
	}
	return NULL;
}

/* The provider's end hung up: the client closed, or the provider shut the
 * channel down. Nothing to tell anyone; forget it. */
static void channel_hup(struct scmd *d, struct watch *w, uint32_t events)
{
	channel_free(d, (struct channel *)((char *)w - offsetof(struct channel, w)));
}

struct channel *channel_new(struct scmd *d, struct service *s, struct endpoint *ep,
			    const struct ucred *cred, int provider_fd, const char *origin)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->id = ++d->next_channel;
	ch->svc = s;
	ch->ep = ep;
	ch->ep_name = strdup(ep->name);
	ch->cred = *cred;
	ch->created = now_usec();
	ch->origin = strdup(origin);
	ch->w = (struct watch){ provider_fd, channel_hup };
	list_init(&ch->node);
	list_init(&ch->svc_node);
	list_init(&ch->ep_node);
	return ch;
}

void channel_link_unwatched(struct scmd *d, struct channel *ch)
{
	list_add(&d->channels, &ch->node);
	list_add(&ch->svc->channels, &ch->svc_node);
	list_add(&ch->ep->channels, &ch->ep_node);
	quota_charge(&ch->ep->used, QUOTA_CHANNELS);
	ch->linked = true;
	ch->watch_deferred = true;
	list_add(d->chan_watch_q.prev, &ch->defer_node);
}

void channel_link(struct scmd *d, struct channel *ch)
{
	list_add(&d->channels, &ch->node);
	list_add(&ch->svc->channels, &ch->svc_node);
	list_add(&ch->ep->channels, &ch->ep_node);
	quota_charge(&ch->ep->used, QUOTA_CHANNELS);
	ch->linked = true;
	/* EPOLLRDHUP only: never read from the provider's end, just notice
	 * when the channel is over. */
	watch_add(d, &ch->w, EPOLLRDHUP);
}

bool channel_watch_queued(struct scmd *d, size_t max)
{
	for (size_t i = 0; i < max && !list_empty(&d->chan_watch_q); i++) {
		struct channel *ch = list_entry(d->chan_watch_q.next, struct channel, defer_node);
		list_del(&ch->defer_node);
		ch->watch_deferred = false;
		/* its fd came from our own copy unchecked (restart-load.c,
		 * fd_check_from_copy): a seqpacket socket, or a bug dropped */
		int type = -1;
		socklen_t l = sizeof(type);
		if (getsockopt(ch->w.fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_SEQPACKET) {
			log_error("restart: channel %llu's provider end (fd %d) is not a seqpacket socket: dropped",
				  (unsigned long long)ch->id, ch->w.fd);
			channel_free(d, ch);
			continue;
		}
		/* level-triggered: a channel that ended meanwhile is seen at once */
		watch_add(d, &ch->w, EPOLLRDHUP);
	}
	return !list_empty(&d->chan_watch_q);
}

void channel_unqueue_watches(struct scmd *d)
{
	while (d->chan_watch_q.next && !list_empty(&d->chan_watch_q)) {
		struct channel *ch = list_entry(d->chan_watch_q.next, struct channel, defer_node);
		list_del(&ch->defer_node);
		ch->watch_deferred = false;
	}
}

void channel_free(struct scmd *d, struct channel *ch)
{
	tokens_drop_channel(d, ch->id);
	if (ch->linked) {
		if (ch->watch_deferred) {
			list_del(&ch->defer_node);
			ch->watch_deferred = false;
		} else
			watch_del(d, &ch->w);
		list_del(&ch->node);
		list_del(&ch->svc_node);
		list_del(&ch->ep_node);
		quota_release(&ch->ep->used, QUOTA_CHANNELS);
	}
	safe_close(ch->w.fd);
	free(ch->ep_name);
	free(ch->origin);
	free(ch->grant_json);
	free(ch);
}

void channel_revoke(struct scmd *d, struct channel *ch, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* Written into the provider's end, this frame arrives at the client,
	 * ahead of the end of stream that shutdown() produces. */
	scm_error *e = scm_error_new(code, "scmd", "channel %llu to '%s' was cut: %s",
				     (unsigned long long)ch->id, ch->svc->name, msg ? msg : "revoked");
	scm_wire_send_error(ch->w.fd, MSG_DONTWAIT, 0, e);
	scm_error_free(e);
	if (ch->svc->ctl.fd >= 0) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "op", json_object_new_string("revoke"));
		json_object_object_add(n, "channel", json_object_new_int64((int64_t)ch->id));
		service_send(d, ch->svc, SCM_FRAME_EVENT, 0, n, NULL, 0);
		json_object_put(n);
	}
	shutdown(ch->w.fd, SHUT_RDWR);
	audit_revoke(d->audit, ch, msg);
	free(msg);
	channel_free(d, ch);
}
