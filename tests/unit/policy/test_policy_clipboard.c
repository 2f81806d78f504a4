/* test_policy_clipboard.c: clipboard rules. The matcher and the decision
 * (libscm's scm-internal/clipflow.h, which the graphics proxy enforces) by table;
 * profiles with "clipboard" sections parsed, refused with the pointer
 * named, merged by priority into the list a gfx grant carries, explained,
 * and linted for equal-priority conflicts (glob overlap). */
#include <json-c/json.h>
#include <scm-internal/clipflow.h>

#include "helpers.h"

static void test_match(void **state)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} t[] = {
		{ "cb-a", "cb-a", true },       { "cb-a", "cb-b", false },      { "cb-?", "cb-b", true },
		{ "*", "anything", true },      { "*", "@viewer", false },      { "@viewer", "@viewer", true },
		{ "@viewer", "viewer", false }, { "?viewer", "@viewer", false }, { "work-*", "work-", true },
		{ "work-*", "home-1", false },  { "[a]", "a", false },          { "a\\*", "a*", false },
		{ "", "", false },              { "a/b", "a/b", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (scm_clip_match(t[i].pattern, t[i].name) != t[i].match)
			fail_msg("%s ~ %s: want %d", t[i].pattern, t[i].name, t[i].match);
	}
}

static scm_clip_rules rules_of(const char *jtext)
{
	char *j = J(jtext);
	json_object *o = json_tokener_parse(j);
	scm_clip_rules r;
	scm_error *err = NULL;
	if (scm_clip_rules_parse(o, &r, &err) != 0)
		fail_msg("%s: %s", jtext, err ? err->message : "(no observation)");
	assert_null(err);
	json_object_put(o);
	free(j);
	return r;
}

#define RULE(f, t, a, p) "{'from':'" f "','to':'" t "','allow':" #a ",'priority':" #p ",'origin':'" f ">" t "'}"

static void test_decide(void **state)
{
	static const struct {
		const char *rules, *from, *to;
		bool allow;
		const char *why;
	} t[] = {
		{ "[]", "a", "b", false, "default deny" },
		{ "[" RULE("a", "b", true, 1) "]", "a", "b", true, "allowed by a>b" },
		{ "[" RULE("a", "b", true, 1) "]", "b", "a", false, "no clipboard rule matches b -> a" },
		{ "[" RULE("*", "*", true, 1) "]", "a", "@viewer", false, "default deny" },
		{ "[" RULE("*", "@viewer", true, 1) "]", "a", "@viewer", true, "allowed" },
		/* the higher priority wins */
		{ "[" RULE("a", "b", false, 9) "," RULE("*", "*", true, 1) "]", "a", "b", false, "denied by a>b" },
		{ "[" RULE("a", "b", false, 9) "," RULE("*", "*", true, 1) "]", "a", "c", true, "allowed by *>*" },
		/* equal priority, other action: a conflict denies */
		{ "[" RULE("*", "*", true, 5) "," RULE("a", "b", false, 5) "]", "a", "b", false, "conflicts" },
		{ "[" RULE("*", "*", true, 5) "," RULE("a", "b", false, 5) "]", "a", "c", true, "allowed" },
		/* equal priority, same action: no conflict */
		{ "[" RULE("*", "*", true, 5) "," RULE("a", "b", true, 5) "]", "a", "b", true, "allowed by *>*" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		scm_clip_rules r = rules_of(t[i].rules);
		char why[512];
		bool got = scm_clip_decide(&r, t[i].from, t[i].to, why, sizeof(why));
		if (got != t[i].allow || !strstr(why, t[i].why))
			fail_msg("case %zu (%s -> %s): got %d \"%s\", want %d \"%s\"", i, t[i].from, t[i].to, got, why,
				 t[i].allow, t[i].why);
		scm_clip_rules_done(&r);
	}
}

/* A malformed list (which scmd never sends) is refused whole: the proxy
 * then knows no rule, so nothing flows. */
static void test_bad_lists(void **state)
{
	static const char *bad[] = {
		"{}", "[1]", "[{'from':'a','to':'b','allow':true}]", "[{'from':'a','to':'b','allow':1,'priority':1}]",
		"[{'from':'a b','to':'b','allow':true,'priority':1}]", "[{'from':'a','to':'[x]','allow':true,'priority':1}]",
		"[" RULE("a", "b", true, 1) "," RULE("a", "c", true, 2) "]", /* out of merge order */
		"[{'from':'a\\u0000x','to':'b','allow':true,'priority':1}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *j = J(bad[i]);
		json_object *o = json_tokener_parse(j);
		scm_clip_rules r = { 0 };
		scm_error *err = NULL;
		assert_non_null(o);
		if (scm_clip_rules_parse(o, &r, &err) != SCM_E_INVALID || r.n != 0 || !err ||
		    err->code != SCM_E_INVALID || strncmp(err->message, "clipboard rules: ", 17) != 0 ||
		    !strstr(err->where, "clipflow.c"))
			fail_msg("accepted %s", bad[i]);
		scm_error_free(err);
		json_object_put(o);
		free(j);
	}
	scm_clip_rules none;
	scm_error *err = NULL;
	assert_int_equal(scm_clip_rules_parse(NULL, &none, &err), 0);
	assert_null(err);
	assert_int_equal(none.n, 0);
	assert_false(scm_clip_decide(&none, "a", "b", NULL, 0));
}

static void test_profiles(void **state)
{
	static const struct {
		const char *json, *error;
	} bad[] = {
		{ "{'name':'p','priority':1,'clipboard':{}}", "/clipboard: expected an array" },
		{ "{'name':'p','priority':1,'clipboard':[{'from':'a','to':'b'}]}", "/clipboard/0: missing \"action\"" },
		{ "{'name':'p','priority':1,'clipboard':[{'from':'a','to':'b','action':'maybe'}]}", "/clipboard/0/action" },
		{ "{'name':'p','priority':1,'clipboard':[{'from':'a/b','to':'b','action':'allow'}]}",
		  "/clipboard/0/from: bad endpoint name or glob" },
		{ "{'name':'p','priority':1,'clipboard':[{'from':'a','to':'@view','action':'allow'}]}", "/clipboard/0/to" },
		{ "{'name':'p','priority':1,'clipboard':[{'from':'a','to':'b','action':'allow','args':{}}]}",
		  "unknown key \"args\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *j = J(bad[i].json);
		policy_profile *p = NULL;
		scm_error *err = NULL;
		assert_int_equal(policy_profile_parse("p.json", j, strlen(j), &p, &err), SCM_E_INVALID);
		if (!strstr(err->message, bad[i].error))
			fail_msg("%s: %s, want %s", bad[i].json, err->message, bad[i].error);
		scm_error_free(err);
		free(j);
	}
}

/* Merge order into the grant's list, and explain through it. */
static void test_merge_explain(void **state)
{
	char *dir = tmpdir_new();
	write_profile(dir, "low", "{'name':'low','priority':1,'clipboard':[{'from':'*','to':'*','action':'allow'}]}");
	write_profile(dir, "high", "{'name':'high','priority':9,'clipboard':[{'from':'a','to':'secret','action':'deny'},"
				   "{'from':'a','to':'@viewer','action':'allow'}]}");
	policy_store *st = NULL;
	policy_effective *e = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_store_load(dir, NULL, &st, &err), 0);
	const char *names[] = { "low", "high" };
	assert_int_equal(policy_effective_build(st, names, 2, NULL, &e, &err), 0);
	json_object *rules = NULL;
	assert_int_equal(policy_grant_rules(e, "clipboard", &rules, &err), 0);
	assert_int_equal(json_object_array_length(rules), 3);
	json_object *first = json_object_array_get_idx(rules, 0), *v;
	assert_true(json_object_object_get_ex(first, "to", &v));
	assert_string_equal(json_object_get_string(v), "secret");
	json_object_put(rules);
	static const struct {
		const char *from, *to, *decision, *origin;
	} t[] = {
		{ "a", "b", "allow", "low.json#/clipboard/0" },
		{ "a", "secret", "deny", "high.json#/clipboard/0" },
		{ "a", "@viewer", "allow", "high.json#/clipboard/1" },
		{ "@viewer", "a", "deny", "default deny" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_object *x = NULL;
		assert_int_equal(policy_explain(e, "@clipboard", t[i].from, t[i].to, &x, &err), 0);
		assert_true(json_object_object_get_ex(x, "decision", &v));
		assert_string_equal(json_object_get_string(v), t[i].decision);
		assert_true(json_object_object_get_ex(x, "origin", &v));
		if (!strstr(json_object_get_string(v), t[i].origin))
			fail_msg("%s -> %s: %s", t[i].from, t[i].to, json_object_get_string(v));
		json_object_put(x);
	}
	json_object *x = NULL;
	assert_int_equal(policy_explain(e, "@clipboard", "a b", "c", &x, &err), SCM_E_INVALID);
	err = scm_error_free(err);
	policy_effective_unref(e);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* lint: equal-priority rules of the other action that some flow matches
 * both are a conflict; rules that cannot meet are not. */
static void test_lint(void **state)
{
	static const struct {
		const char *a, *b;
		size_t errors;
	} t[] = {
		{ "{'from':'a','to':'b','action':'allow'}", "{'from':'a','to':'b','action':'deny'}", 1 },
		{ "{'from':'a*','to':'b','action':'allow'}", "{'from':'*z','to':'b?','action':'deny'}", 0 },
		{ "{'from':'a*','to':'b*','action':'allow'}", "{'from':'*z','to':'?c','action':'deny'}", 1 },
		{ "{'from':'*','to':'*','action':'allow'}", "{'from':'x','to':'@viewer','action':'deny'}", 0 },
		{ "{'from':'x?y','to':'*','action':'allow'}", "{'from':'x*','to':'q','action':'deny'}", 1 },
		{ "{'from':'x?y','to':'*','action':'allow'}", "{'from':'xy','to':'q','action':'deny'}", 0 },
		{ "{'from':'a','to':'b','action':'allow'}", "{'from':'a','to':'b','action':'allow'}", 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *dir = tmpdir_new(), buf[512];
		snprintf(buf, sizeof(buf), "{'name':'p','priority':3,'clipboard':[%s]}", t[i].a);
		write_profile(dir, "p", buf);
		snprintf(buf, sizeof(buf), "{'name':'q','priority':3,'clipboard':[%s]}", t[i].b);
		write_profile(dir, "q", buf);
		policy_store *st = NULL;
		policy_lint_report *rep = NULL;
		scm_error *err = NULL;
		assert_int_equal(policy_store_load_dir(dir, &st, &err), 0);
		assert_int_equal(policy_lint(st, NULL, NULL, 0, &rep, &err), 0);
		if (rep->n_errors != t[i].errors)
			fail_msg("case %zu: %zu errors, want %zu", i, rep->n_errors, t[i].errors);
		if (t[i].errors)
			assert_non_null(strstr(rep->findings[0].message, "clipboard "));
		policy_lint_report_free(rep);
		/* the same two rules in one profile conflict too */
		snprintf(buf, sizeof(buf), "{'name':'p','priority':3,'clipboard':[%s,%s]}", t[i].a, t[i].b);
		write_profile(dir, "p", buf);
		unlink(strcat(strcpy(buf, dir), "/q.json"));
		policy_store_free(st);
		assert_int_equal(policy_store_load_dir(dir, &st, &err), 0);
		assert_int_equal(policy_lint(st, NULL, NULL, 0, &rep, &err), 0);
		assert_int_equal(rep->n_errors, t[i].errors);
		policy_lint_report_free(rep);
		policy_store_free(st);
		rm_rf(dir);
		free(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),    cmocka_unit_test(test_decide),        cmocka_unit_test(test_bad_lists),
		cmocka_unit_test(test_profiles), cmocka_unit_test(test_merge_explain), cmocka_unit_test(test_lint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
