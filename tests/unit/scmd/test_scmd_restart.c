/* Unit tests of the restart-in-place state reader (scm/scmd/restart-state.c)
 * and the fd checks of the successor (restart-load.c): a state it writes
 * is read back; a wrong magic, a version out of range, a length that does
 * not match, trailing bytes and a member of the wrong type are refused,
 * each naming what; version 1's state (channels in the JSON) is read,
 * and version 2's channel table is checked as untrusted input; an fd is believed only for the kind it is, and only
 * once. The containers a serving copy sends early (restart-handoff.c) are
 * read with the same checks: {} (with the state), an array of records, or
 * refused naming what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "restart.h"

static const char good[] =
	"{\"scmd\":{\"generation\":1,\"started\":1,\"next_channel\":3,\"next_container\":0,\"ctr_serial\":0,"
	"\"instance\":\"scmd-1-00000000\",\"lock_fd\":4},\"store\":false,\"reply\":null,\"control_fd\":5,"
	"\"endpoints\":[{\"name\":\"demo\",\"path\":\"/run/scm/endpoints/demo.sock\",\"dir\":null,\"owner\":0,"
	"\"profiles\":[],\"limit\":{\"channels\":1,\"pending\":1,\"conns\":1,\"queued\":1},\"fd\":6,"
	"\"container\":false,\"provider_of\":null,\"peer_uid_min\":0,\"peer_uid_count\":0}],"
	"\"conns\":[],\"services\":[],\"channels\":[],\"containers\":[],\"execs\":[],\"fds\":[4,5,6]}";

/* A memfd holding header fields and text as given. */
static int raw_state(const char *magic, uint32_t version, uint64_t length, const char *text)
{
	struct state_header h = { .version = version, .length = length };
	memcpy(h.magic, magic, 8);
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, &h, sizeof(h)), sizeof(h));
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void expect_refused(int fd, const char *words)
{
	json_object *st = NULL;
	scm_error *e = NULL;
	assert_int_not_equal(state_memfd_read(fd, &st, NULL, NULL, &e), 0);
	assert_null(st);
	_cleanup_free_ char *t = scm_error_text(e);
	if (!strstr(t, words))
		fail_msg("'%s' does not say '%s'", t, words);
	scm_error_free(e);
	close(fd);
}

/* good, as version 2 has it: no "channels" in the JSON */
static char *good_v2(void)
{
	static char text[2048];
	const char *p = strstr(good, "\"channels\":[],");
	assert_non_null(p);
	snprintf(text, sizeof(text), "%.*s%s", (int)(p - good), good, p + strlen("\"channels\":[],"));
	return text;
}

/* A channel table as restart-chans.c writes it: n records of size bytes
 * (id, fd, service, endpoint, origin and grant as given), the strings. */
struct rec {
	uint64_t id;
	int32_t fd;
	uint32_t svc, ep, oo, ol, go, gl;
};
static size_t table(uint8_t *out, const struct rec *r, uint32_t n, uint32_t size, const char *strings, uint32_t slen)
{
	memset(out, 0, 24 + (size_t)n * size + slen);
	memcpy(out, SCMD_CHANS_MAGIC, 8);
	uint32_t h[] = { n, size, slen, 0 };
	memcpy(out + 8, h, sizeof(h)); /* little-endian host, as the tests run */
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *q = out + 24 + (size_t)i * size;
		memcpy(q, &r[i].id, 8);
		memcpy(q + 16, &r[i].fd, 4);
		uint32_t v[] = { r[i].svc, r[i].ep, r[i].oo, r[i].ol, r[i].go, r[i].gl };
		memcpy(q + 32, v, sizeof(v));
	}
	memcpy(out + 24 + (size_t)n * size, strings, slen);
	return 24 + (size_t)n * size + slen;
}

static void round_trip(void **state)
{
	int fd = -1;
	json_object *st = NULL;
	uint32_t v = 0;
	/* version 1 (channels in the JSON), read by this reader */
	assert_int_equal(state_memfd_write(good, strlen(good), NULL, 0, 1, &fd, NULL), 0);
	/* sealed: nobody changes what the successor reads */
	assert_true(write(fd, "x", 1) < 0);
	struct state_chans t = { 0 };
	assert_int_equal(state_memfd_read(fd, &st, &v, &t, NULL), 0);
	assert_int_equal(v, 1);
	assert_int_equal(t.n, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(st, "scmd"), "instance")),
			    "scmd-1-00000000");
	json_object_put(st);
	close(fd);
	/* version 2: the JSON (odd length: padded) and two channels behind it */
	uint8_t bin[512];
	static const char strings[] = "rule a\0{\"g\":1}\0";
	struct rec r[] = { { 41, 7, 0, 0, 0, 6, 7, 7 }, { 42, 9, 0, SCMD_CHAN_NONE, 0, 6, SCMD_CHAN_NONE, 0 } };
	const char *j = good_v2();
	size_t len = table(bin, r, 2, SCMD_CHAN_RECORD, strings, sizeof(strings) - 1);
	assert_int_equal(state_memfd_write(j, strlen(j), bin, len, 2, &fd, NULL), 0);
	/* the table refers to service 0: none in good, so it is refused */
	struct state_chans t2 = { 0 };
	scm_error *e = NULL;
	assert_int_not_equal(state_memfd_read(fd, &st, &v, &t2, &e), 0);
	assert_non_null(strstr(e->message, "record 0: its service is out of range"));
	scm_error_free(e);
	close(fd);
	assert_int_equal(chans_decode(bin, len, 1, 1, &t2, NULL), 0);
	assert_int_equal(t2.n, 2);
	assert_int_equal(t2.c[0].id, 41);
	assert_int_equal(t2.c[0].fd, 7);
	assert_string_equal(t2.c[0].origin, "rule a");
	assert_string_equal(t2.c[0].grant, "{\"g\":1}");
	assert_string_equal(t2.c[1].origin, "rule a");
	assert_null(t2.c[1].grant);
	assert_int_equal(t2.c[1].endpoint, SCMD_CHAN_NONE);
	state_chans_free(&t2);
	/* a record larger than version 2's: its tail is ignored */
	len = table(bin, r, 2, SCMD_CHAN_RECORD + 8, strings, sizeof(strings) - 1);
	assert_int_equal(chans_decode(bin, len, 1, 1, &t2, NULL), 0);
	assert_string_equal(t2.c[1].origin, "rule a");
	state_chans_free(&t2);
	/* an empty table behind a version 2 JSON reads */
	len = table(bin, NULL, 0, SCMD_CHAN_RECORD, "", 0);
	assert_int_equal(state_memfd_write(j, strlen(j), bin, len, 2, &fd, NULL), 0);
	assert_int_equal(state_memfd_read(fd, &st, &v, &t2, NULL), 0);
	assert_int_equal(v, 2);
	assert_int_equal(t2.n, 0);
	json_object_put(st);
	state_chans_free(&t2);
	close(fd);
}

/* The table is untrusted: every count, size, index and string checked. */
static void table_refusals(void **state)
{
	static const char strings[] = "o\0g\0";
	static const struct {
		struct rec r;
		uint32_t size, slen;
		const char *says;
	} t[] = {
		{ { 1, 5, 0, 0, 0, 1, SCMD_CHAN_NONE, 0 }, 40, 4, "records of 40 bytes" },
		{ { 1, -1, 0, 0, 0, 1, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its fd" },
		{ { 1, 5, 1, 0, 0, 1, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its service" },
		{ { 1, 5, 0, 2, 0, 1, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its endpoint" },
		{ { 1, 5, 0, 0, 0, 2, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its origin" },  /* NUL within */
		{ { 1, 5, 0, 0, 2, 2, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its origin" },  /* not terminated */
		{ { 1, 5, 0, 0, 9, 1, SCMD_CHAN_NONE, 0 }, SCMD_CHAN_RECORD, 4, "its origin" },  /* outside */
		{ { 1, 5, 0, 0, 0, 1, UINT32_MAX - 1, 1 }, SCMD_CHAN_RECORD, 4, "its grant" }, /* offset wraps */
		{ { 1, 5, 0, 0, 0, 1, 2, UINT32_MAX }, SCMD_CHAN_RECORD, 4, "its grant" },     /* length wraps */
	};
	uint8_t bin[512];
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = table(bin, &t[i].r, 1, t[i].size, strings, t[i].slen);
		struct state_chans out = { 0 };
		scm_error *e = NULL;
		assert_int_not_equal(chans_decode(bin, len, 1, 2, &out, &e), 0);
		if (!strstr(e->message, t[i].says))
			fail_msg("case %zu: '%s' does not say '%s'", i, e->message, t[i].says);
		assert_null(out.c);
		scm_error_free(e);
	}
	struct rec ok = { 1, 5, 0, 0, 0, 1, 2, 1 };
	size_t len = table(bin, &ok, 1, SCMD_CHAN_RECORD, strings, 4);
	struct state_chans out = { 0 };
	assert_int_equal(chans_decode(bin, len, 1, 2, &out, NULL), 0);
	state_chans_free(&out);
	scm_error *e = NULL;
	/* sizes that do not add up: one byte short, one too many, a count
	 * far over what is there */
	assert_int_not_equal(chans_decode(bin, len - 1, 1, 2, &out, &e), 0);
	assert_non_null(strstr(e->message, "are not its"));
	scm_error_free(e), e = NULL;
	uint32_t big = 1000;
	memcpy(bin + 8, &big, 4);
	assert_int_not_equal(chans_decode(bin, len, 1, 2, &out, &e), 0);
	scm_error_free(e), e = NULL;
	big = UINT32_MAX;
	memcpy(bin + 8, &big, 4);
	assert_int_not_equal(chans_decode(bin, len, 1, 2, &out, &e), 0);
	assert_non_null(strstr(e->message, "over"));
	scm_error_free(e), e = NULL;
	memcpy(bin, "NOTCHANS", 8);
	assert_int_not_equal(chans_decode(bin, len, 1, 2, &out, &e), 0);
	assert_non_null(strstr(e->message, "no header"));
	scm_error_free(e), e = NULL;
	/* version 2 with channels in its JSON, or with no table behind it */
	int fd = -1;
	len = table(bin, NULL, 0, SCMD_CHAN_RECORD, "", 0);
	assert_int_equal(state_memfd_write(good, strlen(good), bin, len, 2, &fd, NULL), 0);
	expect_refused(fd, "/channels is in its channel table");
	const char *j = good_v2();
	assert_int_equal(state_memfd_write(j, strlen(j), NULL, 0, 2, &fd, NULL), 0);
	expect_refused(fd, "does not match the memfd");
}

static void header_refusals(void **state)
{
	expect_refused(raw_state("NOTSTATE", 1, strlen(good), good), "no scmd state header");
	expect_refused(raw_state(SCMD_STATE_MAGIC, SCMD_STATE_VERSION + 1, strlen(good), good), "this scmd reads versions");
	expect_refused(raw_state(SCMD_STATE_MAGIC, 0, strlen(good), good), "state version 0");
	expect_refused(raw_state(SCMD_STATE_MAGIC, 1, strlen(good) + 5, good), "does not match");
	expect_refused(raw_state(SCMD_STATE_MAGIC, 1, 2, "{}"), "/scmd: expected an object");
	expect_refused(raw_state(SCMD_STATE_MAGIC, 1, 4, "{}{}"), "trailing data");
	expect_refused(raw_state(SCMD_STATE_MAGIC, 1, 3, "[1,"), "not JSON");
}

static void structure_refusals(void **state)
{
	static const struct {
		const char *from, *to, *says;
	} t[] = {
		{ "\"fd\":6", "\"fd\":\"6\"", "/endpoints/0/fd: expected an fd number" },
		{ "\"fd\":6", "\"fd\":-1", "/endpoints/0/fd: expected an fd number" },
		{ "\"lock_fd\":4", "\"lock\":4", "/scmd/lock_fd: expected an integer" },
		{ "\"dir\":null,", "", "/endpoints/0/dir: expected a string or null" },
		{ "\"profiles\":[]", "\"profiles\":[1]", "/endpoints/0/profiles: expected an array of strings" },
		{ "\"services\":[]", "\"services\":[{\"manifest\":\"{}\"}]", "/services/0/origin" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char text[2048];
		const char *p = strstr(good, t[i].from);
		assert_non_null(p);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(p - good), good, t[i].to, p + strlen(t[i].from));
		expect_refused(raw_state(SCMD_STATE_MAGIC, 1, strlen(text), text), t[i].says);
	}
}

static void fd_kinds(void **state)
{
	int sp[2], pp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), st = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa_family_t)), 0); /* autobind */
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(fd_check(sp[0], FD_SEQPACKET, "t", NULL), 0);
	assert_int_not_equal(fd_check(sp[0], FD_LISTEN, "t", NULL), 0);
	assert_int_equal(fd_check(ls, FD_LISTEN, "t", NULL), 0);
	assert_int_not_equal(fd_check(ls, FD_SEQPACKET, "t", NULL), 0);
	assert_int_not_equal(fd_check(st, FD_SEQPACKET, "t", NULL), 0); /* a stream socket */
	assert_int_not_equal(fd_check(pp[0], FD_SEQPACKET, "t", NULL), 0);
	assert_int_equal(fd_check(pp[0], FD_PIPE, "t", NULL), 0);
	assert_int_not_equal(fd_check(pp[0], FD_REG, "t", NULL), 0);
	scm_error *e = NULL;
	assert_int_not_equal(fd_check(1000, FD_PIPE, "the thing", &e), 0);
	assert_non_null(strstr(e->message, "the thing: fd 1000 is not open"));
	scm_error_free(e);
	/* an fd is taken once: a second object naming it gets none */
	int olds[] = { 7, 8 }, news[] = { 17, 18 };
	bool used[2] = { false, false };
	struct fdmap m = { .old_fd = olds, .new_fd = news, .n = 2, .used = used };
	assert_int_equal(fdmap_get(&m, 8), 18);
	assert_int_equal(fdmap_get(&m, 8), -1);
	assert_int_equal(fdmap_get(&m, 9), -1);
	/* sorted (a hand-off's map): found by bisection, the same rules */
	int solds[] = { 3, 5, 9, 40, 41 }, snews[] = { 13, 15, 19, 50, 51 };
	bool sused[5] = { false };
	struct fdmap sm = { .old_fd = solds, .new_fd = snews, .n = 5, .used = sused, .sorted = true };
	assert_int_equal(fdmap_peek(&sm, 41), 51);
	assert_int_equal(fdmap_get(&sm, 41), 51);
	assert_int_equal(fdmap_get(&sm, 41), -1);
	assert_int_equal(fdmap_get(&sm, 3), 13);
	assert_int_equal(fdmap_get(&sm, 9), 19);
	assert_int_equal(fdmap_get(&sm, 4), -1);
	assert_int_equal(fdmap_get(&sm, 42), -1);
	assert_int_equal(fdmap_peek(&sm, 2), -1);
	close(sp[0]), close(sp[1]), close(pp[0]), close(pp[1]), close(ls), close(st);
}

/* A container record as the state has it (exited: no runtime object). */
#define CTR_REC(name, serial)                                                                                   \
	"{\"name\":\"" name "\",\"serial\":" serial ",\"exited\":true,\"status\":0,\"started\":1,\"ended\":2,"         \
	"\"log_path\":null,\"cmdline\":\"sleep\",\"state_path\":null,\"sandbox\":null,\"paused\":false,"            \
	"\"endpoint\":null,\"provider_of\":null,\"out_fd\":-1,\"log_fd\":-1,\"attach_fd\":-1,\"log_size\":0,"       \
	"\"log_file_max\":0,\"log_files\":0,\"fds\":0,\"kill_in_ms\":0,\"waiters\":[],\"container\":null}"

static int early_read(const char *magic, uint32_t version, const char *text, json_object **ret, scm_error **e)
{
	int fd = raw_state(magic, version, strlen(text), text);
	int r = state_containers_read(fd, ret, e);
	close(fd);
	return r;
}

static void early_containers(void **state)
{
	(void)state;
	json_object *a = NULL;
	scm_error *e = NULL;
	/* {}: they come with the state */
	assert_int_equal(early_read(SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "{}", &a, NULL), 0);
	assert_null(a);
	/* two records */
	assert_int_equal(early_read(SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[" CTR_REC("a", "1") "," CTR_REC("b", "2") "]", &a,
				    NULL),
			 0);
	assert_non_null(a);
	assert_int_equal(json_object_array_length(a), 2);
	json_object_put(a);
	a = NULL;
	/* refused, each naming what */
	static const struct {
		const char *magic;
		uint32_t version;
		const char *text, *words;
	} bad[] = {
		{ "SCMDNOPE", SCMD_STATE_VERSION, "[]", "no scmd state header" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION + 1, "[]", "version" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[", "not JSON" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[] x", "not JSON" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "null", "not JSON" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "{\"a\":1}", "expected an array or {}" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[1]", "/containers/0: expected an object" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[" CTR_REC("a", "\"one\"") "]", "/containers/0/serial" },
		{ SCMD_STATE_MAGIC, SCMD_STATE_VERSION, "[{\"name\":\"a\"}]", "/containers/0/serial" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = NULL;
		a = NULL;
		assert_int_not_equal(early_read(bad[i].magic, bad[i].version, bad[i].text, &a, &e), 0);
		assert_null(a);
		_cleanup_free_ char *t = scm_error_text(e);
		if (!t || !strstr(t, bad[i].words))
			fail_msg("case %zu: '%s' does not say '%s'", i, t ? t : "(nothing)", bad[i].words);
		scm_error_free(e);
	}
	/* a length that does not match the memfd */
	int fd = raw_state(SCMD_STATE_MAGIC, SCMD_STATE_VERSION, 1, "[]");
	e = NULL;
	assert_int_not_equal(state_containers_read(fd, &a, &e), 0);
	scm_error_free(e);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(header_refusals),
		cmocka_unit_test(table_refusals),
		cmocka_unit_test(structure_refusals),
		cmocka_unit_test(fd_kinds),
		cmocka_unit_test(early_containers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
