/* test_policy_constraint.c: one table of argument constraints and call
 * arguments, decided three ways that must agree: libscm's
 * scm_constraint_check (the one implementation), the grant the engine
 * hands the provider run through scm_grant_check (what the skeleton does),
 * and policy_check_call (what `scmctl policy check`/`explain` print).
 * The edges are the ones tools and providers used to disagree on:
 * integers past 2^63-1, strings with an embedded NUL, unclean paths. */
#include <json-c/json.h>

#include <scm/constraint.h>

#include "helpers.h"

typedef struct ccase {
	const char *cons; /* the constraint of parameter v, compact (' quotes) */
	const char *args; /* the call's arguments, real JSON (escapes allowed) */
	bool allow;
} ccase;

static const ccase cases[] = {
	/* ranges are exact over int64 and uint64 */
	{ "{'range':[0,9223372036854775807]}", "{\"v\":18446744073709551615}", false },
	{ "{'range':[0,9223372036854775807]}", "{\"v\":9223372036854775808}", false },
	{ "{'range':[0,9223372036854775807]}", "{\"v\":9223372036854775807}", true },
	{ "{'range':[0,9223372036854775807]}", "{\"v\":0}", true },
	{ "{'range':[0,9223372036854775807]}", "{\"v\":-1}", false },
	{ "{'range':[-5,5]}", "{\"v\":-5}", true },
	{ "{'range':[-5,5]}", "{\"v\":-6}", false },
	{ "{'range':[0,9007199254740992]}", "{\"v\":9007199254740993}", false },
	{ "{'range':[0,10]}", "{\"v\":10.0}", true },
	{ "{'range':[0,10]}", "{\"v\":10.5}", false },
	{ "{'range':[0,10]}", "{\"v\":\"5\"}", false },
	{ "{'range':[0,10]}", "{\"v\":true}", false },
	{ "{'range':[0,10]}", "{}", false },
	/* eq and in: JSON types are strict, integers exact */
	{ "{'eq':9223372036854775807}", "{\"v\":18446744073709551615}", false },
	{ "{'eq':9223372036854775807}", "{\"v\":9223372036854775807}", true },
	{ "{'eq':1}", "{\"v\":1.0}", false },
	{ "{'eq':1}", "{\"v\":1}", true },
	{ "{'eq':true}", "{\"v\":1}", false },
	{ "{'eq':'abc'}", "{\"v\":\"abc\\u0000def\"}", false },
	{ "{'eq':'abc'}", "{\"v\":\"abc\"}", true },
	{ "{'in':['a','b']}", "{\"v\":\"b\\u0000x\"}", false },
	{ "{'in':['a','b']}", "{\"v\":\"b\"}", true },
	{ "{'in':[1,2]}", "{\"v\":18446744073709551615}", false },
	/* prefix: a NUL would hide the rest of the string from C code */
	{ "{'prefix':'user-'}", "{\"v\":\"user-a\"}", true },
	{ "{'prefix':'user-'}", "{\"v\":\"user-a\\u0000/../../etc\"}", false },
	{ "{'prefix':'user-'}", "{\"v\":\"user\"}", false },
	{ "{'prefix':'user-'}", "{\"v\":5}", false },
	/* path_prefix: clean absolute paths inside the directory only */
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks/a.vhdx\"}", true },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks\"}", true },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks/a\\u0000/../../etc/shadow\"}", false },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks/../../etc/x\"}", false },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks/./a\"}", false },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks//a\"}", false },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"/srv/disks2/a\"}", false },
	{ "{'path_prefix':'/srv/disks'}", "{\"v\":\"srv/disks/a\"}", false },
	/* canonicalised when the profile is parsed: the same directory */
	{ "{'path_prefix':'/srv//disks/./'}", "{\"v\":\"/srv/disks/a\"}", true },
	{ "{'path_prefix':'/'}", "{\"v\":\"/anything/at/all\"}", true },
};

static policy_effective *effective_with(const char *cons)
{
	char *dir = tmpdir_new(), buf[1024];
	snprintf(buf, sizeof(buf),
		 "{'name':'p','priority':0,'services':[{'service':'echo','methods':['greet'],"
		 "'action':'allow','args':{'v':%s}}]}",
		 cons);
	write_profile(dir, "p", buf);
	policy_store *st = load_store_or_fail(dir);
	const char *names[] = { "p" };
	policy_effective *e = NULL;
	assert_int_equal(policy_effective_build(st, names, 1, NULL, &e, NULL), 0);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
	return e;
}

static void run_case(void **state)
{
	const ccase *c = *state;
	policy_effective *e = effective_with(c->cons);
	json_object *args = json_tokener_parse(c->args);
	assert_non_null(args);

	/* the provider's view: the grant the engine issues, checked by the skeleton */
	policy_decision d;
	assert_int_equal(policy_decide(e, "echo", &d), 0);
	json_object *g = json_tokener_parse(d.grant_json), *cons = NULL;
	assert_true(json_object_object_get_ex(g, "constraints", &cons));
	scm_grant grant = { .service = "echo", .caller = "test", .constraints = cons };
	scm_error *err = NULL;
	int provider = scm_grant_check(&grant, "greet", args, &err);
	scm_error_free(err);

	/* the tools' view */
	char *why = NULL;
	int tool = policy_check_call(e, "echo", "greet", args, &why);

	/* the shared check itself */
	json_object *v = NULL, *one = NULL, *gc = NULL;
	json_object_object_get_ex(cons, "greet", &gc);
	json_object_object_get_ex(gc, "v", &one);
	bool direct = json_object_object_get_ex(args, "v", &v) && one && !scm_constraint_check(one, v);

	if ((provider == 0) != c->allow || (tool == 0) != c->allow || direct != c->allow)
		fail_msg("%s with %s: want %s; provider %d, policy check %d (%s), scm_constraint_check %s",
			 c->cons, c->args, c->allow ? "allow" : "deny", provider, tool, why ? why : "-",
			 direct ? "allow" : "deny");
	free(why);
	json_object_put(g);
	json_object_put(args);
	policy_decision_clear(&d);
	policy_effective_unref(e);
}

/* Malformed constraint objects never allow, whatever the value. */
static void test_malformed_fails_closed(void **state)
{
	static const char *const bad[] = {
		"{}", "[]", "{\"eq\":1,\"in\":[1]}", "{\"regex\":\".*\"}", "{\"range\":[0]}",
		"{\"range\":[\"a\",\"z\"]}", "{\"prefix\":5}", "{\"path_prefix\":\"rel\"}", "7",
	};
	json_object *v = json_object_new_int(1), *s = json_object_new_string("/x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *c = json_tokener_parse(bad[i]);
		if (!scm_constraint_check(c, v) || !scm_constraint_check(c, s))
			fail_msg("malformed constraint %s allowed a value", bad[i]);
		json_object_put(c);
	}
	json_object_put(v);
	json_object_put(s);
}

int main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = cases[i].args, .test_func = run_case,
						  .initial_state = (void *)&cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_malformed_fails_closed);
	return _cmocka_run_group_tests("policy constraint", tests, n, NULL, NULL);
}
