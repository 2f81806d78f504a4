/* Unit tests of the IDL parser: what it accepts, and that each way of
 * getting a definition wrong is refused with the JSON pointer named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "scm/idl.h"
#include <json-c/json.h>

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
	assert_int_equal(idl->n_settings, 0);
	scm_idl_free(idl);
}

/* Settings: a profile rule sets them, the provider reads them; the IDL
 * says which exist, their type and range. */
static void test_settings(void **state)
{
	const char *t = "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\",\"params\":["
			"{\"name\":\"p\",\"type\":\"string\",\"format\":\"path\"},{\"name\":\"q\",\"type\":\"string\"}]}],"
			"\"settings\":[{\"name\":\"weight\",\"type\":\"uint\",\"min\":1,\"max\":10000,\"doc\":\"w\"},"
			"{\"name\":\"label\",\"type\":\"string\"},{\"name\":\"on\",\"type\":\"bool\"},"
			"{\"name\":\"off\",\"type\":\"int\",\"min\":-5,\"max\":5},{\"name\":\"f\",\"type\":\"double\"}]}";
	scm_idl *idl = NULL;
	scm_error *e = NULL;
	if (scm_idl_parse(t, strlen(t), "t.json", &idl, &e) != 0)
		fail_msg("refused: %s", e ? e->message : "?");
	assert_true(idl->methods[0].params[0].is_path);
	assert_false(idl->methods[0].params[1].is_path);
	assert_int_equal(idl->n_settings, 5);
	const scm_idl_setting *w = scm_idl_setting_by_name(idl, "weight");
	assert_non_null(w);
	assert_true(w->has_range);
	assert_int_equal(w->min, 1);
	assert_int_equal(w->max, 10000);
	assert_null(scm_idl_setting_by_name(idl, "nope"));
	static const struct {
		const char *setting, *value;
		bool ok;
	} vals[] = {
		{ "weight", "1", true },      { "weight", "10000", true },  { "weight", "0", false },
		{ "weight", "10001", false }, { "weight", "\"3\"", false }, { "weight", "3.0", false },
		{ "weight", "18446744073709551615", false },                { "weight", "-1", false },
		{ "label", "\"x\"", true },   { "label", "1", false },      { "on", "true", true },
		{ "on", "1", false },         { "off", "-5", true },        { "off", "6", false },
		{ "f", "1.5", true },         { "f", "2", true },           { "f", "\"2\"", false },
	};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct json_object *v = json_tokener_parse(vals[i].value);
		const char *why = scm_idl_setting_check(scm_idl_setting_by_name(idl, vals[i].setting), v);
		if ((why == NULL) != vals[i].ok)
			fail_msg("%s = %s: want %s, got %s", vals[i].setting, vals[i].value,
				 vals[i].ok ? "ok" : "refused", why ? why : "ok");
		json_object_put(v);
	}
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
#define S(x) "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"}],\"settings\":" x "}"
	{ S("{}"), "/settings: expected an array" },
	{ S("[{\"name\":\"w\",\"type\":\"fd\"}]"), "/settings/0/type" },
	{ S("[{\"name\":\"w\",\"type\":\"json\"}]"), "/settings/0/type" },
	{ S("[{\"name\":\"w\"}]"), "/settings/0/type" },
	{ S("[{\"name\":\"W x\",\"type\":\"uint\"}]"), "/settings/0/name" },
	{ S("[{\"name\":\"w\",\"type\":\"uint\"},{\"name\":\"w\",\"type\":\"int\"}]"), "/settings/1/name: setting 'w' appears twice" },
	{ S("[{\"name\":\"w\",\"type\":\"uint\",\"min\":1}]"), "/settings/0: a range has both min and max" },
	{ S("[{\"name\":\"w\",\"type\":\"uint\",\"min\":5,\"max\":1}]"), "min is greater than max" },
	{ S("[{\"name\":\"w\",\"type\":\"uint\",\"min\":-1,\"max\":1}]"), "/settings/0/min" },
	{ S("[{\"name\":\"w\",\"type\":\"string\",\"min\":1,\"max\":2}]"), "only an int or uint setting has a range" },
	{ S("[{\"name\":\"w\",\"type\":\"uint\",\"mni\":1}]"), "/settings/0/mni: unknown key" },
#undef S
#define G(x) "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"}],\"grant_rules\":" x "}"
	{ G("\"clipboard\""), "/grant_rules: expected an array" },
	{ G("[\"Clip board\"]"), "/grant_rules/0: expected a lower-case C identifier" },
	{ G("[1]"), "/grant_rules/0: expected a lower-case C identifier" },
	{ G("[\"clipboard\",\"clipboard\"]"), "/grant_rules/1: 'clipboard' appears twice" },
	{ G("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]"), "/grant_rules: expected an array of at most 8" },
#undef G
};

/* The kinds of profile rule a provider is handed with each grant. */
static void test_grant_rules(void **state)
{
	const char *t = "{\"interface\":\"t\",\"version\":1,\"methods\":[{\"name\":\"a\"}],"
			"\"grant_rules\":[\"clipboard\",\"other\"]}";
	scm_idl *idl = NULL;
	scm_error *e = NULL;
	if (scm_idl_parse(t, strlen(t), "t.json", &idl, &e) != 0)
		fail_msg("refused: %s", e ? e->message : "?");
	assert_int_equal(idl->n_grant_rules, 2);
	assert_string_equal(idl->grant_rules[0], "clipboard");
	assert_string_equal(idl->grant_rules[1], "other");
	assert_null(idl->grant_rules[2]);
	scm_idl_free(idl);
	(void)state;
}

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
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_grant_rules),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_echo_idl_in_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
