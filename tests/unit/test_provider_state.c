/* Unit tests of the state a provider hands its successor
 * (stubs/provider-state.c, docs/handover.md): what the writer makes, the
 * reader takes back; what the reader refuses, as a table of damaged
 * files and the words the refusal must contain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm/scm.h"
#include "scm-internal/provider-state.h"

static void test_round_trip(void **state)
{
	json_object *doc = json_tokener_parse(
		"{\"interface\":\"echo\",\"saved_us\":5,\"state\":{\"total\":3},"
		"\"channels\":[{\"channel\":7,\"data\":2},{\"channel\":9,\"data\":null}]}");
	int fd = -1;
	assert_int_equal(provider_state_write(doc, 3, 0, &fd, NULL), 0);
	/* sealed: nobody changes it on the way */
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_WRITE);
	assert_true(seals & F_SEAL_SEAL);
	assert_int_equal(write(fd, "x", 1), -1);
	json_object *back = NULL;
	uint32_t version = 0, n_fds = 9;
	assert_int_equal(provider_state_read(fd, &version, &n_fds, &back, NULL), 0);
	assert_int_equal(version, 3);
	assert_int_equal(n_fds, 0);
	assert_true(json_object_equal(doc, back));
	json_object_put(back);
	close(fd);
	/* without fds the envelope stays 1: an older libscm reads it */
	unsigned char h[24];
	assert_int_equal(provider_state_write(doc, 3, 0, &fd, NULL), 0);
	assert_int_equal(pread(fd, h, sizeof h, 0), 24);
	assert_int_equal(h[8], 1);
	close(fd);
	/* with fds: envelope 2 and the count, read back */
	assert_int_equal(provider_state_write(doc, 3, 5, &fd, NULL), 0);
	assert_int_equal(pread(fd, h, sizeof h, 0), 24);
	assert_int_equal(h[8], 2);
	assert_int_equal(provider_state_read(fd, &version, &n_fds, &back, NULL), 0);
	assert_int_equal(n_fds, 5);
	json_object_put(back);
	json_object_put(doc);
	close(fd);
}

static size_t make(unsigned char *buf, const char *magic, uint32_t env, uint32_t version, uint64_t len,
		   const char *json)
{
	memcpy(buf, magic, 8);
	for (int i = 0; i < 4; i++) {
		buf[8 + i] = (unsigned char)(env >> (8 * i));
		buf[12 + i] = (unsigned char)(version >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		buf[16 + i] = (unsigned char)(len >> (8 * i));
	memcpy(buf + 24, json, strlen(json));
	return 24 + strlen(json);
}

#define GOOD "{\"interface\":\"echo\",\"state\":{},\"channels\":[]}"
static const struct {
	const char *magic;
	uint32_t env, version;
	int64_t len_delta; /* added to the true length in the header */
	const char *json, *want;
} bad[] = {
	{ "SCMDSTAT", 1, 1, 0, GOOD, "not a provider state" },
	{ "SCMPSTAT", 3, 1, 0, GOOD, "state envelope 3: this libscm reads envelopes 1 to 2" },
	{ "SCMPSTAT", 0, 1, 0, GOOD, "state envelope 0" },
	{ "SCMPSTAT", 2, 1, 0, "{\"interface\":\"echo\",\"state\":{},\"channels\":[],\"fds\":-1}", "/fds" },
	{ "SCMPSTAT", 2, 1, 0, "{\"interface\":\"echo\",\"state\":{},\"channels\":[],\"fds\":257}", "/fds" },
	{ "SCMPSTAT", 2, 1, 0, "{\"interface\":\"echo\",\"state\":{},\"channels\":[],\"fds\":\"2\"}", "/fds" },
	{ "SCMPSTAT", 1, 0, 0, GOOD, "state version 0" },
	{ "SCMPSTAT", 1, 1, 1, GOOD, "the file holds" },
	{ "SCMPSTAT", 1, 1, -1, GOOD, "the file holds" },
	{ "SCMPSTAT", 1, 1, 0, "{\"interface\":", "malformed" },
	{ "SCMPSTAT", 1, 1, 0, "[1]", "not an object" },
	{ "SCMPSTAT", 1, 1, 0, "{\"state\":{},\"channels\":[]}", "/interface" },
	{ "SCMPSTAT", 1, 1, 0, "{\"interface\":\"echo\",\"channels\":[]}", "/state" },
	{ "SCMPSTAT", 1, 1, 0, "{\"interface\":\"echo\",\"state\":1,\"channels\":{}}", "/channels" },
	{ "SCMPSTAT", 1, 1, 0, "{\"interface\":\"echo\",\"state\":1,\"channels\":[{\"channel\":0}]}",
	  "/channels/N/channel" },
	{ "SCMPSTAT", 1, 1, 0, "{\"interface\":\"echo\",\"state\":1,\"channels\":[{\"data\":1}]}",
	  "/channels/N/channel" },
};

static void test_refused(void **state)
{
	unsigned char buf[512];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = make(buf, bad[i].magic, bad[i].env, bad[i].version,
				(uint64_t)((int64_t)strlen(bad[i].json) + bad[i].len_delta), bad[i].json);
		scm_error *e = NULL;
		json_object *doc = NULL;
		uint32_t version = 0, n_fds = 0;
		int r = provider_state_parse(buf, n, &version, &n_fds, &doc, &e);
		char *t = e ? scm_error_text(e) : NULL;
		if (r == 0 || !t || !strstr(t, bad[i].want))
			fail_msg("case %zu: r=%d, '%s', wanted '%s'", i, r, t ? t : "(none)", bad[i].want);
		free(t);
		assert_null(doc);
		scm_error_free(e);
	}
	/* shorter than a header */
	scm_error *e = NULL;
	json_object *doc = NULL;
	uint32_t version = 0, n_fds = 0;
	assert_int_not_equal(provider_state_parse("SCMP", 4, &version, &n_fds, &doc, &e), 0);
	scm_error_free(e);
	/* and the good one is taken, in both envelopes ("fds" means nothing in 1) */
	size_t n = make(buf, "SCMPSTAT", 1, 2, strlen(GOOD), GOOD);
	assert_int_equal(provider_state_parse(buf, n, &version, &n_fds, &doc, NULL), 0);
	assert_int_equal(version, 2);
	assert_int_equal(n_fds, 0);
	json_object_put(doc);
	const char *two = "{\"interface\":\"echo\",\"state\":{},\"channels\":[],\"fds\":256}";
	n = make(buf, "SCMPSTAT", 2, 2, strlen(two), two);
	assert_int_equal(provider_state_parse(buf, n, &version, &n_fds, &doc, NULL), 0);
	assert_int_equal(n_fds, 256);
	json_object_put(doc);
	const char *one = "{\"interface\":\"echo\",\"state\":{},\"channels\":[],\"fds\":7}";
	n = make(buf, "SCMPSTAT", 1, 2, strlen(one), one);
	assert_int_equal(provider_state_parse(buf, n, &version, &n_fds, &doc, NULL), 0);
	assert_int_equal(n_fds, 0);
	json_object_put(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
