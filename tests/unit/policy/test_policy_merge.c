/* test_policy_merge.c: the priority merge, table-driven. Each case is a
 * set of profiles and what single calls must come out as (allow/deny and
 * which profile's rule decided), plus the number of equal-priority
 * conflicts. Then the sandbox merge, and determinism: the same profiles in
 * any order give byte-identical effective profiles. */
#include <json-c/json.h>

#include "helpers.h"

typedef struct prof {
	const char *name, *json;
} prof;

typedef struct expect {
	const char *service, *method, *args; /* args as compact JSON or NULL */
	bool allow;
	const char *winner; /* profile whose rule decided, NULL for default deny */
} expect;

typedef struct merge_case {
	const char *title;
	prof profs[5];
	expect ex[8];
	size_t conflicts;
} merge_case;

#define R(svc, methods, action) "{'service':'" svc "','methods':" methods ",'action':'" action "'}"
#define RA(svc, methods, args) "{'service':'" svc "','methods':" methods ",'action':'allow','args':" args "}"
#define P(name, prio, rules) { name, "{'name':'" name "','priority':" #prio ",'services':[" rules "]}" }

static const merge_case cases[] = {
	{ "nothing matched is denied",
	  { P("base", 0, R("echo", "['ping']", "allow")) },
	  { { "echo", "ping", NULL, true, "base" }, { "echo", "echo", NULL, false, NULL },
	    { "vdisk", "open", NULL, false, NULL }, { "nosuch", "x", NULL, false, NULL } }, 0 },
	{ "higher priority deny overrides allow",
	  { P("base", 0, R("echo", "'*'", "allow")), P("app", 10, R("echo", "['crash']", "deny")) },
	  { { "echo", "crash", NULL, false, "app" }, { "echo", "ping", NULL, true, "base" } }, 0 },
	{ "higher priority allow overrides deny",
	  { P("strict", 50, R("echo", "['greet']", "deny")), P("app", 60, R("echo", "['greet']", "allow")) },
	  { { "echo", "greet", "{'name':'x'}", true, "app" } }, 0 },
	{ "lower priority number loses whatever the order of names",
	  { P("zzz", -5, R("echo", "['ping']", "allow")), P("aaa", -10, R("echo", "['ping']", "deny")) },
	  { { "echo", "ping", NULL, true, "zzz" } }, 0 },
	{ "equal priority conflict fails closed",
	  { P("a", 10, R("echo", "['ping']", "allow")), P("b", 10, R("echo", "['ping']", "deny")) },
	  { { "echo", "ping", NULL, false, "a" } }, 1 },
	{ "equal priority agreement is no conflict",
	  { P("a", 10, R("echo", "['ping']", "allow")), P("b", 10, R("echo", "['ping','echo']", "allow")) },
	  { { "echo", "ping", NULL, true, "a" }, { "echo", "echo", "{'data':'x'}", true, "b" } }, 0 },
	{ "conflict in the same profile",
	  { P("a", 1, R("echo", "'*'", "allow") "," R("echo", "['crash']", "deny")) },
	  { { "echo", "crash", NULL, false, "a" }, { "echo", "ping", NULL, true, "a" } }, 1 },
	{ "equal priority, different constraints conflict",
	  { P("a", 5, RA("echo", "['greet']", "{'name':{'prefix':'x'}}")), P("b", 5, R("echo", "['greet']", "allow")) },
	  { { "echo", "greet", "{'name':'xy'}", false, "a" }, { "echo", "ping", NULL, false, NULL } }, 1 },
	{ "equal priority, same constraints agree",
	  { P("a", 5, RA("echo", "['greet']", "{'name':{'prefix':'x'}}")),
	    P("b", 5, RA("echo", "['greet']", "{'name':{'prefix':'x'}}")) },
	  { { "echo", "greet", "{'name':'xy'}", true, "a" }, { "echo", "greet", "{'name':'y'}", false, "a" } }, 0 },
	{ "conflict at a lower priority is overridden",
	  { P("a", 5, R("echo", "['ping']", "allow")), P("b", 5, R("echo", "['ping']", "deny")),
	    P("top", 9, R("echo", "['ping']", "allow")) },
	  { { "echo", "ping", NULL, true, "top" } }, 0 },
	{ "prefix constraint",
	  { P("base", 0, R("echo", "'*'", "allow")), P("app", 10, RA("echo", "['greet']", "{'name':{'prefix':'user-'}}")) },
	  { { "echo", "greet", "{'name':'user-ann'}", true, "app" }, { "echo", "greet", "{'name':'root'}", false, "app" },
	    { "echo", "greet", "{}", false, "app" }, { "echo", "greet", NULL, false, "app" },
	    { "echo", "greet", "{'name':5}", false, "app" }, { "echo", "ping", NULL, true, "base" } }, 0 },
	{ "range constraint",
	  { P("p", 0, RA("echo", "['sleep']", "{'ms':{'range':[0,100]}}")) },
	  { { "echo", "sleep", "{'ms':0}", true, "p" }, { "echo", "sleep", "{'ms':100}", true, "p" },
	    { "echo", "sleep", "{'ms':101}", false, "p" }, { "echo", "sleep", "{'ms':-1}", false, "p" },
	    { "echo", "sleep", "{'ms':'5'}", false, "p" }, { "echo", "sleep", "{'ms':50.5}", true, "p" } }, 0 },
	{ "in and eq constraints, JSON types strict",
	  { P("p", 0, RA("vdisk", "['open']", "{'readonly':{'eq':true},'path':{'in':['/a','/b']}}")) },
	  { { "vdisk", "open", "{'path':'/a','readonly':true}", true, "p" },
	    { "vdisk", "open", "{'path':'/c','readonly':true}", false, "p" },
	    { "vdisk", "open", "{'path':'/b','readonly':false}", false, "p" },
	    { "vdisk", "open", "{'path':'/b','readonly':1}", false, "p" },
	    { "vdisk", "read", NULL, false, NULL } }, 0 },
	{ "path_prefix constraint",
	  { P("p", 0, RA("vdisk", "['open']", "{'path':{'path_prefix':'/data'}}")) },
	  { { "vdisk", "open", "{'path':'/data/x.vhdx'}", true, "p" }, { "vdisk", "open", "{'path':'/data'}", true, "p" },
	    { "vdisk", "open", "{'path':'/database'}", false, "p" },
	    { "vdisk", "open", "{'path':'/data/../etc/passwd'}", false, "p" },
	    { "vdisk", "open", "{'path':'/data//x'}", false, "p" } }, 0 },
	{ "globs expand against known services",
	  { P("base", 0, R("v*", "'*'", "allow")), P("app", 5, R("vdisk", "['close']", "deny")) },
	  { { "vdisk", "open", "{'path':'/x','readonly':true}", true, "base" }, { "vdisk", "close", NULL, false, "app" },
	    { "gfx", "draw", NULL, false, NULL }, { "vnew", "anything", NULL, true, "base" } }, 0 },
	{ "glob and exact rule at equal priority conflict",
	  { P("a", 3, R("*", "'*'", "deny") "," R("gfx", "['draw']", "allow")) },
	  { { "gfx", "draw", NULL, false, "a" }, { "gfx", "present", NULL, false, "a" } }, 1 },
	{ "unknown methods of an IDL-known service stay denied",
	  { P("a", 0, R("echo", "'*'", "allow")) },
	  { { "echo", "nosuch", NULL, false, NULL }, { "echo", "crash", NULL, true, "a" } }, 0 },
};

static char *tmp_with(const prof *profs)
{
	char *dir = tmpdir_new();
	for (size_t i = 0; i < 5 && profs[i].name; i++)
		write_profile(dir, profs[i].name, profs[i].json);
	return dir;
}

static policy_effective *build_all(const char *dir, policy_store **ret_store, policy_idl_set *idl)
{
	policy_store *st = load_store_or_fail(dir);
	const char *names[16];
	size_t n = 0;
	for (size_t i = 0; i < policy_store_size(st); i++)
		names[n++] = policy_profile_name(policy_store_at(st, i));
	policy_effective *e = NULL;
	scm_error *err = NULL;
	if (policy_effective_build(st, names, n, idl, &e, &err) != 0) {
		scm_error_print(err, stderr);
		fail();
	}
	*ret_store = st;
	return e;
}

static void run_case(void **state)
{
	const merge_case *c = *state;
	char *dir = tmp_with(c->profs);
	policy_idl_set *idl = test_idl();
	policy_store *st;
	policy_effective *e = build_all(dir, &st, idl);
	/* the effective profile outlives the store and the IDL set */
	policy_store_free(st);
	policy_idl_set_free(idl);
	assert_int_equal(policy_effective_conflicts(e), c->conflicts);
	for (size_t i = 0; i < 8 && c->ex[i].service; i++) {
		const expect *x = &c->ex[i];
		char *args = x->args ? J(x->args) : NULL;
		json_object *aj = args ? json_tokener_parse(args) : NULL;
		char *reason = NULL;
		int r = policy_check_call(e, x->service, x->method, aj, &reason);
		if ((r == 0) != x->allow)
			fail_msg("%s.%s %s: got %s (%s)", x->service, x->method, args ? args : "", r == 0 ? "allow" : "deny",
				 reason);
		/* the explanation names the deciding rule's profile */
		json_object *ex = NULL, *rule = NULL, *pj = NULL;
		scm_error *err = NULL;
		assert_int_equal(policy_explain(e, x->service, x->method, args, &ex, &err), 0);
		json_object_object_get_ex(ex, "rule", &rule);
		if (x->winner) {
			assert_non_null(rule);
			assert_true(json_object_object_get_ex(rule, "profile", &pj));
			assert_string_equal(json_object_get_string(pj), x->winner);
		} else {
			assert_null(rule);
		}
		json_object_put(ex);
		json_object_put(aj);
		free(reason);
		free(args);
	}
	policy_effective_unref(e);
	rm_rf(dir);
	free(dir);
}

/* ---- sandbox ---------------------------------------------------------- */

#define SB(name, prio, sandbox) { name, "{'name':'" name "','priority':" #prio ",'sandbox':" sandbox "}" }

static void test_sandbox(void **state)
{
	const prof profs[] = {
		SB("base", 0, "{'syscalls':{'allow':['read','ptrace','write']},'capabilities':{'allow':['CAP_CHOWN']},"
			      "'network':'host','limits':{'memory':8388608,'pids':10},"
			      "'mounts':[{'source':'/srv/a','destination':'/a'}],'log':{'max_bytes':2097152,'files':2}}"),
		SB("app", 10, "{'syscalls':{'deny':['ptrace'],'allow':['openat']},'network':'loopback',"
			      "'limits':{'memory':67108864},'mounts':[{'source':'/srv/b','destination':'/b','readonly':false}]}"),
		SB("peer", 10, "{'network':'host','limits':{'memory':16777216},'log':{'max_bytes':1048576},"
			       "'mounts':[{'source':'/srv/c','destination':'/b'}]}"),
		{ NULL, NULL },
	};
	char *dir = tmp_with(profs);
	policy_store *st;
	policy_effective *e = build_all(dir, &st, NULL);
	const policy_sandbox *sb = policy_effective_sandbox(e);
	/* ptrace: app (10) denies over base (0) */
	assert_int_equal(sb->n_syscalls_allow, 3);
	assert_string_equal(sb->syscalls_allow[0], "openat");
	assert_string_equal(sb->syscalls_allow[1], "read");
	assert_string_equal(sb->syscalls_allow[2], "write");
	assert_int_equal(sb->n_syscalls_deny, 1);
	assert_string_equal(sb->syscalls_deny[0], "ptrace");
	assert_int_equal(sb->n_caps_allow, 1);
	assert_string_equal(sb->caps_allow[0], "CAP_CHOWN");
	/* network: app and peer conflict at 10 -> none; memory -> the smaller */
	assert_int_equal(sb->network, POLICY_NET_NONE);
	assert_int_equal(sb->memory_max, 16777216);
	assert_int_equal(sb->pids_max, 10);
	assert_int_equal(sb->cpu_weight, 0);
	/* log: peer's size (10) over base's, base's file count */
	assert_int_equal(sb->log_max_bytes, 1048576);
	assert_int_equal(sb->log_files, 2);
	/* /b: conflicting sources at 10 -> not mounted; /a from base */
	assert_int_equal(sb->n_mounts, 1);
	assert_string_equal(sb->mounts[0].destination, "/a");
	assert_string_equal(sb->mounts[0].source, "/srv/a");
	assert_true(sb->mounts[0].readonly);
	assert_int_equal(policy_effective_conflicts(e), 3);
	/* the container runtime's form of the same */
	char *js = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_sandbox_to_json(e, &js, &err), 0);
	assert_string_equal(js, "{\"syscalls\":{\"deny\":[\"ptrace\"],\"allow\":[\"openat\",\"read\",\"write\"]},"
				"\"capabilities\":[\"CAP_CHOWN\"],\"mounts\":[{\"source\":\"/srv/a\",\"destination\":\"/a\","
				"\"writable\":false}],\"network\":false,\"memory\":16777216,\"pids\":10,"
				"\"log\":{\"max_bytes\":1048576,\"files\":2}}");
	free(js);
	policy_effective_unref(e);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* ---- determinism ------------------------------------------------------- */

static const prof det_profs[] = {
	P("p1", 0, R("*", "'*'", "allow") "," RA("echo", "['sleep']", "{'ms':{'range':[1,2]}}")),
	P("p2", 10, R("echo", "['crash']", "deny") "," R("vdisk", "['open','read']", "allow")),
	P("p3", 10, R("echo", "['crash']", "allow") "," R("g*", "['draw']", "deny")),
	P("p4", 5, RA("vdisk", "['open']", "{'path':{'path_prefix':'/d'}}")),
	SB("p5", 10, "{'network':'host','limits':{'memory':8388608}}"),
};

static char *effective_text(const char *dir, const char *const *names, size_t n, policy_idl_set *idl)
{
	policy_store *st = load_store_or_fail(dir);
	policy_effective *e = NULL;
	json_object *j = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_effective_build(st, names, n, idl, &e, &err), 0);
	assert_int_equal(policy_effective_to_json(e, &j, &err), 0);
	char *s = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
	policy_effective_unref(e);
	policy_store_free(st);
	return s;
}

/* Settings: the first allow winner in merge order sets each one; the
 * interface's schema is enforced by denying (fail closed). */
static void test_settings(void **state)
{
	static const struct {
		prof profs[3];
		bool allow;
		const char *want; /* grant's settings, or a part of the origin */
	} scases[] = {
		{ { P("a", 10, "{'service':'gfx','methods':['draw'],'action':'allow','settings':{'weight':3}}"),
		    P("b", 5, "{'service':'gfx','methods':['present'],'action':'allow','settings':{'weight':7,'label':'x'}}") },
		  true, "{\"weight\":3,\"label\":\"x\"}" },
		{ { P("a", 10, "{'service':'gfx','methods':'*','action':'allow'}") }, true, NULL },
		{ { P("a", 10, "{'service':'gfx-*','methods':'*','action':'allow','settings':{'weight':0}}") },
		  false, "setting \"weight\" = 0 of profile 'a'" },
		{ { P("a", 10, "{'service':'gfx','methods':'*','action':'allow','settings':{'wieght':2}}") },
		  false, "is not a setting the service's interface declares" },
		{ { P("a", 10, "{'service':'gfx','methods':'*','action':'allow','settings':{'label':2}}") },
		  false, "is not a string" },
		/* equal priority, different settings: a conflict, denied */
		{ { P("a", 10, "{'service':'gfx','methods':'*','action':'allow','settings':{'weight':2}}"),
		    P("b", 10, "{'service':'gfx','methods':'*','action':'allow','settings':{'weight':3}}") },
		  false, "conflicts" },
	};
	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		char *dir = tmp_with(scases[i].profs);
		policy_idl_set *idl = test_idl();
		assert_int_equal(policy_idl_set_alias(idl, "gfx-one", "gfx", NULL), 0);
		policy_store *st;
		policy_effective *e = build_all(dir, &st, idl);
		policy_decision d = { 0 };
		int r = policy_decide(e, i == 2 ? "gfx-one" : "gfx", &d);
		if ((r == 0) != scases[i].allow)
			fail_msg("case %zu: got %s (%s)", i, r == 0 ? "allow" : "deny", d.origin);
		if (scases[i].allow) {
			json_object *g = json_tokener_parse(d.grant_json), *sj = NULL;
			json_object_object_get_ex(g, "settings", &sj);
			if (!scases[i].want)
				assert_null(sj);
			else
				assert_string_equal(json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN), scases[i].want);
			json_object_put(g);
		} else if (!strstr(d.origin, scases[i].want)) {
			fail_msg("case %zu: origin \"%s\" lacks \"%s\"", i, d.origin, scases[i].want);
		}
		policy_decision_clear(&d);
		policy_effective_unref(e);
		policy_store_free(st);
		policy_idl_set_free(idl);
		rm_rf(dir);
		free(dir);
	}
}

static void test_determinism(void **state)
{
	policy_idl_set *idl = test_idl();
	char *dir = strdup("/tmp/scm-policy-det-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char *first = NULL;
	unsigned seed = 12345;
	for (int round = 0; round < 24; round++) {
		size_t order[5] = { 0, 1, 2, 3, 4 };
		for (size_t i = 4; i > 0; i--) {
			size_t k = rand_r(&seed) % (i + 1), t = order[i];
			order[i] = order[k];
			order[k] = t;
		}
		/* files created in a different order each round, names listed
		 * in another */
		rm_rf(dir);
		assert_int_equal(mkdir(dir, 0700), 0);
		for (size_t i = 0; i < 5; i++)
			write_profile(dir, det_profs[order[i]].name, det_profs[order[i]].json);
		const char *names[5];
		for (size_t i = 0; i < 5; i++)
			names[i] = det_profs[order[(i + (size_t)round) % 5]].name;
		char *text = effective_text(dir, names, 5, idl);
		if (!first)
			first = text;
		else {
			assert_string_equal(text, first);
			free(text);
		}
	}
	/* and it says what the rules say: crash conflicts at 10 */
	assert_non_null(strstr(first, "\"method\":\"crash\",\"decision\":\"conflict\""));
	free(first);
	rm_rf(dir);
	free(dir);
	policy_idl_set_free(idl);
}

static void test_bad_names(void **state)
{
	const prof profs[] = { P("a", 0, R("echo", "'*'", "allow")), { NULL, NULL } };
	char *dir = tmp_with(profs);
	policy_store *st = load_store_or_fail(dir);
	policy_effective *e = NULL;
	scm_error *err = NULL;
	const char *missing[] = { "a", "nope" }, *twice[] = { "a", "a" };
	assert_int_equal(policy_effective_build(st, missing, 2, NULL, &e, &err), SCM_E_NOT_FOUND);
	assert_non_null(strstr(err->message, "nope"));
	err = scm_error_free(err);
	assert_int_equal(policy_effective_build(st, twice, 2, NULL, &e, &err), SCM_E_INVALID);
	assert_null(e);
	scm_error_free(err);
	policy_store_free(st);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct CMUnitTest *t = calloc(n + 4, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[i] = (struct CMUnitTest){ .name = cases[i].title, .test_func = run_case,
					    .initial_state = (void *)&cases[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_sandbox);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_settings);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_determinism);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_names);
	int r = _cmocka_run_group_tests("policy_merge", t, n, NULL, NULL);
	free(t);
	return r;
}
