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
#include <string.h>
#include <sys/socket.h>

#include "wire.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_short_frames),
		cmocka_unit_test(test_roundtrip_with_fds),
		cmocka_unit_test(test_limits_on_send),
		cmocka_unit_test(test_error_chain_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
