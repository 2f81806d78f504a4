/* Unit tests of the frame codec: table-driven decode of good and bad
 * frames, and round trips over a real socketpair with fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "scm-internal/wire.h"

static size_t frame(uint8_t *buf, uint32_t magic, uint8_t version, uint8_t type, const char *json,
		    uint32_t json_len_claim, const char *bin, size_t bin_len)
{
	size_t jl = json ? strlen(json) : 0;
	struct scm_wire_hdr h = { magic, version, type, 0, 7, 3, json_len_claim, (uint32_t)bin_len };
	memcpy(buf, &h, sizeof(h));
	if (jl)
		memcpy(buf + sizeof(h), json, jl);
	if (bin_len)
		memcpy(buf + sizeof(h) + jl, bin, bin_len);
	return sizeof(h) + jl + bin_len;
}

struct decode_case {
	const char *name;
	uint32_t magic;
	uint8_t version, type;
	const char *json;
	int json_len_delta;
	const char *bin;
	int want;               /* 0 or SCM_E_PROTOCOL */
	const char *want_in_msg; /* substring of the error message */
};

static const struct decode_case cases[] = {
	{ "empty call", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, NULL, 0, NULL, 0, NULL },
	{ "json call", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":1}", 0, NULL, 0, NULL },
	{ "json + binary", SCM_WIRE_MAGIC, 1, SCM_FRAME_REPLY, "{}", 0, "xyz", 0, NULL },
	{ "bad magic", 0x12345678, 1, SCM_FRAME_CALL, NULL, 0, NULL, SCM_E_PROTOCOL, "bad magic" },
	{ "bad version", SCM_WIRE_MAGIC, 2, SCM_FRAME_CALL, NULL, 0, NULL, SCM_E_PROTOCOL, "version" },
	{ "type zero", SCM_WIRE_MAGIC, 1, 0, NULL, 0, NULL, SCM_E_PROTOCOL, "frame type" },
	{ "type too big", SCM_WIRE_MAGIC, 1, 5, NULL, 0, NULL, SCM_E_PROTOCOL, "frame type" },
	{ "json longer than frame", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{}", 5, NULL, SCM_E_PROTOCOL, "do not add up" },
	{ "json shorter than claimed body", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{}", -1, NULL, SCM_E_PROTOCOL, NULL },
	{ "not an object", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "[1,2]", 0, NULL, SCM_E_PROTOCOL, "not an object" },
	{ "truncated json", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":", 0, NULL, SCM_E_PROTOCOL, "truncated" },
	{ "trailing bytes", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{} {}", 0, NULL, SCM_E_PROTOCOL, NULL },
	{ "invalid utf-8", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":\"\xff\xfe\"}", 0, NULL, SCM_E_PROTOCOL, NULL },
	/* json-c takes these even in strict mode; they are not JSON, and a NaN
	 * would slip through every range constraint */
	{ "NaN", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":NaN}", 0, NULL, SCM_E_PROTOCOL, "not finite" },
	{ "Infinity", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":[1,{\"b\":-Infinity}]}", 0, NULL, SCM_E_PROTOCOL, "not finite" },
	{ "overflowing exponent", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":1e999}", 0, NULL, SCM_E_PROTOCOL, "not finite" },
	{ "finite doubles", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL, "{\"a\":[1.5,-2e300,0.0]}", 0, NULL, 0, NULL },
	{ "too deep", SCM_WIRE_MAGIC, 1, SCM_FRAME_CALL,
	  "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]}", 0, NULL, SCM_E_PROTOCOL, NULL },
};

static void test_decode_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct decode_case *c = &cases[i];
		uint8_t buf[512];
		size_t jl = c->json ? strlen(c->json) : 0;
		size_t n = frame(buf, c->magic, c->version, c->type, c->json, (uint32_t)((int)jl + c->json_len_delta),
				 c->bin, c->bin ? strlen(c->bin) : 0);
		scm_message *m = NULL;
		scm_error *e = NULL;
		int r = scm_wire_decode(buf, n, NULL, 0, &m, &e);
		if (r != c->want)
			fail_msg("case '%s': got %d want %d", c->name, r, c->want);
		if (c->want == 0) {
			assert_non_null(m);
			assert_int_equal(m->call_id, 7);
			assert_int_equal(m->method, 3);
			if (c->bin)
				assert_memory_equal(m->bin, c->bin, strlen(c->bin));
			assert_null(e);
		} else {
			assert_null(m);
			assert_non_null(e);
			if (c->want_in_msg && !strstr(e->message, c->want_in_msg))
				fail_msg("case '%s': message '%s' lacks '%s'", c->name, e->message, c->want_in_msg);
		}
		scm_message_free(m);
		scm_error_free(e);
	}
}

static void test_short_frames(void **state)
{
	uint8_t buf[SCM_WIRE_HDR] = { 0 };
	for (size_t n = 0; n < SCM_WIRE_HDR; n++) {
		scm_message *m = NULL;
		scm_error *e = NULL;
		assert_int_equal(scm_wire_decode(buf, n, NULL, 0, &m, &e), SCM_E_PROTOCOL);
		assert_null(m);
		scm_error_free(e);
	}
}

static void test_roundtrip_with_fds(void **state)
{
	int sp[2], pipefd[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "k", json_object_new_string("v"));
	assert_int_equal(scm_wire_send_json(sp[0], 0, SCM_FRAME_CALL, SCM_FLAG_NO_REPLY, 42, 9, o, "bin", 3,
					    &pipefd[1], 1), 0);
	json_object_put(o);
	scm_message *m = NULL;
	assert_int_equal(scm_wire_recv(sp[1], 0, &m, NULL), 0);
	assert_int_equal(m->call_id, 42);
	assert_int_equal(m->method, 9);
	assert_int_equal(m->flags, SCM_FLAG_NO_REPLY);
	assert_int_equal(m->bin_len, 3);
	assert_string_equal(json_object_get_string(json_object_object_get(m->json, "k")), "v");
	assert_int_equal(m->n_fds, 1);
	int fd = scm_message_steal_fd(m, 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	char c;
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(fd);
	scm_message_free(m);
	/* end of stream */
	close(sp[0]);
	assert_int_equal(scm_wire_recv(sp[1], 0, &m, NULL), 1);
	close(sp[1]);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void test_limits_on_send(void **state)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	static char big[SCM_FRAME_MAX];
	assert_int_equal(scm_wire_send(sp[0], 0, SCM_FRAME_CALL, 0, 1, 1, NULL, 0, big, sizeof(big), NULL, 0),
			 -EMSGSIZE);
	int fds[SCM_FDS_MAX + 1] = { 0 };
	assert_int_equal(scm_wire_send(sp[0], 0, SCM_FRAME_CALL, 0, 1, 1, NULL, 0, NULL, 0, fds, SCM_FDS_MAX + 1),
			 -EMSGSIZE);
	close(sp[0]);
	close(sp[1]);
}

static void test_error_chain_json(void **state)
{
	scm_error *e = scm_error_new(SCM_E_DENIED, "inner.c:1", "no %s", "way");
	e = scm_error_wrap(e, SCM_E_ACTIVATION, "outer", "wrapped");
	json_object *j = scm_error_to_json(e);
	scm_error *back = scm_error_from_json(j);
	assert_int_equal(back->code, SCM_E_ACTIVATION);
	assert_string_equal(back->cause->message, "no way");
	assert_string_equal(back->cause->where, "inner.c:1");
	assert_int_equal(scm_error_root_code(back), SCM_E_DENIED);
	json_object_put(j);
	scm_error_free(back);
	scm_error_free(e);
	/* garbage chains become a well-formed protocol error */
	json_object *g = json_object_new_object();
	json_object_object_add(g, "error", json_object_new_string("nope"));
	back = scm_error_from_json(g);
	assert_int_equal(back->code, SCM_E_PROTOCOL);
	scm_error_free(back);
	json_object_put(g);
}

/* A frame over the limits is refused at once even when others wait in the
 * queue: queued, it would fail every later flush and wedge the queue. */
static void test_outq_refuses_oversized_behind_others(void **state)
{
	int sp[2];
	struct scm_outq q = { 0 };
	static char big[SCM_FRAME_MAX];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	int r;
	size_t sent = 0;
	while ((r = scm_outq_send(sp[0], &q, SCM_FRAME_REPLY, 0, 1, 0, "{}", 2, big, 4096, NULL, 0)) == 0)
		sent++;
	assert_int_equal(r, 1); /* the peer is full: queued */
	assert_int_equal(scm_outq_send(sp[0], &q, SCM_FRAME_REPLY, 0, 2, 0, NULL, 0, big, sizeof(big), NULL, 0),
			 -EMSGSIZE);
	assert_int_equal(q.frames, 1);
	/* the peer reads everything: the queue drains */
	scm_message *m;
	for (size_t i = 0; i < sent; i++) {
		assert_int_equal(scm_wire_recv(sp[1], 0, &m, NULL), 0);
		scm_message_free(m);
	}
	assert_int_equal(scm_outq_flush(sp[0], &q), 0);
	assert_int_equal(q.frames, 0);
	assert_int_equal(scm_wire_recv(sp[1], 0, &m, NULL), 0);
	assert_int_equal(m->bin_len, 4096);
	scm_message_free(m);
	scm_outq_clear(&q);
	close(sp[0]);
	close(sp[1]);
}

/* Codes come from peers: every int has a name, INT_MIN included (negating
 * it would overflow). */
static void test_code_names(void **state)
{
	assert_string_equal(scm_code_name(SCM_E_DENIED), "denied");
	assert_string_equal(scm_code_name(-EPIPE), "EPIPE");
	assert_non_null(scm_code_name(INT_MIN));
	assert_non_null(scm_code_name(INT_MAX));
	assert_non_null(scm_code_name(-100000));
	json_object *j = json_tokener_parse("{\"error\":[{\"code\":-2147483648,\"message\":\"m\"}]}");
	scm_error *e = scm_error_from_json(j);
	FILE *f = fopen("/dev/null", "we");
	scm_error_print(e, f);
	fclose(f);
	json_object *back = scm_error_to_json(e);
	json_object_put(back);
	scm_error_free(e);
	json_object_put(j);
}

/* A call whose fd cannot be passed fails alone; the channel stays usable
 * (before, EBADF from sendmsg was taken for the provider's death). */
static void test_bad_fd_fails_the_call_not_the_channel(void **state)
{
	int sp[2];
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(scm_channel_from_fd(sp[0], 1, "t", &ch), 0);
	int bad = 1000000;
	assert_int_equal(scm_call_async(ch, 1, NULL, NULL, 0, &bad, 1, NULL, NULL, &e), -EBADF);
	assert_non_null(e);
	scm_error_free(e);
	e = NULL;
	assert_int_equal(scm_call_async(ch, 2, NULL, NULL, 0, NULL, 0, NULL, NULL, &e), 0);
	scm_message *m;
	assert_int_equal(scm_wire_recv(sp[1], 0, &m, NULL), 0);
	assert_int_equal(m->method, 2);
	scm_message_free(m);
	scm_channel_free(ch);
	close(sp[1]);
}

/* A synchronous call on a non-blocking channel fd waits for the reply
 * (it used to spin on EAGAIN): the reply arrives from a child later. */
static void test_sync_call_on_nonblocking_fd(void **state)
{
	int sp[2];
	scm_channel *ch = NULL;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd p = { sp[1], POLLIN, 0 };
		scm_message *m = NULL;
		if (poll(&p, 1, 5000) != 1 || scm_wire_recv(sp[1], 0, &m, NULL) != 0)
			_exit(1);
		poll(NULL, 0, 100); /* the caller is waiting by now */
		_exit(scm_wire_send(sp[1], 0, SCM_FRAME_REPLY, 0, m->call_id, 0, "{\"ok\":true}", 11, NULL, 0,
				    NULL, 0) == 0 ? 0 : 1);
	}
	close(sp[1]);
	assert_int_equal(scm_channel_from_fd(sp[0], 1, "t", &ch), 0);
	scm_message *reply = NULL;
	scm_error *e = NULL;
	assert_int_equal(scm_call_sync(ch, 1, NULL, NULL, 0, NULL, 0, &reply, &e), 0);
	assert_non_null(reply->json);
	scm_message_free(reply);
	scm_channel_free(ch);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A channel-level ERROR with no chain still kills the channel with a
 * reason, and pending callbacks get an error, never NULL. */
static int cb_calls;
static void cb_expect_error(scm_channel *ch, scm_message *reply, const scm_error *err, void *ud)
{
	assert_null(reply);
	assert_non_null(err);
	cb_calls++;
}

static void test_chainless_error_frames(void **state)
{
	int sp[2];
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(scm_channel_from_fd(sp[0], 1, "t", &ch), 0);
	cb_calls = 0;
	assert_int_equal(scm_call_async(ch, 1, NULL, NULL, 0, NULL, 0, cb_expect_error, NULL, &e), 0);
	assert_int_equal(scm_call_async(ch, 1, NULL, NULL, 0, NULL, 0, cb_expect_error, NULL, &e), 0);
	/* an ERROR reply to call 1 without a body, then a bare channel end */
	assert_int_equal(scm_wire_send(sp[1], 0, SCM_FRAME_ERROR, 0, 1, 0, NULL, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(scm_wire_send(sp[1], 0, SCM_FRAME_ERROR, 0, 0, 0, "{}", 2, NULL, 0, NULL, 0), 0);
	close(sp[1]);
	int r = scm_channel_dispatch(ch, &e);
	assert_true(r != 0);
	assert_non_null(e);
	assert_int_equal(cb_calls, 2);
	assert_int_equal(scm_channel_pending(ch), 0);
	scm_error_free(e);
	scm_channel_free(ch);
}

/* Each thread's receive buffer (256 KiB) and tokener are freed when the
 * thread exits: under LeakSanitizer this test fails if they are not. */
static void *recv_one(void *arg)
{
	int fd = *(int *)arg;
	scm_message *m = NULL;
	if (scm_wire_recv(fd, 0, &m, NULL) != 0)
		return (void *)1;
	scm_message_free(m);
	return NULL;
}

static void test_thread_state_freed(void **state)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	for (int i = 0; i < 4; i++) {
		pthread_t th;
		void *ret;
		assert_int_equal(scm_wire_send(sp[0], 0, SCM_FRAME_CALL, 0, 1, 1, "{\"a\":1}", 7, NULL, 0, NULL, 0), 0);
		assert_int_equal(pthread_create(&th, NULL, recv_one, &sp[1]), 0);
		assert_int_equal(pthread_join(th, &ret), 0);
		assert_null(ret);
	}
	close(sp[0]);
	close(sp[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_state_freed),
		cmocka_unit_test(test_outq_refuses_oversized_behind_others),
		cmocka_unit_test(test_code_names),
		cmocka_unit_test(test_bad_fd_fails_the_call_not_the_channel),
		cmocka_unit_test(test_sync_call_on_nonblocking_fd),
		cmocka_unit_test(test_chainless_error_frames),
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_short_frames),
		cmocka_unit_test(test_roundtrip_with_fds),
		cmocka_unit_test(test_limits_on_send),
		cmocka_unit_test(test_error_chain_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
