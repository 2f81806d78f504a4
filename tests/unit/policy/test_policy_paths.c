/* test_policy_paths.c: every path in a profile is canonical before the
 * merge. A table of spellings (each must become one canonical path or be
 * refused with a reason), and the attack it stops: a low-priority profile
 * respelling a high-priority read-only mount to make it writable. */
#include "helpers.h"

typedef struct path_case {
	const char *spelled;
	const char *canonical; /* NULL: refused */
	const char *why;       /* substring of the refusal */
} path_case;

static const path_case cases[] = {
	{ "/x", "/x", NULL },
	{ "/x/", "/x", NULL },
	{ "/x/.", "/x", NULL },
	{ "/x//", "/x", NULL },
	{ "//x", "/x", NULL },
	{ "/./x/./", "/x", NULL },
	{ "/a//b/./c/", "/a/b/c", NULL },
	{ "/a/.b/..c/...", "/a/.b/..c/...", NULL },
	{ "/", "/", NULL },
	{ "//", "/", NULL },
	{ "/.", "/", NULL },
	{ "/x/..", NULL, "has a \"..\" component" },
	{ "/x/../y", NULL, "has a \"..\" component" },
	{ "/..", NULL, "has a \"..\" component" },
	{ "x", NULL, "is not an absolute path" },
	{ "", NULL, "is not an absolute path" },
	{ "./x", NULL, "is not an absolute path" },
};

static policy_effective *build(const char *dir, const char *const *names, size_t n, scm_error **err)
{
	policy_store *st = NULL;
	if (policy_store_load_dir(dir, &st, err) != 0)
		return NULL;
	policy_effective *e = NULL;
	assert_int_equal(policy_effective_build(st, names, n, NULL, &e, err), 0);
	policy_store_free(st);
	return e;
}

static void run_case(void **state)
{
	const path_case *c = *state;
	char *dir = tmpdir_new(), buf[512];
	scm_error *err = NULL;
	/* the same spelling as a mount's destination and source, and as a
	 * path_prefix constraint */
	snprintf(buf, sizeof(buf),
		 "{'name':'p','priority':0,'services':[{'service':'vdisk','methods':['open'],'action':'allow',"
		 "'args':{'path':{'path_prefix':'%s'}}}],"
		 "'sandbox':{'mounts':[{'source':'%s','destination':'%s'}]}}",
		 c->spelled, c->spelled, c->spelled);
	write_profile(dir, "p", buf);
	const char *names[] = { "p" };
	policy_effective *e = build(dir, names, 1, &err);
	if (!c->canonical) {
		assert_null(e);
		assert_non_null(err);
		if (!strstr(err->message, c->why))
			fail_msg("\"%s\": error \"%s\" lacks \"%s\"", c->spelled, err->message, c->why);
	} else {
		if (!e)
			scm_error_print(err, stderr);
		assert_non_null(e);
		const policy_sandbox *sb = policy_effective_sandbox(e);
		assert_int_equal(sb->n_mounts, 1);
		assert_string_equal(sb->mounts[0].destination, c->canonical);
		assert_string_equal(sb->mounts[0].source, c->canonical);
		policy_decision d;
		assert_int_equal(policy_decide(e, "vdisk", &d), 0);
		char want[256];
		snprintf(want, sizeof(want), "\"path_prefix\":\"%s\"", c->canonical);
		if (!strstr(d.grant_json, want))
			fail_msg("\"%s\": grant %s lacks %s", c->spelled, d.grant_json, want);
		policy_decision_clear(&d);
	}
	policy_effective_unref(e);
	scm_error_free(err);
	rm_rf(dir);
	free(dir);
}

/* The attack from issue 10: "lock" (priority 100) mounts /x read-only; a
 * priority-0 profile names "/x/", "/x/." or "/x//" read-write. It must be
 * the same setting, decided by the higher priority: one mount, read-only. */
static void test_respelled_mount_loses(void **state)
{
	static const char *const spellings[] = { "/x/", "/x/.", "/x//", "//x", "/./x" };
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		char *dir = tmpdir_new(), buf[512];
		write_profile(dir, "lock",
			      "{'name':'lock','priority':100,'sandbox':{'mounts':[{'source':'/srv/data',"
			      "'destination':'/x','readonly':true}]}}");
		snprintf(buf, sizeof(buf),
			 "{'name':'low','priority':0,'sandbox':{'mounts':[{'source':'/srv/data',"
			 "'destination':'%s','readonly':false}]}}",
			 spellings[i]);
		write_profile(dir, "low", buf);
		const char *names[] = { "low", "lock" };
		scm_error *err = NULL;
		policy_effective *e = build(dir, names, 2, &err);
		assert_non_null(e);
		const policy_sandbox *sb = policy_effective_sandbox(e);
		if (sb->n_mounts != 1 || !sb->mounts[0].readonly)
			fail_msg("%s: %zu mount(s), first %s", spellings[i], sb->n_mounts,
				 sb->n_mounts && sb->mounts[0].readonly ? "read-only" : "writable");
		assert_string_equal(sb->mounts[0].destination, "/x");
		policy_effective_unref(e);
		rm_rf(dir);
		free(dir);
	}
}

int main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = cases[i].spelled[0] ? cases[i].spelled : "(empty)",
						  .test_func = run_case, .initial_state = (void *)&cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_respelled_mount_loses);
	return _cmocka_run_group_tests("policy paths", tests, n, NULL, NULL);
}
