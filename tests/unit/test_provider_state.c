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
	assert_int_equal(provider_state_write(doc, 3, &fd, NULL), 0);
	/* sealed: nobody changes it on the way */
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_WRITE);
	assert_true(seals & F_SEAL_SEAL);
	assert_int_equal(write(fd, "x", 1), -1);
	json_object *back = NULL;
	uint32_t version = 0;
	assert_int_equal(provider_state_read(fd, &version, &back, NULL), 0);
	assert_int_equal(version, 3);
	assert_true(json_object_equal(doc, back));
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
	{ "SCMPSTAT", 2, 1, 0, GOOD, "state envelope 2: this libscm reads envelope 1" },
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
		uint32_t version = 0;
		int r = provider_state_parse(buf, n, &version, &doc, &e);
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
	uint32_t version = 0;
	assert_int_not_equal(provider_state_parse("SCMP", 4, &version, &doc, &e), 0);
	scm_error_free(e);
	/* and the good one is taken */
	size_t n = make(buf, "SCMPSTAT", 1, 2, strlen(GOOD), GOOD);
	assert_int_equal(provider_state_parse(buf, n, &version, &doc, NULL), 0);
	assert_int_equal(version, 2);
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
