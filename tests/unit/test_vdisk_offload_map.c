/* Table test of offload_map_parse (services/vdisk/offload-map.c): the
 * records a destination provider accepts from a source provider. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "offload-map.h"

#define MiB (1ull << 20)

struct rec {
	uint64_t off, len, fo;
};

static int parse(const struct rec *r, size_t n, uint64_t from, uint64_t next, uint64_t tlen, const char **ret_msg)
{
	static struct offload_extent ex[16];
	static char msg[512];
	uint8_t bin[16 * 24];
	for (size_t i = 0; i < n; i++) {
		uint64_t v[3] = { htole64(r[i].off), htole64(r[i].len), htole64(r[i].fo) };
		memcpy(bin + 24 * i, v, 24);
	}
	scm_error *e = NULL;
	int k = offload_map_parse(bin, n * 24, from, next, tlen, ex, &e);
	snprintf(msg, sizeof msg, "%s", e ? e->message : "");
	scm_error_free(e);
	if (ret_msg)
		*ret_msg = msg;
	return k;
}

static void test_table(void **state)
{
	(void)state;
	const char *m;
	struct rec good[] = { { 0, MiB, 4 * MiB }, { MiB, 2 * MiB, OFFLOAD_ZERO }, { 3 * MiB, MiB, 9 * MiB } };
	assert_int_equal(parse(good, 3, 0, 4 * MiB, 8 * MiB, NULL), 3);
	/* a later page: starts where the last call ended */
	struct rec page[] = { { 4 * MiB, 4 * MiB, OFFLOAD_ZERO } };
	assert_int_equal(parse(page, 1, 4 * MiB, 8 * MiB, 8 * MiB, NULL), 1);
	/* a gap, an overlap, an empty record, past next, short of next */
	struct rec gap[] = { { 0, MiB, 0 }, { 2 * MiB, MiB, 0 } };
	assert_int_equal(parse(gap, 2, 0, 3 * MiB, 8 * MiB, &m), -EPROTO);
	assert_non_null(strstr(m, "extents[1]"));
	struct rec over[] = { { 0, 2 * MiB, 0 }, { MiB, MiB, 0 } };
	assert_int_equal(parse(over, 2, 0, 3 * MiB, 8 * MiB, NULL), -EPROTO);
	struct rec empty[] = { { 0, 0, 0 } };
	assert_int_equal(parse(empty, 1, 0, MiB, 8 * MiB, NULL), -EPROTO);
	struct rec past[] = { { 0, 9 * MiB, 0 } };
	assert_int_equal(parse(past, 1, 0, 8 * MiB, 8 * MiB, NULL), -EPROTO);
	struct rec shortr[] = { { 0, MiB, 0 } };
	assert_int_equal(parse(shortr, 1, 0, 2 * MiB, 8 * MiB, &m), -EPROTO);
	assert_non_null(strstr(m, "end at"));
	/* a next that does not advance or is past the token; nothing at all */
	assert_int_equal(parse(shortr, 1, 0, 0, 8 * MiB, NULL), -EPROTO);
	assert_int_equal(parse(shortr, 1, 0, 9 * MiB, 8 * MiB, NULL), -EPROTO);
	assert_int_equal(parse(shortr, 0, 0, MiB, 8 * MiB, NULL), -EPROTO);
	/* a file offset whose end wraps */
	struct rec wrap[] = { { 0, MiB, UINT64_MAX - 10 } };
	assert_int_equal(parse(wrap, 1, 0, MiB, 8 * MiB, NULL), -EPROTO);
	/* a partial record */
	uint8_t bin[30] = { 0 };
	struct offload_extent ex[2];
	scm_error *e = NULL;
	assert_int_equal(offload_map_parse(bin, sizeof bin, 0, MiB, MiB, ex, &e), -EPROTO);
	scm_error_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_table) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
