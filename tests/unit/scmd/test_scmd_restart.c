/* Unit tests of the restart-in-place state reader (scm/scmd/restart-state.c)
 * and the fd checks of the successor (restart-load.c): a state it writes
 * is read back; a wrong magic, a version out of range, a length that does
 * not match, trailing bytes and a member of the wrong type are refused,
 * each naming what; an fd is believed only for the kind it is, and only
 * once. */
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
	assert_int_not_equal(state_memfd_read(fd, &st, NULL, &e), 0);
	assert_null(st);
	_cleanup_free_ char *t = scm_error_text(e);
	if (!strstr(t, words))
		fail_msg("'%s' does not say '%s'", t, words);
	scm_error_free(e);
	close(fd);
}

static void round_trip(void **state)
{
	int fd = -1;
	json_object *st = NULL;
	uint32_t v = 0;
	assert_int_equal(state_memfd_write(good, strlen(good), SCMD_STATE_VERSION, &fd, NULL), 0);
	/* sealed: nobody changes what the successor reads */
	assert_true(write(fd, "x", 1) < 0);
	assert_int_equal(state_memfd_read(fd, &st, &v, NULL), 0);
	assert_int_equal(v, SCMD_STATE_VERSION);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(st, "scmd"), "instance")),
			    "scmd-1-00000000");
	json_object_put(st);
	close(fd);
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
	struct fdmap m = { olds, news, 2, used, false };
	assert_int_equal(fdmap_get(&m, 8), 18);
	assert_int_equal(fdmap_get(&m, 8), -1);
	assert_int_equal(fdmap_get(&m, 9), -1);
	/* sorted (a hand-off's map): found by bisection, the same rules */
	int solds[] = { 3, 5, 9, 40, 41 }, snews[] = { 13, 15, 19, 50, 51 };
	bool sused[5] = { false };
	struct fdmap sm = { solds, snews, 5, sused, true };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(header_refusals),
		cmocka_unit_test(structure_refusals),
		cmocka_unit_test(fd_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
