/* test_policy_dbus.c: the "dbus" rules of profiles (policy/dbus.c):
 * parsed, refused with the JSON pointer named (and what a rule can never
 * grant: the bus daemon, unique names), and merged by priority into the
 * list a dbus bridge grant carries. */
#include <json-c/json.h>

#include "helpers.h"

#define DR(extra) "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/'," \
		   "'interface':'org.a.I','methods':['M'],'action':'allow'" extra "}]}"

static void test_parse(void **state)
{
	static const struct {
		const char *json, *error; /* error NULL: parses */
	} t[] = {
		{ DR(""), NULL },
		{ DR(",'args':{'arg0':{'eq':'x'},'arg63':{'range':[0,5]}}"), NULL },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'unix:path=/run/a,guid=1','destination':'org.a-b.C',"
		  "'path_prefix':'/org/a_1','interface':'org.a.I','methods':'*','action':'deny'}]}", NULL },
		{ "{'name':'p','priority':1,'dbus':{}}", "/dbus: expected an array" },
		{ DR(",'bogus':1"), "/dbus/0/bogus: unknown key" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session'}]}", "/dbus/0: missing \"destination\"" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'sess ion','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['M'],'action':'allow'}]}", "/dbus/0/bus" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.freedesktop.DBus',"
		  "'path_prefix':'/','interface':'org.a.I','methods':['M'],'action':'allow'}]}",
		  "/dbus/0/destination: the bus daemon is never granted" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':':1.5','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['M'],'action':'allow'}]}", "is a unique name" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.1a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['M'],'action':'allow'}]}", "/dbus/0/destination" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'//x',"
		  "'interface':'org.a.I','methods':['M'],'action':'allow'}]}", "/dbus/0/path_prefix" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'single','methods':['M'],'action':'allow'}]}", "/dbus/0/interface" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['1M'],'action':'allow'}]}", "/dbus/0/methods/0" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['M','M'],'action':'allow'}]}", "appears twice" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':[],'action':'allow'}]}", "non-empty array" },
		{ DR(",'args':{'arg64':{'eq':1}}"), "/dbus/0/args/arg64: expected an argument position" },
		{ DR(",'args':{'arg01':{'eq':1}}"), "/dbus/0/args/arg01" },
		{ DR(",'args':{'name':{'eq':1}}"), "/dbus/0/args/name" },
		{ DR(",'args':{'arg0':{'like':1}}"), "/dbus/0/args/arg0" },
		{ "{'name':'p','priority':1,'dbus':[{'bus':'session','destination':'org.a.B','path_prefix':'/',"
		  "'interface':'org.a.I','methods':['M'],'action':'deny','args':{'arg0':{'eq':1}}}]}",
		  "a deny rule cannot carry args" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *j = J(t[i].json);
		policy_profile *p = NULL;
		scm_error *err = NULL;
		int r = policy_profile_parse("p.json", j, strlen(j), &p, &err);
		if (!t[i].error && r != 0)
			fail_msg("case %zu: %s", i, err->message);
		if (t[i].error && (r != SCM_E_INVALID || !strstr(err->message, t[i].error)))
			fail_msg("case %zu: %s, want %s", i, err ? err->message : "parsed", t[i].error);
		scm_error_free(err);
		policy_profile_free(p);
		free(j);
	}
}

/* merge order into the grant's list: priority, then name, then position */
static void test_merge(void **state)
{
	char *dir = tmpdir_new();
	write_profile(dir, "low", "{'name':'low','priority':1,'dbus':[{'bus':'session','destination':'org.a.B',"
				  "'path_prefix':'/','interface':'org.a.I','methods':'*','action':'allow'}]}");
	write_profile(dir, "high", "{'name':'high','priority':9,'dbus':[{'bus':'session','destination':'org.a.B',"
				   "'path_prefix':'/x','interface':'org.a.I','methods':['Quit'],'action':'deny'},"
				   "{'bus':'system','destination':'org.a.C','path_prefix':'/','interface':'org.a.I',"
				   "'methods':['Get'],'args':{'arg0':{'prefix':'org.'}},'action':'allow'}]}");
	policy_store *st = load_store_or_fail(dir);
	policy_effective *e = NULL;
	scm_error *err = NULL;
	const char *names[] = { "low", "high" };
	assert_int_equal(policy_effective_build(st, names, 2, NULL, &e, &err), 0);
	json_object *rules = NULL, *v;
	assert_int_equal(policy_grant_rules(e, "dbus", &rules, &err), 0);
	assert_int_equal(json_object_array_length(rules), 3);
	static const char *const want[] = { "high.json#/dbus/0", "high.json#/dbus/1", "low.json#/dbus/0" };
	for (size_t i = 0; i < 3; i++) {
		assert_true(json_object_object_get_ex(json_object_array_get_idx(rules, i), "origin", &v));
		if (!strstr(json_object_get_string(v), want[i]))
			fail_msg("rule %zu: %s, want %s", i, json_object_get_string(v), want[i]);
	}
	json_object *second = json_object_array_get_idx(rules, 1);
	assert_true(json_object_object_get_ex(second, "args", &v));
	assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), "{\"arg0\":{\"prefix\":\"org.\"}}");
	assert_true(json_object_object_get_ex(json_object_array_get_idx(rules, 2), "methods", &v));
	assert_string_equal(json_object_get_string(v), "*");
	json_object_put(rules);
	/* and the effective profile lists them */
	json_object *x = NULL;
	assert_int_equal(policy_effective_to_json(e, &x, &err), 0);
	assert_true(json_object_object_get_ex(x, "dbus", &v));
	assert_int_equal(json_object_array_length(v), 3);
	json_object_put(x);
	policy_effective_unref(e);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* lint: equal-priority rules of the other action that some call matches
 * both are a conflict; rules that cannot meet are not */
static void test_lint(void **state)
{
	static const struct {
		const char *a, *b;
		size_t errors;
	} t[] = {
		{ "'path_prefix':'/','methods':['M']", "'path_prefix':'/x','methods':['M','N']", 1 },
		{ "'path_prefix':'/x','methods':'*'", "'path_prefix':'/','methods':['Q']", 1 },
		{ "'path_prefix':'/x','methods':['M']", "'path_prefix':'/y','methods':['M']", 0 },
		{ "'path_prefix':'/','methods':['M']", "'path_prefix':'/','methods':['N']", 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *dir = tmpdir_new(), buf[1024];
		snprintf(buf, sizeof(buf),
			 "{'name':'p','priority':3,'dbus':[{'bus':'session','destination':'org.a.B','interface':'org.a.I',"
			 "%s,'action':'allow'},{'bus':'session','destination':'org.a.B','interface':'org.a.I',%s,"
			 "'action':'deny'}]}", t[i].a, t[i].b);
		write_profile(dir, "p", buf);
		policy_store *st = load_store_or_fail(dir);
		policy_lint_report *rep = NULL;
		scm_error *err = NULL;
		assert_int_equal(policy_lint(st, NULL, NULL, 0, &rep, &err), 0);
		size_t errors = 0;
		for (size_t k = 0; k < rep->n_findings; k++)
			errors += rep->findings[k].severity == POLICY_LINT_ERROR &&
				  strcmp(rep->findings[k].kind, "conflict") == 0;
		if (errors != t[i].errors)
			fail_msg("case %zu: %zu conflicts, want %zu", i, errors, t[i].errors);
		policy_lint_report_free(rep);
		policy_store_free(st);
		rm_rf(dir);
		free(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_lint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
