/* Unit tests of the internal util layer (util/scmutil.h): string vectors,
 * known-key checks, the name rule, mkdir -p and path spelling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scmutil.h"

static void test_strv(void **state)
{
	char **v = NULL;
	size_t n = 0;
	assert_int_equal(strv_length(v), 0);
	assert_false(strv_contains(v, "a"));
	assert_int_equal(strv_add(&v, &n, "a"), 0);
	assert_int_equal(strv_add(&v, &n, "bc"), 0);
	assert_int_equal(n, 2);
	assert_int_equal(strv_length(v), 2);
	assert_null(v[2]);
	assert_true(strv_contains(v, "bc"));
	assert_false(strv_contains(v, "b"));
	_cleanup_(strv_freep) char **c = strv_copy(v);
	assert_non_null(c);
	assert_ptr_not_equal(c[0], v[0]);
	assert_string_equal(c[1], "bc");
	assert_null(c[2]);
	char **e = strv_copy(NULL);
	assert_non_null(e);
	assert_null(e[0]);
	strv_free(e);
	assert_null(strv_free(v));
	assert_null(strv_free(NULL));
}

static void test_strv_from_json(void **state)
{
	static const struct {
		const char *json;
		size_t max;
		bool allow_empty;
		size_t want_n; /* (size_t)-1: refused */
	} cases[] = {
		{ "[]", 4, false, 0 },
		{ "[\"a\",\"b\"]", 4, false, 2 },
		{ "[\"a\",\"b\"]", 1, false, (size_t)-1 },
		{ "[\"a\",\"\"]", 4, false, (size_t)-1 },
		{ "[\"a\",\"\"]", 4, true, 2 },
		{ "[\"a\",1]", 4, true, (size_t)-1 },
		{ "{\"a\":1}", 4, true, (size_t)-1 },
		{ "\"a\"", 4, true, (size_t)-1 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		json_object *j = json_tokener_parse(cases[i].json);
		const char *why = NULL;
		char **v = strv_from_json(j, cases[i].max, cases[i].allow_empty, &why);
		if (cases[i].want_n == (size_t)-1) {
			if (v)
				fail_msg("case %zu (%s): accepted", i, cases[i].json);
			assert_non_null(why);
		} else {
			if (!v)
				fail_msg("case %zu (%s): refused: %s", i, cases[i].json, why);
			assert_int_equal(strv_length(v), cases[i].want_n);
		}
		strv_free(v);
		json_object_put(j);
	}
}

static void test_json_unknown_key(void **state)
{
	static const char *const known[] = { "name", "exec", NULL };
	static const char *const none[] = { NULL };
	json_object *o = json_tokener_parse("{\"name\":1,\"exec\":2}");
	assert_null(json_unknown_key(o, known));
	assert_string_equal(json_unknown_key(o, none), "name");
	json_object_put(o);
	o = json_tokener_parse("{\"name\":1,\"exce\":2}");
	assert_string_equal(json_unknown_key(o, known), "exce");
	json_object_put(o);
	o = json_tokener_parse("{}");
	assert_null(json_unknown_key(o, none));
	json_object_put(o);
	o = json_tokener_parse("[1]");
	assert_null(json_unknown_key(o, known));
	json_object_put(o);
}

static void test_name_valid(void **state)
{
	static const struct {
		const char *s;
		size_t max;
		unsigned flags;
		bool want;
	} cases[] = {
		{ "echo", 64, 0, true },
		{ "", 64, NAME_RULE, false },
		{ "Echo", 64, 0, false },
		{ "Echo", 64, NAME_UPPER, true },
		{ "a-b", 64, 0, false },
		{ "a-b", 64, NAME_DASH, true },
		{ "a_b", 64, NAME_DASH, false },
		{ "a_b", 64, NAME_UNDERSCORE, true },
		{ "scm.control", 64, NAME_RULE, true },
		{ "scm.control", 64, NAME_RULE & ~NAME_DOT, false },
		{ "v*", 64, NAME_RULE, false },
		{ "v*", 64, NAME_RULE | NAME_GLOB, true },
		{ "v?", 64, NAME_RULE | NAME_GLOB, true },
		{ "a/b", 64, NAME_RULE | NAME_GLOB, false },
		{ "a b", 64, NAME_RULE, false },
		{ "..", 64, NAME_RULE, true },
		{ "..", 64, NAME_FILE, false },
		{ ".x", 64, NAME_FILE, false },
		{ "-x", 64, NAME_FILE, false },
		{ "x-", 64, NAME_FILE, true },
		{ "abcd", 4, 0, true },
		{ "abcde", 4, 0, false },
		{ "\xc3\xa9", 64, NAME_RULE, false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (name_valid(cases[i].s, cases[i].max, cases[i].flags) != cases[i].want)
			fail_msg("case %zu (\"%s\", %zu, %#x): want %d", i, cases[i].s, cases[i].max,
				 cases[i].flags, cases[i].want);
	assert_false(name_valid(NULL, 64, NAME_RULE));
}

static void test_mkdir_p(void **state)
{
	char tmpl[] = "/tmp/scm-test-util-XXXXXX", path[256];
	struct stat st;
	assert_non_null(mkdtemp(tmpl));
	snprintf(path, sizeof(path), "%s/a/b/c", tmpl);
	assert_int_equal(mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(mkdir_p(path, 0700), 0); /* exists: fine */
	snprintf(path, sizeof(path), "%s/p/q", tmpl);
	mode_t mask = umask(022);
	assert_int_equal(mkdir_p_parents(path, 0755, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/p", tmpl);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	umask(mask);
	/* a file in the way is an error, named by errno */
	snprintf(path, sizeof(path), "%s/f", tmpl);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/f/x", tmpl);
	assert_int_equal(mkdir_p(path, 0700), -ENOTDIR);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
}

static void test_path_under(void **state)
{
	static const struct {
		const char *path, *dir;
		bool want;
	} cases[] = {
		{ "/srv/disks/a.vhdx", "/srv/disks", true },
		{ "/srv/disks", "/srv/disks", true },
		{ "/srv/disks/", "/srv/disks", true },
		{ "/srv/disks/a", "/srv/disks/", true },
		{ "/srv/disks2/a", "/srv/disks", false },
		{ "/srv/disks/../etc/shadow", "/srv/disks", false },
		{ "/srv/disks/..", "/srv/disks", false },
		{ "/srv/disks/.", "/srv/disks", false },
		{ "/srv/disks/./a", "/srv/disks", false },
		{ "/srv/disks//a", "/srv/disks", false },
		{ "srv/disks/a", "/srv/disks", false },
		{ "/anything", "/", true },
		{ "/", "/", true },
		{ "/a/../b", "/", false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (path_under(cases[i].path, cases[i].dir) != cases[i].want)
			fail_msg("case %zu (%s under %s): want %d", i, cases[i].path, cases[i].dir, cases[i].want);
	assert_true(path_is_clean("/a/b/"));
	assert_false(path_is_clean("a/b"));
}

static void test_path_canon(void **state)
{
	static const struct {
		const char *in, *want; /* want NULL: refused */
	} cases[] = {
		{ "/x/", "/x" },   { "/x/.", "/x" },      { "/x//", "/x" },     { "//x//y/./z", "/x/y/z" },
		{ "/", "/" },      { "/./", "/" },        { "x", NULL },        { "", NULL },
		{ "/x/..", NULL }, { "/../x", NULL },     { "/x/..y", "/x/..y" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *out = NULL;
		const char *why = NULL;
		int r = path_canon(cases[i].in, &out, &why);
		if (!cases[i].want) {
			if (r != -EINVAL || !why)
				fail_msg("case %zu (%s): want -EINVAL, got %d", i, cases[i].in, r);
			continue;
		}
		if (r != 0)
			fail_msg("case %zu (%s): refused: %s", i, cases[i].in, why);
		assert_string_equal(out, cases[i].want);
		free(out);
	}
	char *big = malloc(5000), *out = NULL;
	const char *why = NULL;
	assert_non_null(big);
	big[0] = '/';
	memset(big + 1, 'a', 4098);
	big[4099] = '\0';
	assert_int_equal(path_canon(big, &out, &why), -EINVAL);
	free(big);
}

static void test_caps(void **state)
{
	assert_int_equal(cap_number_from_name("CAP_CHOWN"), 0);
	assert_int_equal(cap_number_from_name("CAP_SYS_ADMIN"), 21);
	assert_int_equal(cap_number_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	/* libcap takes these; a spec or a profile may not */
	assert_int_equal(cap_number_from_name("cap_chown"), -1);
	assert_int_equal(cap_number_from_name("0"), -1);
	assert_int_equal(cap_number_from_name("CAP_CHOWN,CAP_KILL"), -1);
	assert_int_equal(cap_number_from_name("CAP_SYS_ADMN"), -1);
	assert_int_equal(cap_number_from_name("CAP_"), -1);
	assert_int_equal(cap_number_from_name(""), -1);
	assert_string_equal(cap_name_from_number(0), "CAP_CHOWN");
	assert_string_equal(cap_name_from_number(21), "CAP_SYS_ADMIN");
	assert_null(cap_name_from_number(-1));
	assert_null(cap_name_from_number(63));
	for (int i = 0; cap_name_from_number(i); i++)
		assert_int_equal(cap_number_from_name(cap_name_from_number(i)), i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strv),
		cmocka_unit_test(test_strv_from_json),
		cmocka_unit_test(test_json_unknown_key),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_path_under),
		cmocka_unit_test(test_path_canon),
		cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
