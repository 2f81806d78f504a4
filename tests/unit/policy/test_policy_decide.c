/* test_policy_decide.c: connect decisions and the grants they carry
 * (checked against libscm's own scm_grant_check, which providers run), the
 * glob slow path, reference counting, and the re-check of live grants
 * after a reload. */
#include <json-c/json.h>

#include "helpers.h"

typedef struct grant_case {
	const char *title;
	const char *rules;   /* profile "p" priority 0 services, compact */
	const char *rules2;  /* profile "q" priority 10, or NULL */
	const char *service;
	int code;            /* 0 or SCM_E_DENIED */
	const char *grant;   /* expected grant JSON (compact, ' quotes) */
	const char *origin;  /* substring of the origin */
} grant_case;

static const grant_case cases[] = {
	{ "methods listed in name order", "{'service':'echo','methods':['ping','echo'],'action':'allow'}", NULL, "echo", 0,
	  "{'methods':['echo','ping'],'constraints':{}}", "allowed by profile 'p'" },
	{ "star expands against the IDL", "{'service':'gfx','methods':'*','action':'allow'}", NULL, "gfx", 0,
	  "{'methods':['draw','present'],'constraints':{}}", "p.json#/services/0" },
	{ "constraints travel with the grant",
	  "{'service':'vdisk','methods':['open','read'],'action':'allow','args':{'path':{'path_prefix':'/d'}}}", NULL,
	  "vdisk", 0,
	  "{'methods':['open','read'],'constraints':{'open':{'path':{'path_prefix':'/d'}},'read':{'path':{'path_prefix':'/d'}}}}",
	  NULL },
	{ "denied methods are left out", "{'service':'echo','methods':'*','action':'allow'}",
	  "{'service':'echo','methods':['crash','sleep'],'action':'deny'}", "echo", 0,
	  "{'methods':['echo','greet','ping'],'constraints':{}}", NULL },
	{ "all denied is a denied connect", "{'service':'echo','methods':'*','action':'allow'}",
	  "{'service':'echo','methods':'*','action':'deny'}", "echo", SCM_E_DENIED, NULL, "denied by profile 'q'" },
	{ "default deny says so", "{'service':'echo','methods':'*','action':'allow'}", NULL, "gfx", SCM_E_DENIED, NULL,
	  "denied by default: no rule allows service gfx" },
	{ "conflict says so", "{'service':'echo','methods':['ping'],'action':'allow'},"
			      "{'service':'echo','methods':['ping'],'action':'deny'}", NULL, "echo", SCM_E_DENIED, NULL,
	  "conflicts with" },
	{ "unknown service through a glob gets *", "{'service':'ext-*','methods':'*','action':'allow'}", NULL, "ext-foo", 0,
	  "{'methods':'*','constraints':{}}", "allowed by" },
	{ "unknown service, named methods", "{'service':'ext-*','methods':['a','b'],'action':'allow'}", NULL, "ext-foo", 0,
	  "{'methods':['a','b'],'constraints':{}}", NULL },
	{ "unknown service, star minus a deny", "{'service':'ext-*','methods':'*','action':'allow'}",
	  "{'service':'ext-foo','methods':['b'],'action':'deny'}", "ext-foo", SCM_E_DENIED, NULL,
	  "denied by profile 'q'" },
	{ "invalid service name", "{'service':'*','methods':'*','action':'allow'}", NULL, "../x", SCM_E_DENIED, NULL,
	  "not a valid service name" },
};

static policy_effective *effective_of(const char *rules, const char *rules2, policy_idl_set *idl)
{
	char *dir = tmpdir_new(), buf[2048];
	snprintf(buf, sizeof(buf), "{'name':'p','priority':0,'services':[%s]}", rules);
	write_profile(dir, "p", buf);
	if (rules2) {
		snprintf(buf, sizeof(buf), "{'name':'q','priority':10,'services':[%s]}", rules2);
		write_profile(dir, "q", buf);
	}
	policy_store *st = load_store_or_fail(dir);
	const char *names[] = { "p", "q" };
	policy_effective *e = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_effective_build(st, names, rules2 ? 2 : 1, idl, &e, &err), 0);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
	return e;
}

static void run_case(void **state)
{
	const grant_case *c = *state;
	policy_idl_set *idl = test_idl();
	policy_effective *e = effective_of(c->rules, c->rules2, idl);
	policy_decision d;
	int r = policy_decide(e, c->service, &d);
	assert_int_equal(r, c->code);
	assert_int_equal(d.allowed, c->code == 0);
	assert_non_null(d.origin);
	if (c->origin && !strstr(d.origin, c->origin))
		fail_msg("origin \"%s\" lacks \"%s\"", d.origin, c->origin);
	if (c->grant) {
		char *want = J(c->grant);
		json_object *a = json_tokener_parse(want), *b = json_tokener_parse(d.grant_json);
		if (!json_object_equal(a, b))
			fail_msg("grant %s, want %s", d.grant_json, want);
		json_object_put(a);
		json_object_put(b);
		free(want);
	} else {
		assert_null(d.grant_json);
	}
	policy_decision_clear(&d);
	policy_effective_unref(e);
	policy_idl_set_free(idl);
}

/* The grant policy hands out, enforced by libscm's skeleton check, agrees
 * with the engine's own verdict for the same calls. */
static void test_grant_matches_libscm(void **state)
{
	static const struct {
		const char *method, *args;
	} calls[] = {
		{ "open", "{'path':'/data/a','readonly':true}" }, { "open", "{'path':'/data/a','readonly':false}" },
		{ "open", "{'path':'/etc/x','readonly':true}" },  { "open", "{'path':'/data/../x','readonly':true}" },
		{ "open", "{'readonly':true}" },                  { "read", "{'offset':10,'len':4096}" },
		{ "read", "{'offset':10,'len':4097}" },           { "read", "{'offset':10,'len':-1}" },
		{ "read", "{'offset':10,'len':'1'}" },
	};
	policy_idl_set *idl = test_idl();
	policy_effective *e = effective_of(
		"{'service':'vdisk','methods':['open'],'action':'allow','args':{'path':{'path_prefix':'/data'},"
		"'readonly':{'in':[true]}}},{'service':'vdisk','methods':['read'],'action':'allow','args':"
		"{'len':{'range':[0,4096]}}}",
		NULL, idl);
	policy_decision d;
	assert_int_equal(policy_decide(e, "vdisk", &d), 0);
	json_object *g = json_tokener_parse(d.grant_json), *cons = NULL;
	assert_true(json_object_object_get_ex(g, "constraints", &cons));
	scm_grant grant = { .service = "vdisk", .caller = "test", .constraints = cons };
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		char *a = J(calls[i].args);
		json_object *aj = json_tokener_parse(a);
		scm_error *err = NULL;
		int lib = scm_grant_check(&grant, calls[i].method, aj, &err);
		int ours = policy_check_call(e, "vdisk", calls[i].method, aj, NULL);
		if ((lib == 0) != (ours == 0))
			fail_msg("%s %s: libscm says %d, policy says %d", calls[i].method, a, lib, ours);
		scm_error_free(err);
		json_object_put(aj);
		free(a);
	}
	json_object_put(g);
	policy_decision_clear(&d);
	policy_effective_unref(e);
	policy_idl_set_free(idl);
}

typedef struct recheck_case {
	const char *title;
	const char *old_rules, *new_rules;
	bool keep;
} recheck_case;

static const recheck_case rechecks[] = {
	{ "unchanged", "{'service':'echo','methods':['ping'],'action':'allow'}",
	  "{'service':'echo','methods':['ping'],'action':'allow'}", true },
	{ "widened", "{'service':'echo','methods':['ping'],'action':'allow'}",
	  "{'service':'echo','methods':'*','action':'allow'}", true },
	{ "method removed", "{'service':'echo','methods':['ping','echo'],'action':'allow'}",
	  "{'service':'echo','methods':['ping'],'action':'allow'}", false },
	{ "everything denied", "{'service':'echo','methods':['ping'],'action':'allow'}",
	  "{'service':'echo','methods':['ping'],'action':'deny'}", false },
	{ "constraint added", "{'service':'echo','methods':['greet'],'action':'allow'}",
	  "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'a'}}}", false },
	{ "constraint dropped", "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'a'}}}",
	  "{'service':'echo','methods':['greet'],'action':'allow'}", true },
	{ "prefix narrowed", "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'a'}}}",
	  "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'ab'}}}", false },
	{ "prefix widened", "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'ab'}}}",
	  "{'service':'echo','methods':['greet'],'action':'allow','args':{'name':{'prefix':'a'}}}", true },
	{ "range narrowed", "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'range':[0,10]}}}",
	  "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'range':[0,5]}}}", false },
	{ "range widened", "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'range':[2,5]}}}",
	  "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'range':[0,10]}}}", true },
	{ "eq inside new in", "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'eq':3}}}",
	  "{'service':'echo','methods':['sleep'],'action':'allow','args':{'ms':{'in':[1,3]}}}", true },
	{ "path under new dir", "{'service':'vdisk','methods':['open'],'action':'allow','args':{'path':{'path_prefix':'/d/x'}}}",
	  "{'service':'vdisk','methods':['open'],'action':'allow','args':{'path':{'path_prefix':'/d'}}}", true },
	{ "path dir moved", "{'service':'vdisk','methods':['open'],'action':'allow','args':{'path':{'path_prefix':'/d'}}}",
	  "{'service':'vdisk','methods':['open'],'action':'allow','args':{'path':{'path_prefix':'/e'}}}", false },
	/* settings took effect at connect: any change needs a new channel */
	{ "settings unchanged", "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':3}}",
	  "{'service':'gfx','methods':['draw','present'],'action':'allow','settings':{'weight':3}}", true },
	{ "setting changed", "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':3}}",
	  "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':4}}", false },
	{ "setting added", "{'service':'gfx','methods':['draw'],'action':'allow'}",
	  "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':4}}", false },
	{ "setting dropped", "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':3}}",
	  "{'service':'gfx','methods':['draw'],'action':'allow'}", false },
};

static void run_recheck(void **state)
{
	const recheck_case *c = *state;
	policy_idl_set *idl = test_idl();
	policy_effective *old = effective_of(c->old_rules, NULL, idl);
	policy_effective *new = effective_of(c->new_rules, NULL, idl);
	const char *svc = strstr(c->old_rules, "vdisk") ? "vdisk" : strstr(c->old_rules, "gfx") ? "gfx" : "echo";
	policy_decision d;
	assert_int_equal(policy_decide(old, svc, &d), 0);
	bool keep = !c->keep;
	char *why = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_grant_recheck(new, svc, d.grant_json, &keep, &why, &err), 0);
	if (keep != c->keep)
		fail_msg("grant %s: keep=%d, want %d (%s)", d.grant_json, keep, c->keep, why);
	assert_non_null(why);
	free(why);
	policy_decision_clear(&d);
	/* garbage is refused, not crashed on */
	assert_int_equal(policy_grant_recheck(new, svc, "{\"methods\":5}", &keep, NULL, &err), SCM_E_INVALID);
	err = scm_error_free(err);
	assert_int_equal(policy_grant_recheck(new, svc, "not json", &keep, NULL, &err), SCM_E_INVALID);
	scm_error_free(err);
	policy_effective_unref(old);
	policy_effective_unref(new);
	policy_idl_set_free(idl);
}

static void test_refcount_outlives(void **state)
{
	policy_idl_set *idl = test_idl();
	policy_effective *e = effective_of("{'service':'echo','methods':['ping'],'action':'allow'}", NULL, idl);
	policy_idl_set_free(idl); /* copied by the build */
	policy_effective *e2 = policy_effective_ref(e);
	assert_ptr_equal(e, e2);
	policy_effective_unref(e);
	policy_decision d;
	assert_int_equal(policy_decide(e2, "echo", &d), 0);
	assert_string_equal(d.grant_json, "{\"methods\":[\"ping\"],\"constraints\":{}}");
	policy_decision_clear(&d);
	policy_effective_unref(e2);
}

/* A service registered under its own name with a known interface gets
 * that interface's methods (scmd calls policy_idl_set_alias()). */
static void test_alias(void **state)
{
	policy_idl_set *idl = test_idl();
	scm_error *err = NULL;
	assert_int_equal(policy_idl_set_alias(idl, "disk2", "vdisk", &err), 0);
	assert_int_equal(policy_idl_set_alias(idl, "x", "nosuch", &err), SCM_E_NOT_FOUND);
	err = scm_error_free(err);
	assert_int_equal(policy_idl_set_alias(idl, "bad name", "vdisk", &err), SCM_E_INVALID);
	err = scm_error_free(err);
	assert_int_equal(policy_idl_set_size(idl), 4);
	policy_effective *e = effective_of("{'service':'disk*','methods':'*','action':'allow'}", NULL, idl);
	policy_decision d;
	assert_int_equal(policy_decide(e, "disk2", &d), 0);
	assert_string_equal(d.grant_json, "{\"methods\":[\"close\",\"open\",\"read\"],\"constraints\":{}}");
	policy_decision_clear(&d);
	policy_effective_unref(e);
	policy_idl_set_free(idl);
}

int main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]), m = sizeof(rechecks) / sizeof(rechecks[0]), k = 0;
	struct CMUnitTest *t = calloc(n + m + 5, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[k++] = (struct CMUnitTest){ .name = cases[i].title, .test_func = run_case,
					      .initial_state = (void *)&cases[i] };
	for (size_t i = 0; i < m; i++)
		t[k++] = (struct CMUnitTest){ .name = rechecks[i].title, .test_func = run_recheck,
					      .initial_state = (void *)&rechecks[i] };
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_grant_matches_libscm);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_refcount_outlives);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_alias);
	int r = _cmocka_run_group_tests("policy_decide", t, k, NULL, NULL);
	free(t);
	return r;
}
