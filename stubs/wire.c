/* wire.c: encoding and decoding frames, and moving them with their fds.
 *
 * Everything here treats the peer as hostile: lengths are checked against
 * what was actually received, the JSON parser runs with depth and UTF-8
 * limits, and fds that arrive with a bad frame are closed before the error
 * is returned. */
#include <endian.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "scm/macro.h"
#include "scm-internal/error.h"
#include "scm-internal/wire.h"

#define HERE "libscm/wire"

/* Per-thread state: one receive buffer, big enough for the largest legal
 * frame plus one byte so an oversized frame shows up as MSG_TRUNC (a frame
 * is copied out of it into its message), and the JSON tokener. It lives as
 * long as the thread: a pthread key frees it when a thread exits, so a
 * client that calls from short-lived threads does not leak 256 KiB each. */
struct wire_tls {
	uint8_t *rx_buf;
	struct json_tokener *tok;
};
static __thread struct wire_tls *tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
	struct wire_tls *t = p;
	free(t->rx_buf);
	if (t->tok)
		json_tokener_free(t->tok);
	free(t);
}

static void tls_key_init(void)
{
	(void)pthread_key_create(&tls_key, tls_free);
}

static struct wire_tls *tls_get(void)
{
	if (_likely_(tls))
		return tls;
	struct wire_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_once(&tls_once, tls_key_init);
	(void)pthread_setspecific(tls_key, t);
	return tls = t;
}

/* json-c accepts NaN, Infinity and overflowing exponents (1e999) even in
 * strict mode. They are not JSON, and a NaN compares false with every
 * bound, so a range check on it would hold whatever the range: refuse
 * them at the boundary. The walk is bounded by the depth limit. */
static bool all_finite(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array: {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			if (!all_finite(json_object_array_get_idx(o, i)))
				return false;
		return true;
	}
	case json_type_object: {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			if (!all_finite(v))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

int scm_json_parse(const char *s, size_t len, struct json_object **ret, scm_error **ret_err)
{
	struct wire_tls *t = tls_get();
	json_object *o;

	if (len > SCM_FRAME_MAX)
		return scm_fail(ret_err, SCM_E_PROTOCOL, "JSON body of %zu bytes is over the limit", len);
	if (!t)
		return -ENOMEM;
	if (!t->tok) {
		t->tok = json_tokener_new_ex(SCM_JSON_DEPTH_MAX);
		if (!t->tok)
			return -ENOMEM;
		json_tokener_set_flags(t->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	struct json_tokener *tok = t->tok;
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, s, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		if (jerr == json_tokener_continue)
			return scm_fail(ret_err, SCM_E_PROTOCOL, "JSON body is truncated");
		return scm_fail(ret_err, SCM_E_PROTOCOL, "JSON body is not valid at byte %zu: %s",
				json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
	}
	if (json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "JSON body has trailing bytes at %zu",
				json_tokener_get_parse_end(tok));
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "JSON body is not an object");
	}
	if (!all_finite(o)) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_PROTOCOL,
				"JSON body has a number that is not finite (NaN, Infinity or out of range)");
	}
	*ret = o;
	return 0;
}

int scm_wire_send(int fd, int msg_flags, uint8_t type, uint16_t flags, uint32_t call_id,
		  uint32_t method, const char *json, size_t json_len, const void *bin,
		  size_t bin_len, const int *fds, size_t n_fds)
{
	struct scm_wire_hdr h = {
		.magic = htole32(SCM_WIRE_MAGIC),
		.version = SCM_WIRE_VERSION,
		.type = type,
		.flags = htole16(flags),
		.call_id = htole32(call_id),
		.method = htole32(method),
		.json_len = htole32((uint32_t)json_len),
		.bin_len = htole32((uint32_t)bin_len),
	};
	struct iovec iov[3] = {
		{ &h, sizeof(h) },
		{ (void *)json, json_len },
		{ (void *)bin, bin_len },
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SCM_FDS_MAX)];
	} ctl;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };

	if (json_len > SCM_FRAME_MAX || bin_len > SCM_FRAME_MAX ||
	    SCM_WIRE_HDR + json_len + bin_len > SCM_FRAME_MAX || n_fds > SCM_FDS_MAX)
		return -EMSGSIZE;
	if (n_fds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, msg_flags | MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int scm_wire_send_json(int fd, int msg_flags, uint8_t type, uint16_t flags, uint32_t call_id,
		       uint32_t method, struct json_object *body, const void *bin,
		       size_t bin_len, const int *fds, size_t n_fds)
{
	size_t len = 0;
	const char *s = NULL;

	if (body)
		s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	return scm_wire_send(fd, msg_flags, type, flags, call_id, method, s, len, bin, bin_len,
			     fds, n_fds);
}

int scm_wire_send_error(int fd, int msg_flags, uint32_t call_id, const scm_error *e)
{
	json_object *j = scm_error_to_json(e);
	int r = scm_wire_send_json(fd, msg_flags, SCM_FRAME_ERROR, 0, call_id, 0, j, NULL, 0,
				   NULL, 0);
	json_object_put(j);
	return r;
}

static void close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		safe_close(fds[i]);
}

int scm_wire_decode(const void *buf, size_t len, const int *fds, size_t n_fds,
		    scm_message **ret, scm_error **ret_err)
{
	struct scm_wire_hdr h;
	json_object *json = NULL;
	int r;

	if (n_fds > SCM_FDS_MAX) {
		close_fds(fds, n_fds);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "frame carries %zu fds, limit %u", n_fds,
				SCM_FDS_MAX);
	}
	if (len < SCM_WIRE_HDR) {
		close_fds(fds, n_fds);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "frame of %zu bytes is shorter than the %u-byte header",
				len, SCM_WIRE_HDR);
	}
	memcpy(&h, buf, sizeof(h));
	h.magic = le32toh(h.magic);
	h.flags = le16toh(h.flags);
	h.call_id = le32toh(h.call_id);
	h.method = le32toh(h.method);
	h.json_len = le32toh(h.json_len);
	h.bin_len = le32toh(h.bin_len);

	const char *bad = NULL;
	if (h.magic != SCM_WIRE_MAGIC)
		bad = "bad magic";
	else if (h.version != SCM_WIRE_VERSION)
		bad = "unsupported version";
	else if (h.type < SCM_FRAME_CALL || h.type > SCM_FRAME_EVENT)
		bad = "unknown frame type";
	else if ((uint64_t)SCM_WIRE_HDR + h.json_len + h.bin_len != len)
		bad = "lengths in the header do not add up to the frame size";
	if (bad) {
		close_fds(fds, n_fds);
		return scm_fail(ret_err, SCM_E_PROTOCOL,
				"malformed frame: %s (magic 0x%08x version %u type %u, %zu bytes)", bad,
				h.magic, h.version, h.type, len);
	}
	if (h.json_len > 0) {
		r = scm_json_parse((const char *)buf + SCM_WIRE_HDR, h.json_len, &json, ret_err);
		if (r != 0) {
			close_fds(fds, n_fds);
			return r;
		}
	}

	scm_message *m = malloc(sizeof(*m) + h.bin_len);
	if (!m) {
		json_object_put(json);
		close_fds(fds, n_fds);
		return -ENOMEM;
	}
	*m = (scm_message){
		.type = h.type,
		.flags = h.flags,
		.call_id = h.call_id,
		.method = h.method,
		.json = json,
		.bin_len = h.bin_len,
		.n_fds = n_fds,
	};
	if (h.bin_len) {
		memcpy(m + 1, (const uint8_t *)buf + SCM_WIRE_HDR + h.json_len, h.bin_len);
		m->bin = m + 1;
	}
	for (size_t i = 0; i < SCM_FDS_MAX; i++)
		m->fds[i] = i < n_fds ? fds[i] : -1;
	*ret = m;
	return 0;
}

int scm_wire_recv(int fd, int msg_flags, scm_message **ret, scm_error **ret_err)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SCM_FDS_MAX)];
	} ctl;
	int fds[SCM_FDS_MAX];
	size_t n_fds = 0;
	ssize_t n;

	struct wire_tls *t = tls_get();
	if (!t)
		return -ENOMEM;
	if (!t->rx_buf) {
		t->rx_buf = malloc(SCM_FRAME_MAX + 1);
		if (!t->rx_buf)
			return -ENOMEM;
	}
	uint8_t *rx_buf = t->rx_buf;
	struct iovec iov = { rx_buf, SCM_FRAME_MAX + 1 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	do
		n = recvmsg(fd, &mh, msg_flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_fds < SCM_FDS_MAX)
				fds[n_fds++] = f;
			else
				safe_close(f);
		}
	}
	if (n == 0 && n_fds == 0)
		return 1; /* end of stream: SEQPACKET has no empty frames of ours */
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(fds, n_fds);
		return scm_fail(ret_err, SCM_E_PROTOCOL, "frame over the limit of %u bytes or %u fds",
				SCM_FRAME_MAX, SCM_FDS_MAX);
	}
	return scm_wire_decode(rx_buf, (size_t)n, fds, n_fds, ret, ret_err);
}

scm_message *scm_message_free(scm_message *m)
{
	if (!m)
		return NULL;
	close_fds(m->fds, m->n_fds);
	json_object_put(m->json);
	free(m);
	return NULL;
}

int scm_message_steal_fd(scm_message *m, size_t i)
{
	if (!m || i >= m->n_fds)
		return -1;
	return TAKE_FD(m->fds[i]);
}

scm_error *scm_message_error(const scm_message *m)
{
	if (!m || m->type != SCM_FRAME_ERROR)
		return NULL;
	return scm_error_from_json(m->json);
}

int scm_wire_control_request(int fd, const char *op, json_object *args, const int *fds, size_t n_fds,
			     json_object **ret, int *ret_fds, size_t max_fds, scm_error **ret_err)
{
	scm_message *m = NULL;
	for (size_t i = 0; ret_fds && i < max_fds; i++)
		ret_fds[i] = -1;
	json_object *req = args ? json_object_get(args) : json_object_new_object();
	if (!req)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	json_object_object_add(req, "op", json_object_new_string(op));
	int r = scm_wire_send_json(fd, 0, SCM_FRAME_CALL, 0, 1, 0, req, NULL, 0, fds, n_fds);
	json_object_put(req);
	if (r < 0)
		return scm_fail(ret_err, r, "sending %s to scmd: %s", op, strerror(-r));
	r = scm_wire_recv(fd, 0, &m, ret_err);
	if (r == 1)
		return scm_fail(ret_err, SCM_E_PROTOCOL,
				"scmd closed the control connection during %s (the control socket is for root and scmd's own user)",
				op);
	if (r != 0)
		return scm_fail(ret_err, r, "reading scmd's answer to %s", op);
	if (m->type == SCM_FRAME_ERROR) {
		scm_error *e = scm_message_error(m);
		r = e ? e->code : -ENOMEM;
		scm_error_push(ret_err, e);
		scm_message_free(m);
		return r;
	}
	for (size_t i = 0; ret_fds && i < max_fds; i++)
		ret_fds[i] = scm_message_steal_fd(m, i);
	if (ret)
		*ret = m->json ? json_object_get(m->json) : json_object_new_object();
	scm_message_free(m);
	return 0;
}
