/* Unit tests of grant constraint checks, as a table: constraint, argument
 * object, method, expected outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "scm/scm.h"

static const struct {
	const char *constraints, *method, *args;
	int want;
} cases[] = {
	{ "{}", "open", "{\"path\":\"/x\"}", 0 },
	{ "{\"open\":{\"ro\":{\"eq\":true}}}", "open", "{\"ro\":true}", 0 },
	{ "{\"open\":{\"ro\":{\"eq\":true}}}", "open", "{\"ro\":false}", SCM_E_DENIED },
	{ "{\"open\":{\"ro\":{\"eq\":true}}}", "open", "{}", SCM_E_DENIED },
	{ "{\"open\":{\"ro\":{\"eq\":true}}}", "close", "{}", 0 },
	{ "{\"open\":{\"name\":{\"prefix\":\"vm-\"}}}", "open", "{\"name\":\"vm-1\"}", 0 },
	{ "{\"open\":{\"name\":{\"prefix\":\"vm-\"}}}", "open", "{\"name\":\"xvm-1\"}", SCM_E_DENIED },
	{ "{\"open\":{\"name\":{\"prefix\":\"vm-\"}}}", "open", "{\"name\":7}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks\"}}}", "open", "{\"p\":\"/srv/disks/a.vhdx\"}", 0 },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks\"}}}", "open", "{\"p\":\"/srv/disks\"}", 0 },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks\"}}}", "open", "{\"p\":\"/srv/disks2/a\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks\"}}}", "open", "{\"p\":\"/srv/disks/../etc/shadow\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks\"}}}", "open", "{\"p\":\"/srv/disks/..\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv/disks/\"}}}", "open", "{\"p\":\"/srv/disks//x\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/\"}}}", "open", "{\"p\":\"/anything\"}", 0 },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv\"}}}", "open", "{\"p\":\"srv/x\"}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[0,4096]}}}", "read", "{\"len\":4096}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[0,4096]}}}", "read", "{\"len\":4097}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[0,4096]}}}", "read", "{\"len\":-1}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[0.5,1.5]}}}", "read", "{\"len\":1.0}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[0,10]}}}", "read", "{\"len\":\"5\"}", SCM_E_DENIED },
	{ "{\"set\":{\"mode\":{\"in\":[\"a\",\"b\"]}}}", "set", "{\"mode\":\"b\"}", 0 },
	{ "{\"set\":{\"mode\":{\"in\":[\"a\",\"b\"]}}}", "set", "{\"mode\":\"c\"}", SCM_E_DENIED },
	{ "{\"*\":{\"tenant\":{\"eq\":\"t1\"}}}", "any", "{\"tenant\":\"t1\"}", 0 },
	{ "{\"*\":{\"tenant\":{\"eq\":\"t1\"}}}", "any", "{\"tenant\":\"t2\"}", SCM_E_DENIED },
	{ "{\"open\":{\"x\":{\"regex\":\".*\"}}}", "open", "{\"x\":\"y\"}", SCM_E_DENIED }, /* unknown: fail closed */
	/* an int against fractional bounds is compared exactly, not truncated */
	{ "{\"read\":{\"len\":{\"range\":[0.5,10]}}}", "read", "{\"len\":0}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[0.5,10]}}}", "read", "{\"len\":1}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[0,10.5]}}}", "read", "{\"len\":10}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[0,10.5]}}}", "read", "{\"len\":11}", SCM_E_DENIED },
	/* values json-c keeps as uint64 above INT64_MAX */
	{ "{\"read\":{\"len\":{\"range\":[0,9223372036854775807]}}}", "read", "{\"len\":18446744073709551615}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[0,18446744073709551615]}}}", "read", "{\"len\":18446744073709551614}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[-5,18446744073709551615]}}}", "read", "{\"len\":-3}", 0 },
	{ "{\"read\":{\"len\":{\"range\":[-5,18446744073709551615]}}}", "read", "{\"len\":-6}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[18446744073709551614,18446744073709551615]}}}", "read", "{\"len\":5}", SCM_E_DENIED },
	/* malformed constraints fail closed instead of crashing */
	{ "{\"read\":{\"len\":{\"range\":[\"a\",\"z\"]}}}", "read", "{\"len\":0}", SCM_E_DENIED },
	{ "{\"read\":{\"len\":{\"range\":[null,null]}}}", "read", "{\"len\":0}", SCM_E_DENIED },
	{ "{\"open\":{\"name\":{\"prefix\":null}}}", "open", "{\"name\":\"x\"}", SCM_E_DENIED },
	{ "{\"open\":{\"name\":{\"prefix\":7}}}", "open", "{\"name\":\"7x\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":null}}}", "open", "{\"p\":\"/x\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"\"}}}", "open", "{\"p\":\"/etc/shadow\"}", SCM_E_DENIED },
	{ "{\"open\":{\"p\":{\"path_prefix\":\"srv\"}}}", "open", "{\"p\":\"/srv/x\"}", SCM_E_DENIED },
	/* a string with a NUL is not what C code downstream would read */
	{ "{\"open\":{\"p\":{\"path_prefix\":\"/srv\"}}}", "open", "{\"p\":\"/srv/a\\u0000/../../etc\"}", SCM_E_DENIED },
	{ "{\"open\":{\"name\":{\"prefix\":\"vm-\"}}}", "open", "{\"name\":\"vm-\\u0000x\"}", SCM_E_DENIED },
	{ "{\"open\":{\"name\":{\"prefix\":\"vm-\"}}}", "open", "{\"name\":null}", SCM_E_DENIED },
	/* a per-method set or the whole grant that is not an object (found by
	 * fuzz_wire: foreach on an int crashed) */
	{ "{\"m\":0}", "m", "{}", SCM_E_DENIED },
	{ "{\"*\":[1]}", "m", "{}", SCM_E_DENIED },
	{ "[]", "m", "{}", SCM_E_DENIED },
	{ "{\"m\":{\"x\":5}}", "m", "{\"x\":5}", SCM_E_DENIED },
};

/* A NaN (json-c builds one from "NaN"; the wire refuses it, a provider
 * may still be handed one by other code) is outside every range. */
static void test_nan_is_outside_every_range(void **state)
{
	json_object *c = json_tokener_parse("{\"m\":{\"x\":{\"range\":[0,100]}}}");
	const double bad[] = { NAN, INFINITY, -INFINITY };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "x", json_object_new_double(bad[i]));
		scm_grant g = { .constraints = c };
		scm_error *e = NULL;
		assert_int_equal(scm_grant_check(&g, "m", a, &e), SCM_E_DENIED);
		assert_non_null(e);
		scm_error_free(e);
		json_object_put(a);
	}
	json_object_put(c);
}

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *c = json_tokener_parse(cases[i].constraints), *a = json_tokener_parse(cases[i].args);
		scm_grant g = { .constraints = c };
		scm_error *e = NULL;
		int r = scm_grant_check(&g, cases[i].method, a, &e);
		if (r != cases[i].want)
			fail_msg("case %zu (%s %s %s): got %d want %d", i, cases[i].constraints, cases[i].method,
				 cases[i].args, r, cases[i].want);
		if (r)
			assert_non_null(e);
		scm_error_free(e);
		json_object_put(c);
		json_object_put(a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nan_is_outside_every_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
