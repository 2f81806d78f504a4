/* Unit tests of the IDL parser: what it accepts, and that each way of
 * getting a definition wrong is refused with the JSON pointer named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "scm/idl.h"

static void test_good(void **state)
{
	const char *t = "{\"interface\":\"t\",\"version\":2,\"doc\":\"d\",\"errors\":[{\"name\":\"E\",\"code\":100}],"
			"\"methods\":[{\"name\":\"a\"},{\"name\":\"b\",\"params\":[{\"name\":\"x\",\"type\":\"uint\"},"
			"{\"name\":\"f\",\"type\":\"fd\"},{\"name\":\"d\",\"type\":\"bytes\"}],"
			"\"results\":[{\"name\":\"s\",\"type\":\"string\"}]}]}";
	scm_idl *idl = NULL;
	assert_int_equal(scm_idl_parse(t, strlen(t), "t.json", &idl, NULL), 0);
	assert_string_equal(idl->name, "t");
	assert_int_equal(idl->version, 2);
	assert_int_equal(idl->n_methods, 2);
	const scm_idl_method *b = scm_idl_method_by_name(idl, "b");
	assert_non_null(b);
	assert_int_equal(b->id, 2);
	assert_int_equal(b->params[1].type, SCM_IDL_FD);
	assert_ptr_equal(scm_idl_method_by_id(idl, 1), &idl->methods[0]);
	assert_null(scm_idl_method_by_id(idl, 3));
	assert_int_equal(idl->errors[0].code, 100);
	scm_idl_free(idl);
}

static const struct {
	const char *text, *want;
} bad[] = {
	{ "[]", "not an object" },
	{ "{\"version\":1,\"methods\":[{\"name\":\"a\"}]}", "/interface" },
	{ "{\"interface\":\"Bad Name\",\"version\":1,\"methods\":[{\"name\":\"a\"}]}", "/interface" },
	{ "{\"interface\":\"t\",\"version\":0,\"methods\":[{\"name\":\"a\"}]}", "/version" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[]}", "/methods" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"}],\"extra\":1}", "/extra: unknown key" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "/methods/1/name" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a-b\"}]}", "/methods/0/name" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"x\",\"type\":\"float\"}]}]}",
	  "/methods/0/params/0/type" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"x\",\"type\":\"bytes\"},{\"name\":\"y\",\"type\":\"bytes\"}]}]}",
	  "only one bytes field" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"results\":[{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"x\",\"type\":\"int\"}]}]}",
	  "appears twice" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"}],\"errors\":[{\"name\":\"E\",\"code\":5}]}",
	  "/errors/0/code" },
	{ "{\"interface\":\"t\",", "not a valid interface definition" },
	/* names the generated C would choke on or alias */
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"int\",\"type\":\"int\"}]}]}",
	  "/methods/0/params/0/name: 'int' is reserved" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"ch\",\"type\":\"int\"}]}]}",
	  "'ch' is reserved" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"results\":[{\"name\":\"ret_err\",\"type\":\"int\"}]}]}",
	  "'ret_err' is reserved" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"scm__r\",\"type\":\"int\"}]}]}",
	  "is reserved" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":[{\"name\":\"data\",\"type\":\"bytes\"},{\"name\":\"data_len\",\"type\":\"uint\"}]}]}",
	  "collides with the length of bytes field 'data'" },
	{ "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"while\"}]}", "'while' is reserved" },
};

static void test_bad_table(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scm_idl *idl = NULL;
		scm_error *e = NULL;
		int r = scm_idl_parse(bad[i].text, strlen(bad[i].text), "x.json", &idl, &e);
		if (r == 0)
			fail_msg("case %zu accepted: %s", i, bad[i].text);
		assert_null(idl);
		assert_non_null(e);
		bool found = false;
		for (scm_error *x = e; x; x = x->cause)
			found |= strstr(x->message, bad[i].want) != NULL;
		if (!found)
			fail_msg("case %zu: '%s' lacks '%s'", i, e->message, bad[i].want);
		scm_error_free(e);
	}
}

static void test_echo_idl_in_tree(void **state)
{
	scm_idl *idl = NULL;
	scm_error *e = NULL;
	const char *src = getenv("SCM_SRC");
	char path[4096];
	snprintf(path, sizeof(path), "%s/stubs/idl/echo.json", src ? src : ".");
	assert_int_equal(scm_idl_load(path, &idl, &e), 0);
	assert_non_null(scm_idl_method_by_name(idl, "whoami"));
	scm_idl_free(idl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_echo_idl_in_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
