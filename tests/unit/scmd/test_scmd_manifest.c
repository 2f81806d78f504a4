/* Unit tests of the service manifest parser (scm/scmd/manifest.c), table
 * driven: what is accepted with which defaults, and that every refusal
 * names the member that is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <string.h>

#include "manifest.h"

static void accepted_with_defaults(void **state)
{
	struct manifest m;
	scm_error *e = NULL;
	const char *t = "{\"name\":\"echo\",\"interface\":\"echo\",\"exec\":[\"scm-echo\",\"-v\"]}";
	assert_int_equal(manifest_parse_text(t, strlen(t), "m.json", &m, &e), 0);
	assert_string_equal(m.name, "echo");
	assert_string_equal(m.iface, "echo");
	assert_string_equal(m.exec[0], "scm-echo");
	assert_string_equal(m.exec[1], "-v");
	assert_null(m.exec[2]);
	assert_null(m.allow);
	assert_int_equal(m.activation, ACT_ON_DEMAND);
	assert_int_equal(m.restart, RESTART_ON_FAILURE);
	assert_int_equal(m.timeout_ms, 5000);
	assert_false(m.in_container);
	assert_false(m.recover);
	manifest_done(&m);
}

static void accepted_recover(void **state)
{
	struct manifest m;
	scm_error *e = NULL;
	const char *t = "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"recover\":true}";
	assert_int_equal(manifest_parse_text(t, strlen(t), "m.json", &m, &e), 0);
	assert_true(m.recover);
	manifest_done(&m);
}

static void accepted_in_full(void **state)
{
	struct manifest m;
	scm_error *e = NULL;
	const char *t = "{\"name\":\"a-b_c.1\",\"interface\":\"gfx.v2\",\"exec\":[\"p\"],\"activation\":\"always\","
			"\"restart\":\"no\",\"timeout_ms\":600000,\"allow\":[\"host\",\"app-*\"],"
			"\"description\":\"anything\",\"container\":{\"profiles\":[\"x\",\"y\"]}}";
	assert_int_equal(manifest_parse_text(t, strlen(t), "m.json", &m, &e), 0);
	assert_int_equal(m.activation, ACT_ALWAYS);
	assert_int_equal(m.restart, RESTART_NO);
	assert_int_equal(m.timeout_ms, 600000);
	assert_string_equal(m.allow[1], "app-*");
	assert_true(m.in_container);
	assert_string_equal(m.container_profiles[1], "y");
	manifest_done(&m);
}

static void not_an_object(void **state)
{
	struct manifest m = { 0 };
	scm_error *e = NULL;
	json_object *a = json_object_new_array();
	assert_int_not_equal(manifest_parse(a, "m.json", &m, &e), 0);
	assert_string_equal(e->message, "m.json: a manifest is a JSON object");
	json_object_put(a);
	scm_error_free(e);
}

static void refused_naming_the_member(void **state)
{
	static const struct {
		const char *json, *says;
	} t[] = {
		{ "[]", "not a valid manifest" }, /* the JSON parser wants an object */
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"colour\":1}", "/colour: unknown key" },
		{ "{\"interface\":\"e\",\"exec\":[\"p\"]}", "/name: expected a string" },
		{ "{\"name\":\"E\",\"interface\":\"e\",\"exec\":[\"p\"]}", "/name: 'E' may only hold" },
		{ "{\"name\":\"a\\u0000b\",\"interface\":\"e\",\"exec\":[\"p\"]}", "/name: holds a NUL" },
		{ "{\"name\":\"e\",\"interface\":\"../x\",\"exec\":[\"p\"]}", "/interface: '../x' is not" },
		{ "{\"name\":\"e\",\"interface\":\".x\",\"exec\":[\"p\"]}", "/interface:" },
		{ "{\"name\":\"e\",\"interface\":1,\"exec\":[\"p\"]}", "/interface: expected" },
		{ "{\"name\":\"e\",\"interface\":\"e\"}", "/exec: expected a command" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[]}", "/exec:" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"\"]}", "/exec: expected non-empty strings" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"allow\":\"*\"}", "/allow: expected an array" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"activation\":\"now\"}", "/activation:" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"restart\":true}", "/restart:" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"timeout_ms\":0}", "/timeout_ms:" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"timeout_ms\":\"5\"}", "/timeout_ms:" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"container\":1}", "/container: expected" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"recover\":1}", "/recover: expected true or false" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"recover\":\"yes\"}", "/recover: expected true or false" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"recover\":true,\"container\":true}", "/recover: a provider in a container" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"container\":{\"rootfs\":1}}", "/container/rootfs: unknown key" },
		{ "{\"name\":\"e\",\"interface\":\"e\",\"exec\":[\"p\"],\"container\":{\"profiles\":[1]}}", "/container/profiles:" },
		{ "{\"name\":", "not a valid manifest" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct manifest m = { 0 };
		scm_error *e = NULL;
		int r = manifest_parse_text(t[i].json, strlen(t[i].json), "m.json", &m, &e);
		if (r == 0)
			fail_msg("row %zu accepted: %s", i, t[i].json);
		assert_non_null(e);
		if (!strstr(e->message, t[i].says) || strncmp(e->message, "m.json", 6) != 0)
			fail_msg("row %zu: '%s' does not say '%s'", i, e->message, t[i].says);
		assert_null(m.name); /* untouched on failure */
		scm_error_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepted_with_defaults),
		cmocka_unit_test(accepted_recover),
		cmocka_unit_test(accepted_in_full),
		cmocka_unit_test(not_an_object),
		cmocka_unit_test(refused_naming_the_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
