/* test_policy_lint.c: lint over profile sets, table-driven: each case
 * lists the profiles and the findings (severity, kind, file, pointer, text)
 * that must appear, and the exact number of errors and warnings. Also: a
 * store that fails lint is not loaded. */
#include "helpers.h"

typedef struct prof {
	const char *name, *json;
} prof;

typedef struct want {
	bool combined; /* expected when the profiles are linted as one container's */
	policy_severity sev;
	const char *kind, *file_suffix, *pointer, *text;
} want;

typedef struct lint_case {
	const char *title;
	prof profs[4];
	want findings[4];
	size_t errors, warnings;                   /* as a directory */
	size_t combined_errors, combined_warnings; /* as one combination */
} lint_case;

#define R(svc, methods, action) "{'service':'" svc "','methods':" methods ",'action':'" action "'}"
#define RA(svc, methods, args) "{'service':'" svc "','methods':" methods ",'action':'allow','args':" args "}"
#define P(name, prio, rules) { name, "{'name':'" name "','priority':" #prio ",'services':[" rules "]}" }
#define E POLICY_LINT_ERROR
#define W POLICY_LINT_WARNING
#define DIR false
#define COMB true

static const lint_case cases[] = {
	{ "clean set", { P("a", 0, R("echo", "'*'", "allow")), P("b", 5, R("echo", "['crash']", "deny")) }, { { 0 } },
	  0, 0, 0, 0 },
	{ "equal-priority conflict names both sides",
	  { P("a", 10, R("echo", "['ping']", "allow")), P("b", 10, R("echo", "['ping']", "deny")) },
	  { { DIR, E, "conflict", "a.json", "/services/0", "allow echo.ping conflicts with deny profile 'b' (" },
	    { DIR, E, "conflict", "a.json", "/services/0", "a container that carries both is denied" },
	    { COMB, E, "conflict", "a.json", "/services/0", "both deny at run time" } },
	  1, 0, 1, 0 },
	{ "conflict inside one profile is an error everywhere",
	  { P("a", 1, R("echo", "'*'", "allow") "," R("echo", "['crash']", "deny")) },
	  { { DIR, E, "conflict", "a.json", "/services/0", "allow echo.crash conflicts with deny profile 'a' (" } },
	  1, 0, 1, 0 },
	{ "unknown service", { P("a", 0, R("ecko", "'*'", "allow")) },
	  { { DIR, E, "unknown-service", "a.json", "/services/0/service", "no interface defines service \"ecko\"" } },
	  1, 0, 1, 0 },
	{ "unknown method", { P("a", 0, R("echo", "['ping','pong']", "allow")) },
	  { { DIR, E, "unknown-method", "a.json", "/services/0/methods/1", "service \"echo\" has no method \"pong\"" } },
	  1, 0, 1, 0 },
	{ "unknown parameter", { P("a", 0, RA("echo", "['greet']", "{'nmae':{'eq':'x'}}")) },
	  { { DIR, E, "unknown-param", "a.json", "/services/0/args/nmae", "echo.greet has no parameter \"nmae\"" } },
	  1, 0, 1, 0 },
	{ "parameter of a method without parameters", { P("a", 0, RA("echo", "['ping']", "{'x':{'eq':1}}")) },
	  { { DIR, E, "unknown-param", "a.json", "/services/0/args/x", "echo.ping has no parameter \"x\"" } }, 1, 0, 1, 0 },
	{ "setting the interface does not declare",
	  { P("a", 0, "{'service':'gfx','methods':'*','action':'allow','settings':{'wieght':2}}") },
	  { { DIR, E, "bad-setting", "a.json", "/services/0/settings/wieght",
	      "service \"gfx\": setting \"wieght\" is not a setting the service's interface declares" } }, 1, 0, 1, 0 },
	{ "setting out of its range, through a glob",
	  { P("a", 0, "{'service':'g*','methods':'*','action':'allow','settings':{'weight':0}}") },
	  { { DIR, E, "bad-setting", "a.json", "/services/0/settings/weight", "is out of the setting's range" } },
	  1, 0, 1, 0 },
	{ "a good setting", { P("a", 0, "{'service':'gfx','methods':'*','action':'allow','settings':{'weight':200}}") },
	  { { 0 } }, 0, 0, 0, 0 },
	{ "constraint of the wrong type", { P("a", 0, RA("echo", "['sleep']", "{'ms':{'prefix':'1'}}")) },
	  { { DIR, E, "bad-constraint", "a.json", "/services/0/args/ms", "is of type uint" } }, 1, 0, 1, 0 },
	{ "shadowed rule, only when combined",
	  { P("a", 0, R("echo", "['ping']", "allow")), P("b", 5, R("echo", "'*'", "allow")) },
	  { { COMB, W, "shadowed", "a.json", "/services/0", "decided by higher rules, e.g. profile 'b'" } }, 0, 0, 0, 1 },
	{ "agreeing rules inside one profile are fine",
	  { { "a", "{'name':'a','priority':0,'services':[{'service':'echo','methods':'*','action':'allow'},"
		   "{'service':'e*','methods':['ping'],'action':'allow'}]}" } },
	  { { 0 } }, 0, 0, 0, 0 },
	{ "glob matching nothing", { P("a", 0, R("zz*", "'*'", "allow")) },
	  { { DIR, W, "dead", "a.json", "/services/0/service", "glob \"zz*\" matches no known service" } }, 0, 1, 0, 1 },
	{ "deny with nothing below, only when combined", { P("a", 0, R("echo", "['crash']", "deny")) },
	  { { COMB, W, "dead", "a.json", "/services/0", "deny changes nothing" } }, 0, 0, 0, 1 },
	{ "a glob rule naming a method no matched service has",
	  { P("a", 0, R("ech*", "['ping','pnig']", "deny")) },
	  { { DIR, E, "unknown-method", "a.json", "/services/0/methods/1",
	      "no service matching \"ech*\" has a method \"pnig\"" } },
	  1, 0, 1, 1 },
	{ "a conflict masked by a higher profile is still an error in the directory",
	  { P("a", 10, R("echo", "['ping']", "allow")), P("b", 10, R("echo", "['ping']", "deny")),
	    P("c", 20, R("echo", "['ping']", "allow")) },
	  { { DIR, E, "conflict", "a.json", "/services/0", "a container that carries both is denied" },
	    { COMB, W, "shadowed", "a.json", "/services/0", "profile 'c'" },
	    { COMB, W, "shadowed", "b.json", "/services/0", "profile 'c'" } },
	  1, 0, 0, 2 },
	{ "a sandbox conflict masked by a higher profile",
	  { { "a", "{'name':'a','priority':1,'sandbox':{'capabilities':{'allow':['CAP_SYS_ADMIN']}}}" },
	    { "b", "{'name':'b','priority':1,'sandbox':{'capabilities':{'deny':['CAP_SYS_ADMIN']}}}" },
	    { "c", "{'name':'c','priority':5,'sandbox':{'capabilities':{'deny':['CAP_SYS_ADMIN']}}}" } },
	  { { DIR, E, "conflict", "a.json", "/sandbox/capabilities/allow/0", "a container that carries both gets deny" } },
	  1, 0, 0, 1 },
	{ "prefix on a path parameter points to path_prefix",
	  { P("a", 0, RA("vdisk", "['open']", "{'path':{'prefix':'/srv/disks/'}}")) },
	  { { DIR, E, "prefix-on-path", "a.json", "/services/0/args/path",
	      "is a file path: \"prefix\" admits \"/srv/disks/../../etc/x\"; use {\"path_prefix\": \"/srv/disks/\"}" } },
	  1, 0, 1, 0 },
	{ "sandbox conflict and override",
	  { { "a", "{'name':'a','priority':1,'sandbox':{'network':'host','limits':{'pids':5}}}" },
	    { "b", "{'name':'b','priority':1,'sandbox':{'network':'loopback'}}" },
	    { "c", "{'name':'c','priority':0,'sandbox':{'limits':{'pids':9}}}" } },
	  { { DIR, E, "conflict", "a.json", "/sandbox/network",
	      "network = host conflicts with network = loopback in profile 'b'" },
	    { COMB, W, "shadowed", "c.json", "/sandbox/limits/pids", "limit:pids = 9 is overridden by limit:pids = 5" } },
	  1, 0, 1, 1 },
};

static void check_report(const lint_case *c, const policy_lint_report *rep, bool combined)
{
	size_t e = combined ? c->combined_errors : c->errors, w = combined ? c->combined_warnings : c->warnings;
	if (rep->n_errors != e || rep->n_warnings != w) {
		policy_lint_report_print(rep, stderr);
		fail_msg("%s: %zu errors, %zu warnings; want %zu, %zu", combined ? "combined" : "directory",
			 rep->n_errors, rep->n_warnings, e, w);
	}
	for (size_t i = 0; i < 4 && c->findings[i].kind; i++) {
		const want *x = &c->findings[i];
		bool found = false;
		if (x->combined != combined && x->combined)
			continue;
		for (size_t k = 0; k < rep->n_findings && !found; k++) {
			const policy_finding *f = &rep->findings[k];
			size_t fl = strlen(f->file), sl = strlen(x->file_suffix);
			found = f->severity == x->sev && strcmp(f->kind, x->kind) == 0 && fl >= sl &&
				strcmp(f->file + fl - sl, x->file_suffix) == 0 && strcmp(f->pointer, x->pointer) == 0 &&
				strstr(f->message, x->text) && f->line > 0;
		}
		/* directory findings hold when combined too, except the
		 * wording of a conflict's consequence */
		if (!found && combined && strstr(x->text, "carries both"))
			continue;
		if (!found) {
			policy_lint_report_print(rep, stderr);
			fail_msg("%s: no %s finding at %s#%s with \"%s\"", combined ? "combined" : "directory", x->kind,
				 x->file_suffix, x->pointer, x->text);
		}
	}
}

static void run_case(void **state)
{
	const lint_case *c = *state;
	char *dir = tmpdir_new();
	const char *names[4];
	size_t n = 0;
	for (size_t i = 0; i < 4 && c->profs[i].name; i++) {
		write_profile(dir, c->profs[i].name, c->profs[i].json);
		names[n++] = c->profs[i].name;
	}
	policy_store *st = load_store_or_fail(dir);
	policy_idl_set *idl = test_idl();
	policy_lint_report *rep = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_lint(st, idl, NULL, 0, &rep, &err), 0);
	check_report(c, rep, false);
	policy_lint_report_free(rep);
	rep = NULL;
	assert_int_equal(policy_lint(st, idl, names, n, &rep, &err), 0);
	check_report(c, rep, true);
	policy_lint_report_free(rep);
	/* loading the directory as a store applies the directory verdict */
	policy_store *loaded = NULL;
	int r = policy_store_load(dir, idl, &loaded, &err);
	if (c->errors) {
		assert_int_equal(r, SCM_E_INVALID);
		assert_null(loaded);
		assert_non_null(strstr(err->message, "lint error(s), profile set not loaded"));
		err = scm_error_free(err);
	} else {
		assert_int_equal(r, 0);
		policy_store_free(loaded);
	}
	/* an unknown name in a combination is refused */
	const char *bad[] = { "nosuch" };
	assert_int_equal(policy_lint(st, idl, bad, 1, &rep, &err), SCM_E_NOT_FOUND);
	scm_error_free(err);
	policy_store_free(st);
	policy_idl_set_free(idl);
	rm_rf(dir);
	free(dir);
}

/* One bad file keeps the whole directory from loading. */
static void test_bad_file_keeps_nothing(void **state)
{
	char *dir = tmpdir_new();
	write_profile(dir, "good", "{'name':'good','priority':0}");
	write_file(dir, "bad.json", "{\"name\":\"bad\",\"priority\":1,\"priority\":2}");
	policy_store *st = (policy_store *)0x1;
	scm_error *err = NULL;
	assert_int_equal(policy_store_load(dir, NULL, &st, &err), SCM_E_INVALID);
	assert_ptr_equal(st, (policy_store *)0x1);
	assert_non_null(strstr(err->message, "bad.json:1:"));
	scm_error_free(err);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct CMUnitTest *t = calloc(n + 2, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[i] = (struct CMUnitTest){ .name = cases[i].title, .test_func = run_case,
					    .initial_state = (void *)&cases[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_file_keeps_nothing);
	int r = _cmocka_run_group_tests("policy_lint", t, n, NULL, NULL);
	free(t);
	return r;
}
