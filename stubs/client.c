/* client.c: the client side of libscm.
 *
 * scm_connect_at() asks scmd, through the caller's endpoint, for a channel
 * to a service and receives one end of a socketpair whose other end the
 * provider holds. Calls then go straight to the provider; scmd is not on
 * the data path. A channel that scmd revokes, or whose provider goes away,
 * becomes "dead": the reason (an observation chain) is kept and every call
 * made after that fails with it. A synchronous call waits at most the
 * channel's timeout (25 s by default, as sd-bus): a hung provider costs its
 * caller an error that names the service and method, never a hang. */
#include <errno.h>
#include <limits.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/un.h>

#include "scm/macro.h"
#include "scm-internal/wire.h"
#include "scm-internal/error.h"

#define CONNECT_TIMEOUT_MS 30000 /* scmd answers sooner: activation has its own timeout */

struct pending {
	uint32_t call_id;
	scm_reply_fn cb;
	void *userdata;
	uint64_t sent_us; /* CLOCK_MONOTONIC, before it was sent */
};

struct scm_channel {
	int fd;
	uint64_t id;
	char *interface;
	char *service; /* as asked for at connect; NULL for a wrapped fd */
	int timeout_ms; /* > 0, or SCM_TIMEOUT_INFINITE */
	uint32_t next_call;
	struct pending *pending;
	size_t n_pending, cap_pending;
	scm_error *dead; /* why the channel is gone, once it is */
	unsigned recoveries; /* "provider.recovering" events seen */
	uint64_t recovering_at_us; /* the last one's "dead_at_us"; 0: none, or it had none */
};

static scm_error *recovering_error(const scm_channel *ch)
{
	return scm_error_new(SCM_E_PROVIDER_GONE, "libscm/client",
			     "the provider of '%s' crashed during the call: it may or may not have taken effect; the "
			     "channel goes on with a new provider process",
			     ch->service ? ch->service : ch->interface ? ch->interface : "?");
}

static int fail_dead(scm_channel *ch, scm_error **ret_err)
{
	scm_error_push(ret_err, scm_error_copy(ch->dead));
	return ch->dead->code;
}

/* The reason a dead channel reports when no better one could be built (out
 * of memory): ch->dead is never NULL once the channel is gone, so callers
 * may read its code and callbacks always get an error. */
static scm_error dead_fallback = { SCM_E_PROVIDER_GONE, (char *)"the channel is gone",
				   (char *)"libscm/client", NULL };

/* Marks the channel gone with reason e (taken) unless it already is, and
 * fails every async call still waiting. */
static void channel_kill(scm_channel *ch, scm_error *e)
{
	if (ch->dead)
		scm_error_free(e);
	else
		ch->dead = e ? e : &dead_fallback;
	while (ch->n_pending > 0) {
		struct pending p = ch->pending[--ch->n_pending];
		p.cb(ch, NULL, ch->dead, p.userdata);
	}
}

/* The default call timeout: $SCM_CALL_TIMEOUT_MS when it is a positive
 * number of milliseconds, or "infinity"/-1; else 25 s. A malformed value is
 * ignored rather than fatal: library code does not exit, and the default
 * is a safe reading of it. */
static int default_timeout(void)
{
	const char *s = getenv("SCM_CALL_TIMEOUT_MS");
	char *end;
	if (!s || !*s)
		return SCM_CALL_TIMEOUT_DEFAULT_MS;
	if (!strcmp(s, "infinity") || !strcmp(s, "-1"))
		return SCM_TIMEOUT_INFINITE;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return SCM_CALL_TIMEOUT_DEFAULT_MS;
	return (int)v;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t now_ms(void)
{
	return (int64_t)(now_us() / 1000u);
}

/* Milliseconds to poll until deadline (-1: none); 0 once it has passed. */
static int remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* The socket's SO_RCVTIMEO follows the channel's timeout, so that a
 * synchronous call waits in one blocking recvmsg (one system call, as
 * before timeouts) and wakes by itself when the time is up. */
static void sock_timeout(scm_channel *ch)
{
	struct timeval tv = { 0, 0 };
	if (ch->timeout_ms > 0) {
		tv.tv_sec = ch->timeout_ms / 1000;
		tv.tv_usec = (ch->timeout_ms % 1000) * 1000;
	}
	if (ch->fd >= 0)
		(void)setsockopt(ch->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

void scm_channel_set_timeout(scm_channel *ch, int timeout_ms)
{
	ch->timeout_ms = timeout_ms == 0 ? default_timeout()
			 : timeout_ms < 0 ? SCM_TIMEOUT_INFINITE
					  : timeout_ms;
	sock_timeout(ch);
}

int scm_channel_get_timeout(const scm_channel *ch)
{
	return ch->timeout_ms;
}

static int open_endpoint(const char *path, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_MS / 1000 };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "endpoint path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		if (r == -ENOENT || r == -ECONNREFUSED)
			return scm_fail(ret_err, r, "no scmd endpoint at %s (%m); is scmd running, and is $SCM_ENDPOINT right?",
					path);
		return scm_fail(ret_err, r, "connect to endpoint %s: %m", path);
	}
	/* scmd always answers a connect; this only guards against a wedged daemon. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return TAKE_FD(fd);
}

int scm_connect_at(const char *endpoint, const char *service, scm_channel **ret,
		   scm_error **ret_err)
{
	_cleanup_close_ int fd = -1;
	scm_message *reply = NULL;
	json_object *req, *v;
	int r;

	if (!service || !*service || strlen(service) > SCM_NAME_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "service name must be 1 to %d bytes",
				SCM_NAME_MAX);
	fd = open_endpoint(endpoint, ret_err);
	if (fd < 0)
		return fd;

	req = json_object_new_object();
	json_object_object_add(req, "service", json_object_new_string(service));
	r = scm_wire_send_json(fd, 0, SCM_FRAME_CALL, 0, 1, 1 /* connect */, req, NULL, 0, NULL, 0);
	json_object_put(req);
	if (r < 0)
		return scm_fail(ret_err, r, "sending connect request to %s: %s", endpoint,
				strerror(-r));

	r = scm_wire_recv(fd, 0, &reply, ret_err);
	if (r == 1 || r == -ECONNRESET)
		return scm_fail(ret_err, SCM_E_PROTOCOL, "scmd closed the endpoint without answering");
	if (r == -EAGAIN)
		return scm_fail(ret_err, SCM_E_TIMEOUT, "scmd did not answer within %d ms",
				CONNECT_TIMEOUT_MS);
	if (r != 0)
		return scm_fail(ret_err, r, "reading connect reply from %s", endpoint);

	if (reply->type == SCM_FRAME_ERROR) {
		scm_error *e = scm_message_error(reply);
		r = e ? e->code : SCM_E_PROTOCOL;
		scm_error_push(ret_err, e);
		scm_message_free(reply);
		return r;
	}
	if (reply->type != SCM_FRAME_REPLY || reply->n_fds != 1 || !reply->json) {
		scm_message_free(reply);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "connect reply has no channel");
	}

	scm_channel *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		scm_message_free(reply);
		return -ENOMEM;
	}
	ch->fd = scm_message_steal_fd(reply, 0);
	ch->next_call = 1;
	ch->timeout_ms = default_timeout();
	ch->service = strdup(service);
	sock_timeout(ch);
	if (json_object_object_get_ex(reply->json, "channel", &v))
		ch->id = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(reply->json, "interface", &v) &&
	    json_object_is_type(v, json_type_string))
		ch->interface = strdup(json_object_get_string(v));
	scm_message_free(reply);
	*ret = ch;
	return 0;
}

int scm_channel_from_fd(int fd, uint64_t id, const char *interface, scm_channel **ret)
{
	scm_channel *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->fd = fd;
	ch->id = id;
	ch->next_call = 1;
	ch->timeout_ms = default_timeout();
	sock_timeout(ch);
	ch->interface = interface ? strdup(interface) : NULL;
	*ret = ch;
	return 0;
}

int scm_connect(const char *service, scm_channel **ret, scm_error **ret_err)
{
	const char *ep = getenv("SCM_ENDPOINT");
	return scm_connect_at(ep && *ep ? ep : SCM_DEFAULT_ENDPOINT, service, ret, ret_err);
}

scm_channel *scm_channel_free(scm_channel *ch)
{
	if (!ch)
		return NULL;
	safe_close(ch->fd);
	ch->fd = -1;
	channel_kill(ch, scm_error_new(SCM_E_INVALID, NULL, "channel was closed by its owner"));
	if (ch->dead != &dead_fallback)
		scm_error_free(ch->dead);
	free(ch->pending);
	free(ch->interface);
	free(ch->service);
	free(ch);
	return NULL;
}

int scm_channel_fd(const scm_channel *ch)
{
	return ch->fd;
}
uint64_t scm_channel_id(const scm_channel *ch)
{
	return ch->id;
}
const char *scm_channel_interface(const scm_channel *ch)
{
	return ch->interface;
}
size_t scm_channel_pending(const scm_channel *ch)
{
	return ch->n_pending;
}

static uint32_t next_call_id(scm_channel *ch)
{
	uint32_t id = ch->next_call++;
	if (ch->next_call == 0)
		ch->next_call = 1; /* 0 is for channel-level events */
	return id;
}

/* Whether a call sent at sent_us may have been read by the process that
 * crashed: scmd says when it found that process dead ("dead_at_us", on
 * our CLOCK_MONOTONIC, time namespace and all; absent when scmd could not
 * tell our namespace's offset); a call sent
 * later waited in the socket for the new process, which answers it.
 * Without it, every call in progress may have been. */
static bool maybe_lost(const scm_channel *ch, uint64_t sent_us)
{
	return !ch->recovering_at_us || sent_us <= ch->recovering_at_us;
}

/* scmd says the provider crashed and a new process takes the channel over
 * (docs/handover.md, "A provider that crashes"): the channel lives on, the
 * calls the dead process may have read fail (it may or may not have done
 * them; a reply the new one sends to one of them is dropped: nobody
 * waits), those sent after it was found dead wait for the new one. */
static void provider_recovering(scm_channel *ch, json_object *ev)
{
	json_object *at;
	ch->recoveries++;
	ch->recovering_at_us = json_object_object_get_ex(ev, "dead_at_us", &at) &&
					       json_object_is_type(at, json_type_int) && json_object_get_int64(at) > 0
				       ? (uint64_t)json_object_get_int64(at)
				       : 0;
	/* the calls that fail leave the array before any callback runs: a
	 * callback that calls again (the new process serves it) adds to it */
	size_t n = 0, kept = 0;
	for (size_t i = 0; i < ch->n_pending; i++)
		n += maybe_lost(ch, ch->pending[i].sent_us);
	if (n == 0)
		return;
	struct pending *lost = n < ch->n_pending ? malloc(n * sizeof(*lost)) : ch->pending;
	if (!lost) { /* out of memory: all of them, as without the time */
		lost = ch->pending;
		n = ch->n_pending;
	}
	if (lost == ch->pending) {
		ch->pending = NULL;
		ch->cap_pending = 0;
	} else {
		for (size_t i = 0, k = 0; i < ch->n_pending; i++)
			if (maybe_lost(ch, ch->pending[i].sent_us))
				lost[k++] = ch->pending[i];
			else
				ch->pending[kept++] = ch->pending[i];
	}
	ch->n_pending = kept;
	while (n > 0) {
		struct pending p = lost[--n];
		scm_error *e = recovering_error(ch);
		p.cb(ch, NULL, e ? e : &dead_fallback, p.userdata);
		scm_error_free(e);
	}
	free(lost);
}

/* Handles one frame that is not the reply a synchronous caller waits for.
 * Takes m. */
static void handle_frame(scm_channel *ch, scm_message *m)
{
	if (m->call_id == 0) {
		/* Channel-level: scmd's revocation notice or the provider's reason
		 * for closing. The end of stream follows. */
		if (m->type == SCM_FRAME_ERROR)
			channel_kill(ch, scm_message_error(m));
		else if (m->type == SCM_FRAME_EVENT && m->json &&
			 strcmp(json_object_get_string(json_object_object_get(m->json, "op")) ?: "",
				"provider.recovering") == 0)
			provider_recovering(ch, m->json);
		scm_message_free(m);
		return;
	}
	for (size_t i = 0; i < ch->n_pending; i++) {
		if (ch->pending[i].call_id != m->call_id)
			continue;
		struct pending p = ch->pending[i];
		ch->pending[i] = ch->pending[--ch->n_pending];
		if (m->type == SCM_FRAME_ERROR) {
			scm_error *e = scm_message_error(m);
			p.cb(ch, NULL, e ? e : &dead_fallback, p.userdata);
			scm_error_free(e);
		} else
			p.cb(ch, m, NULL, p.userdata);
		break;
	}
	scm_message_free(m);
}

/* Reads one frame (blocking or not). Returns 0 with *ret, -EAGAIN, or the
 * channel's death code once it is gone. */
static int read_frame(scm_channel *ch, int msg_flags, scm_message **ret)
{
	scm_error *e = NULL;
	int r;

	if (ch->dead)
		return ch->dead->code;
	r = scm_wire_recv(ch->fd, msg_flags, ret, &e);
	if (r == -ECONNRESET) {
		/* The provider's end closed with our frames unread in it: the
		 * kernel reports that before the frames still queued for us
		 * (scmd's revocation notice among them), and only once. */
		scm_message *m = NULL;
		while (scm_wire_recv(ch->fd, MSG_DONTWAIT, &m, NULL) == 0) {
			if (m->call_id == 0 && m->type == SCM_FRAME_ERROR) {
				channel_kill(ch, scm_message_error(m));
				scm_message_free(m);
				return ch->dead->code;
			}
			handle_frame(ch, m);
			m = NULL;
		}
	}
	if (r == 0 || r == -EAGAIN)
		return r;
	if (r == 1 || r == -ECONNRESET)
		e = scm_error_new(SCM_E_PROVIDER_GONE, "libscm/client",
				  "the provider closed the channel");
	else if (r < 0)
		e = scm_error_new(r, "libscm/client", "reading from channel: %s", strerror(-r));
	else
		e = scm_error_wrap(e, r, "libscm/client", "provider sent a malformed frame");
	channel_kill(ch, e);
	return ch->dead->code;
}

/* What a timeout error calls the call: "vdisk.read" or "vdisk method 4". */
static void call_name(const scm_channel *ch, uint32_t method, const char *name, char *buf,
		      size_t size)
{
	const char *iface = ch->interface ? ch->interface : "?";
	if (name)
		snprintf(buf, size, "%s.%s", iface, name);
	else
		snprintf(buf, size, "%s method %u", iface, method);
}

static int fail_timeout(const scm_channel *ch, uint32_t method, const char *name, int timeout_ms,
			bool sending, scm_error **ret_err)
{
	char what[2 * SCM_NAME_MAX + 32];
	call_name(ch, method, name, what, sizeof what);
	return scm_fail(ret_err, SCM_E_TIMEOUT,
			"%s: service '%s' did not %s within %d ms (the call timeout; $SCM_CALL_TIMEOUT_MS or scm_channel_set_timeout() change it)",
			what, ch->service ? ch->service : ch->interface ? ch->interface : "?",
			sending ? "take the call" : "answer", timeout_ms);
}

static int send_call(scm_channel *ch, uint32_t id, uint32_t method, uint16_t flags,
		     struct json_object *args, const void *bin, size_t bin_len, const int *fds,
		     size_t n_fds, int64_t deadline, scm_error **ret_err)
{
	int r;

	if (ch->dead)
		return fail_dead(ch, ret_err);
	/* Never block in send while replies wait unread: a provider whose
	 * replies do not fit stops reading, and both would wait forever. So
	 * while the provider has no room, take in what it sent. */
	for (;;) {
		r = scm_wire_send_json(ch->fd, MSG_DONTWAIT, SCM_FRAME_CALL, flags, id, method, args, bin,
				       bin_len, fds, n_fds);
		if (r != -EAGAIN)
			break;
		struct pollfd pfd = { ch->fd, POLLIN | POLLOUT, 0 };
		int wait = remaining_ms(deadline);
		if (wait == 0)
			return -ETIMEDOUT; /* the caller names the call */
		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			break;
		if (pfd.revents & POLLIN) {
			scm_message *m;
			if (read_frame(ch, MSG_DONTWAIT, &m) == 0)
				handle_frame(ch, m);
			if (ch->dead)
				return fail_dead(ch, ret_err);
		}
	}
	if (r == -EMSGSIZE)
		return scm_fail(ret_err, SCM_E_INVALID,
				"call is over the frame limits (%u bytes, %u fds); pass bulk data in a memfd",
				SCM_FRAME_MAX, SCM_FDS_MAX);
	/* A bad fd to pass (EBADF), too many fds in flight (ETOOMANYREFS) or a
	 * short-lived shortage (ENOMEM, ENOBUFS) is this call's failure, not
	 * the channel's: the channel stays usable. */
	if (r == -EBADF || r == -EINVAL || r == -ETOOMANYREFS || r == -ENOMEM || r == -ENOBUFS)
		return scm_fail(ret_err, r, "sending the call: %s", strerror(-r));
	if (r < 0) {
		/* The peer is gone; whatever it said last (a revocation notice)
		 * is still queued for us, and is the better explanation. */
		scm_message *m;
		while (!ch->dead && read_frame(ch, MSG_DONTWAIT, &m) == 0)
			handle_frame(ch, m);
		if (!ch->dead)
			channel_kill(ch, scm_error_new(SCM_E_PROVIDER_GONE, "libscm/client",
						       "sending on channel: %s", strerror(-r)));
		return fail_dead(ch, ret_err);
	}
	return 0;
}

int scm_call_sync(scm_channel *ch, uint32_t method, struct json_object *args, const void *bin,
	     size_t bin_len, const int *fds, size_t n_fds, scm_message **ret_reply,
	     scm_error **ret_err)
{
	return scm_call_sync_opts(ch, method, NULL, args, bin, bin_len, fds, n_fds, ret_reply, ret_err);
}

int scm_call_sync_opts(scm_channel *ch, uint32_t method, const scm_call_opts *opts,
		       struct json_object *args, const void *bin, size_t bin_len, const int *fds,
		       size_t n_fds, scm_message **ret_reply, scm_error **ret_err)
{
	uint32_t id = next_call_id(ch);
	const char *name = opts ? opts->method_name : NULL;
	int timeout = opts && opts->timeout_ms ? opts->timeout_ms : ch->timeout_ms;
	if (timeout < 0)
		timeout = SCM_TIMEOUT_INFINITE;
	/* nothing is read before the call goes: a "provider.recovering"
	 * queued meanwhile is read while it waits, and says whether the call
	 * went after the crash (maybe_lost) */
	uint64_t sent_us = now_us();
	int64_t deadline = timeout < 0 ? -1 : (int64_t)(sent_us / 1000u) + timeout;
	unsigned recoveries = ch->recoveries;
	scm_message *m;
	int r;

	r = send_call(ch, id, method, 0, args, bin, bin_len, fds, n_fds, deadline, ret_err);
	if (r == -ETIMEDOUT)
		return fail_timeout(ch, method, name, timeout, true, ret_err);
	if (r != 0)
		return r;
	for (;;) {
		/* A blocking recv when the socket's SO_RCVTIMEO is this call's
		 * timeout (it then ends by itself), else a poll with what is left
		 * of it: a provider that never answers costs only that. A reply
		 * that comes after we gave up has an id nobody waits for and is
		 * dropped by handle_frame(). */
		r = read_frame(ch, timeout == ch->timeout_ms ? 0 : MSG_DONTWAIT, &m);
		if (r == -EAGAIN) {
			struct pollfd pfd = { ch->fd, POLLIN, 0 };
			int wait = remaining_ms(deadline);
			if (wait == 0)
				return fail_timeout(ch, method, name, timeout, false, ret_err);
			if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
				return scm_fail(ret_err, -errno, "waiting for the reply: %m");
			continue;
		}
		if (r != 0)
			return fail_dead(ch, ret_err);
		if (m->call_id != id) {
			handle_frame(ch, m);
			if (ch->recoveries != recoveries) {
				recoveries = ch->recoveries;
				if (maybe_lost(ch, sent_us)) {
					scm_error_push(ret_err, recovering_error(ch));
					return SCM_E_PROVIDER_GONE;
				}
			}
			continue;
		}
		if (m->type == SCM_FRAME_ERROR) {
			scm_error *e = scm_message_error(m);
			scm_message_free(m);
			r = e ? e->code : SCM_E_PROTOCOL;
			scm_error_push(ret_err, e);
			return r;
		}
		if (ret_reply)
			*ret_reply = m;
		else
			scm_message_free(m);
		return 0;
	}
}

int scm_call_async(scm_channel *ch, uint32_t method, struct json_object *args, const void *bin,
		   size_t bin_len, const int *fds, size_t n_fds, scm_reply_fn cb, void *userdata,
		   scm_error **ret_err)
{
	uint32_t id = next_call_id(ch);
	uint64_t sent_us = now_us();
	int r;

	if (ch->n_pending == ch->cap_pending) {
		size_t cap = ch->cap_pending ? ch->cap_pending * 2 : 8;
		struct pending *p = reallocarray(ch->pending, cap, sizeof(*p));
		if (!p)
			return -ENOMEM;
		ch->pending = p;
		ch->cap_pending = cap;
	}
	r = send_call(ch, id, method, cb ? 0 : SCM_FLAG_NO_REPLY, args, bin, bin_len, fds, n_fds,
		      ch->timeout_ms < 0 ? -1 : (int64_t)(sent_us / 1000u) + ch->timeout_ms, ret_err);
	if (r == -ETIMEDOUT)
		return fail_timeout(ch, method, NULL, ch->timeout_ms, true, ret_err);
	if (r != 0)
		return r;
	if (cb)
		ch->pending[ch->n_pending++] = (struct pending){ id, cb, userdata, sent_us };
	return 0;
}

int scm_channel_dispatch(scm_channel *ch, scm_error **ret_err)
{
	scm_message *m;
	int r;

	while ((r = read_frame(ch, MSG_DONTWAIT, &m)) == 0)
		handle_frame(ch, m);
	if (r == -EAGAIN)
		return 0;
	return fail_dead(ch, ret_err);
}
