/* test_dbus_export: the mapping of an scm interface to D-Bus
 * (scm/manager/export-map.c): names, signatures, introspection, a call's
 * arguments read by the IDL and a reply written back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "export-map.h"
#include "export-opts.h"

static const char idl_text[] =
	"{\"interface\":\"t\",\"version\":1,\"methods\":["
	"{\"name\":\"ping\"},"
	"{\"name\":\"read_fd\",\"params\":[{\"name\":\"file\",\"type\":\"fd\"},{\"name\":\"max\",\"type\":\"uint\"}],"
	"\"results\":[{\"name\":\"data\",\"type\":\"bytes\"}]},"
	"{\"name\":\"set\",\"params\":[{\"name\":\"on\",\"type\":\"bool\"},{\"name\":\"n\",\"type\":\"int\"},"
	"{\"name\":\"x\",\"type\":\"double\"},{\"name\":\"cfg\",\"type\":\"json\"},{\"name\":\"blob\",\"type\":\"bytes\"}],"
	"\"results\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"cfg\",\"type\":\"json\"}]}]}";

static void test_names(void **state)
{
	scm_idl *idl = NULL;
	char buf[64];
	assert_int_equal(scm_idl_parse(idl_text, strlen(idl_text), "t", &idl, NULL), 0);
	assert_true(xp_member("read_fd", buf, sizeof(buf)));
	assert_string_equal(buf, "ReadFd");
	assert_false(xp_member("read_fd", buf, 4));
	assert_ptr_equal(xp_method_by_member(idl, "Set"), &idl->methods[2]);
	assert_null(xp_method_by_member(idl, "set"));
	assert_null(xp_method_by_member(idl, NULL));
	assert_true(xp_signature(idl->methods[2].params, idl->methods[2].n_params, buf, sizeof(buf)));
	assert_string_equal(buf, "bxdsay");
	assert_true(xp_signature(idl->methods[1].params, idl->methods[1].n_params, buf, sizeof(buf)));
	assert_string_equal(buf, "ht");
	char *xml = xp_introspect(idl, "org.example.T");
	assert_non_null(strstr(xml, "<interface name='org.example.T'>"));
	assert_non_null(strstr(xml, "<method name='ReadFd'><arg type='h' name='file' direction='in'/>"
				    "<arg type='t' name='max' direction='in'/><arg type='ay' name='data' direction='out'/>"));
	free(xml);
	scm_idl_free(idl);
}

static void test_call_and_reply(void **state)
{
	scm_idl *idl = NULL;
	char why[256];
	assert_int_equal(scm_idl_parse(idl_text, strlen(idl_text), "t", &idl, NULL), 0);
	const scm_idl_method *set = &idl->methods[2];
	DBusMessage *m = dbus_message_new_method_call("org.example.T", "/", "org.example.T", "Set");
	dbus_message_set_serial(m, 1); /* as if it came from a bus: a reply needs it */
	dbus_bool_t on = TRUE;
	dbus_int64_t n = -3;
	double x = 0.5;
	const char *cfg = "{\"a\":[1]}";
	const unsigned char blob[] = { 0, 1, 2 }, *bp = blob;
	assert_true(dbus_message_append_args(m, DBUS_TYPE_BOOLEAN, &on, DBUS_TYPE_INT64, &n, DBUS_TYPE_DOUBLE, &x,
					     DBUS_TYPE_STRING, &cfg, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &bp, 3,
					     DBUS_TYPE_INVALID));
	xp_call c = { 0 };
	assert_int_equal(xp_call_from_dbus(set, m, &c, why, sizeof(why)), 0);
	assert_string_equal(json_object_to_json_string_ext(c.args, JSON_C_TO_STRING_PLAIN),
			    "{\"on\":true,\"n\":-3,\"x\":0.5,\"cfg\":{\"a\":[1]}}");
	assert_int_equal(c.bin_len, 3);
	assert_memory_equal(c.bin, blob, 3);
	/* the reply: results by name, json as its text */
	json_object *res = json_tokener_parse("{\"name\":\"n\",\"cfg\":{\"b\":2}}");
	scm_message reply = { .json = res };
	DBusMessage *out = dbus_message_new_method_return(m);
	assert_int_equal(xp_reply_to_dbus(set, &reply, out, why, sizeof(why)), 0);
	assert_string_equal(dbus_message_get_signature(out), "ss");
	dbus_message_unref(out);
	/* a result of the wrong type is the provider's fault, said so */
	json_object_object_add(res, "name", json_object_new_int(1));
	out = dbus_message_new_method_return(m);
	assert_int_equal(xp_reply_to_dbus(set, &reply, out, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "result name is not a string"));
	dbus_message_unref(out);
	json_object_put(res);
	xp_call_done(&c);
	dbus_message_unref(m);
	/* another signature, JSON that does not parse */
	m = dbus_message_new_method_call("org.example.T", "/", "org.example.T", "Set");
	assert_true(dbus_message_append_args(m, DBUS_TYPE_INT32, &on, DBUS_TYPE_INVALID));
	assert_int_equal(xp_call_from_dbus(set, m, &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "expected arguments of signature 'bxdsay', got 'i'"));
	dbus_message_unref(m);
	m = dbus_message_new_method_call("org.example.T", "/", "org.example.T", "Set");
	cfg = "{\"a\":1} trailing";
	assert_true(dbus_message_append_args(m, DBUS_TYPE_BOOLEAN, &on, DBUS_TYPE_INT64, &n, DBUS_TYPE_DOUBLE, &x,
					     DBUS_TYPE_STRING, &cfg, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &bp, 0,
					     DBUS_TYPE_INVALID));
	assert_int_equal(xp_call_from_dbus(set, m, &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "cfg: not one JSON value"));
	dbus_message_unref(m);
	scm_idl_free(idl);
}

/* the bounds' options: counts, and --call-timeout's seconds in ms */
static void test_bounds(void **state)
{
	int v = -1;
	(void)state;
	assert_true(xp_parse_bound("2", "--max-calls", 65536, &v) && v == 2);
	assert_true(xp_parse_bound("65536", "--max-calls", 65536, &v) && v == 65536);
	assert_true(xp_parse_bound("0.5", "--call-timeout", 3600, &v) && v == 500);
	assert_true(xp_parse_bound("25", "--call-timeout", 3600, &v) && v == 25000);
	v = 7;
	const char *bad_count[] = { "0", "-1", "", "1x", "65537", "99999999999999999999", "0.5" };
	for (size_t i = 0; i < sizeof(bad_count) / sizeof(*bad_count); i++)
		assert_false(xp_parse_bound(bad_count[i], "--max-calls", 65536, &v));
	const char *bad_secs[] = { "0", "0.0001", "1s", "", "nan", "inf", "3601", "-2" };
	for (size_t i = 0; i < sizeof(bad_secs) / sizeof(*bad_secs); i++)
		assert_false(xp_parse_bound(bad_secs[i], "--call-timeout", 3600, &v));
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_call_and_reply),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
