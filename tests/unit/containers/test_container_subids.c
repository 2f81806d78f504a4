/* Unit tests of the subordinate id parsers: /etc/subuid-style lines and
 * the START:COUNT option, as a table of inputs and what each yields. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "container.h"

static const struct {
	const char *text;
	int code;
	uint32_t start, count;
} files[] = {
	{"scm:2147483648:65536\n", 0, 2147483648u, 65536},
	{"root:100000:65536\nscm:200000:1000\n", 0, 200000, 1000},
	{"# scm:1:1\nscmx:5:5\nscm:7:8", 0, 7, 8},          /* comment, prefix, no final newline */
	{"scm:1:2\nscm:3:4\n", 0, 1, 2},                     /* the first line wins */
	{"1000:300000:10\n", 0, 300000, 10},                  /* by number */
	{"root:100000:65536\n", 1, 0, 0},
	{"", 1, 0, 0},
	{"scm:0:65536\n", -EINVAL, 0, 0},                     /* host 0 is never a subordinate id */
	{"scm:4294967290:10\n", -EINVAL, 0, 0},               /* runs past (uid_t)-1 */
	{"scm:100:0\n", -EINVAL, 0, 0},
	{"scm:-1:5\n", -EINVAL, 0, 0},
	{"scm:12345678901:5\n", -EINVAL, 0, 0},
	{"scm:100\n", -EINVAL, 0, 0},
	{"scm:100:5:7\n", -EINVAL, 0, 0},
	{"scm: 100:5\n", -EINVAL, 0, 0},
};

static void test_files(void **state)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		uint32_t start = 0, count = 0;
		int r = container_subid_find(files[i].text, strlen(files[i].text), "scm", 1000, &start, &count);
		if (r != files[i].code)
			fail_msg("case %zu (%s): %d, expected %d", i, files[i].text, r, files[i].code);
		if (r == 0) {
			assert_int_equal(start, files[i].start);
			assert_int_equal(count, files[i].count);
		}
	}
}

static void test_option(void **state)
{
	container_idrange r;
	assert_int_equal(container_idrange_parse("2147483648:65536", &r), 0);
	assert_int_equal(r.uid_start, 2147483648u);
	assert_int_equal(r.gid_count, 65536);
	assert_int_equal(container_idrange_parse("1:4294967294", &r), 0);
	static const char *const bad[] = {"", ":", "0:10", "10", "10:", ":10", "10:0", "a:b", "1:4294967295",
					  "4294967295:1", "10:20:30", "+10:20", NULL};
	for (const char *const *b = bad; *b; b++)
		if (container_idrange_parse(*b, &r) != -EINVAL)
			fail_msg("\"%s\" was accepted", *b);
}

static void test_load(void **state)
{
	char u[] = "/tmp/test-subuid-XXXXXX", g[] = "/tmp/test-subgid-XXXXXX";
	int fu = mkstemp(u), fg = mkstemp(g);
	assert_true(fu >= 0 && fg >= 0);
	assert_int_equal(write(fu, "scm:100000:500\n", 15), 15);
	assert_int_equal(write(fg, "other:1:1\n", 10), 10);
	container_idrange r = {0};
	scm_error *err = NULL;
	assert_int_equal(container_idrange_load(u, g, "scm", &r, &err), 1); /* missing from subgid */
	assert_int_equal(write(fg, "scm:700000:600\n", 15), 15);
	assert_int_equal(container_idrange_load(u, g, "scm", &r, &err), 0);
	assert_int_equal(r.uid_start, 100000);
	assert_int_equal(r.uid_count, 500);
	assert_int_equal(r.gid_start, 700000);
	assert_int_equal(r.gid_count, 600);
	assert_int_equal(write(fu, "", 0), 0);
	close(fu);
	close(fg);
	unlink(g);
	assert_int_equal(container_idrange_load(u, g, "scm", &r, &err), 1); /* no subgid at all */
	fu = open(u, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fu, "scm:0:5\n", 8), 8);
	close(fu);
	assert_int_equal(container_idrange_load(u, "/dev/null", "scm", &r, &err), -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err->message, u));
	scm_error_free(err);
	unlink(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_option),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
