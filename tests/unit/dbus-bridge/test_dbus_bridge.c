/* test_dbus_bridge.c: the D-Bus bridge's decision (rules.c) and its typing
 * of JSON by signature (marshal.c), without a bus: table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "marshal.h"
#include "rules.h"

/* merge order, as policy/dbus.c writes it */
static const char rules_json[] =
	"[{\"bus\":\"session\",\"destination\":\"org.a.N\",\"path_prefix\":\"/org/a\",\"interface\":\"org.a.N\","
	"\"methods\":[\"Notify\"],\"args\":{\"arg0\":{\"in\":[\"mail\"]},\"arg2\":{\"range\":[0,10]}},"
	"\"allow\":true,\"priority\":20,\"origin\":\"A\"},"
	"{\"bus\":\"session\",\"destination\":\"org.a.N\",\"path_prefix\":\"/\",\"interface\":\"org.a.N\","
	"\"methods\":[\"Close\"],\"allow\":false,\"priority\":20,\"origin\":\"B\"},"
	"{\"bus\":\"session\",\"destination\":\"org.a.N\",\"path_prefix\":\"/\",\"interface\":\"org.a.N\","
	"\"methods\":\"*\",\"allow\":true,\"priority\":5,\"origin\":\"C\"},"
	"{\"bus\":\"session\",\"destination\":\"org.a.X\",\"path_prefix\":\"/\",\"interface\":\"org.a.X\","
	"\"methods\":[\"M\"],\"allow\":true,\"priority\":1,\"origin\":\"D\"},"
	"{\"bus\":\"session\",\"destination\":\"org.a.X\",\"path_prefix\":\"/\",\"interface\":\"org.a.X\","
	"\"methods\":[\"M\"],\"allow\":false,\"priority\":1,\"origin\":\"E\"}]";

static void test_decide(void **state)
{
	static const struct {
		const char *dest, *path, *iface, *method, *args;
		bool allow;
		const char *why;
	} cases[] = {
		{ "org.a.N", "/org/a", "org.a.N", "Notify", "[\"mail\",0,3]", true, "allowed by A" },
		{ "org.a.N", "/org/a/b", "org.a.N", "Notify", "[\"mail\",0,10]", true, "allowed by A" },
		{ "org.a.N", "/org/a", "org.a.N", "Notify", "[\"spam\",0,3]", false, "arg0 \"spam\"" },
		{ "org.a.N", "/org/a", "org.a.N", "Notify", "[\"mail\",0,11]", false, "arg2 11" },
		{ "org.a.N", "/org/a", "org.a.N", "Notify", "[\"mail\"]", false, "arg2 is missing" },
		{ "org.a.N", "/org/a", "org.a.N", "Notify", "[[\"s\",\"mail\"],0,1]", false, "arg0" },
		/* outside A's path: C (lower priority, every method) decides */
		{ "org.a.N", "/org/ab", "org.a.N", "Notify", "[]", true, "allowed by C" },
		{ "org.a.N", "/org/a", "org.a.N", "Close", "[]", false, "denied by B" },
		{ "org.a.N", "/org/a", "org.a.N", "Other", "[]", true, "allowed by C" },
		{ "org.a.N", "/", "org.freedesktop.DBus.Introspectable", "Introspect", "[]", false, "no dbus rule" },
		{ "org.a.Y", "/", "org.a.N", "Notify", "[]", false, "no dbus rule" },
		{ "org.a.X", "/", "org.a.X", "M", "[]", false, "disagree at the same priority" },
	};
	json_object *j = json_tokener_parse(rules_json);
	br_rules r;
	const char *why = NULL;
	assert_int_equal(br_rules_parse(j, &r, &why), 0);
	assert_int_equal(r.n, 5);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[1024];
		br_target t = { "session", cases[i].dest, cases[i].path, cases[i].iface, cases[i].method };
		json_object *a = json_tokener_parse(cases[i].args);
		bool ok = br_decide(&r, &t, a, buf, sizeof(buf));
		if (ok != cases[i].allow || !strstr(buf, cases[i].why))
			fail_msg("case %zu: %s: %s", i, ok ? "allowed" : "denied", buf);
		json_object_put(a);
	}
	/* another bus: nothing matches */
	char buf[512];
	br_target t = { "system", "org.a.N", "/org/a", "org.a.N", "Other" };
	assert_false(br_decide(&r, &t, NULL, buf, sizeof(buf)));
	/* a subscription: the member may be reached, its constraints left to
	 * each signal; denials and conflicts still deny */
	br_target s1 = { "session", "org.a.N", "/org/a", "org.a.N", "Notify" };
	assert_true(br_decide_member(&r, &s1, buf, sizeof(buf)));
	assert_false(br_decide(&r, &s1, NULL, buf, sizeof(buf)));
	br_target s2 = { "session", "org.a.N", "/org/a", "org.a.N", "Close" };
	assert_false(br_decide_member(&r, &s2, buf, sizeof(buf)));
	br_target s3 = { "session", "org.a.X", "/", "org.a.X", "M" };
	assert_false(br_decide_member(&r, &s3, buf, sizeof(buf)));
	br_target s4 = { "session", "org.a.Y", "/", "org.a.N", "Notify" };
	assert_false(br_decide_member(&r, &s4, buf, sizeof(buf)));
	br_rules_done(&r);
	json_object_put(j);
}

static void test_rules_malformed(void **state)
{
	static const char *const bad[] = {
		"{}", "[1]", "[{\"bus\":\"session\"}]",
		"[{\"bus\":\"s\",\"destination\":\"a.b\",\"path_prefix\":\"/\",\"interface\":\"a.b\",\"origin\":\"o\","
		"\"allow\":true,\"methods\":7}]",
		"[{\"bus\":\"s\",\"destination\":\"a.b\",\"path_prefix\":\"/\",\"interface\":\"a.b\",\"origin\":\"o\","
		"\"allow\":true,\"methods\":\"*\",\"args\":[]}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *j = json_tokener_parse(bad[i]);
		br_rules r;
		const char *why = NULL;
		assert_int_equal(br_rules_parse(j, &r, &why), -EINVAL);
		assert_non_null(why);
		json_object_put(j);
	}
}

static void test_marshal(void **state)
{
	static const struct {
		const char *sig, *args, *back; /* back NULL: refused, args' text in why */
		const char *why;
	} cases[] = {
		{ "susssasa{sv}i", "[\"a\",1,\"\",\"s\",\"b\",[\"x\"],{\"u\":[\"y\",1]},-1]",
		  "[\"a\",1,\"\",\"s\",\"b\",[\"x\"],{\"u\":[\"y\",1]},-1]", NULL },
		{ "(ib)a{ua(xd)}og", "[[1,true],{\"4\":[[-5,1.5]]},\"/a/b\",\"a{sv}\"]",
		  "[[1,true],{\"4\":[[-5,1.5]]},\"/a/b\",\"a{sv}\"]", NULL },
		{ "t", "[18446744073709551615]", "[18446744073709551615]", NULL },
		{ "y", "[256]", NULL, "arg0: integer out of range" },
		{ "u", "[-1]", NULL, "arg0: integer out of range" },
		{ "u", "[\"1\"]", NULL, "arg0: expected an integer" },
		{ "o", "[\"/a/\"]", NULL, "is not an object path" },
		{ "(ii)", "[[1]]", NULL, "fewer fields" },
		{ "(i)", "[[1,2]]", NULL, "more fields" },
		{ "v", "[[\"ii\",1]]", NULL, "not one complete type" },
		{ "h", "[0]", NULL, "file descriptors" },
		{ "s", "[]", NULL, "more needed" },
		{ "s", "[\"a\",\"b\"]", NULL, "1 expected" },
		{ "a{us}", "[{\"x\":\"y\"}]", NULL, "is not an integer" },
		{ "s(", "[]", NULL, "not a D-Bus signature" },
		{ "", "[]", "[]", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[512] = "";
		DBusMessage *m = dbus_message_new_method_call("org.a.B", "/a", "org.a.I", "M");
		json_object *a = json_tokener_parse(cases[i].args);
		int r = br_marshal(m, cases[i].sig, a, why, sizeof(why));
		if (cases[i].back) {
			if (r != 0)
				fail_msg("case %zu: %s", i, why);
			json_object *b = br_unmarshal(m, why, sizeof(why)), *want = json_tokener_parse(cases[i].back);
			if (!b || !json_object_equal(b, want))
				fail_msg("case %zu: got %s", i, b ? json_object_to_json_string(b) : why);
			json_object_put(b);
			json_object_put(want);
		} else if (r != -EINVAL || !strstr(why, cases[i].why)) {
			fail_msg("case %zu: r=%d why=%s", i, r, why);
		}
		json_object_put(a);
		dbus_message_unref(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_rules_malformed),
		cmocka_unit_test(test_marshal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
