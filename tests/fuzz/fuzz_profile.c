/* fuzz_profile.c: libFuzzer target for the profile parser. Whatever
 * parses is also merged (alone and with a fixed second profile), compiled,
 * decided on, explained, linted and dumped, so the whole pipeline behind
 * the parser sees hostile-but-valid profiles too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static policy_idl_set *idl;
static policy_profile *fixed;

static void setup(void)
{
	static const char *const echo[] = { "ping", "echo", "greet", "sleep" };
	static const char *const vdisk[] = { "open", "read" };
	static const char fixed_text[] =
		"{\"name\":\"fixed\",\"priority\":3,\"services\":[{\"service\":\"*\",\"methods\":\"*\","
		"\"action\":\"allow\"},{\"service\":\"echo\",\"methods\":[\"sleep\"],\"action\":\"deny\"}],"
		"\"sandbox\":{\"network\":\"host\",\"limits\":{\"memory\":8388608}}}";
	idl = policy_idl_set_new();
	policy_idl_set_add(idl, "echo", echo, 4, NULL);
	policy_idl_set_add(idl, "vdisk", vdisk, 2, NULL);
	if (policy_profile_parse("fixed", fixed_text, sizeof(fixed_text) - 1, &fixed, NULL) != 0)
		abort();
}

static void exercise(policy_store *st)
{
	const char *names[2] = { st->profiles[0]->name, st->n > 1 ? st->profiles[1]->name : NULL };
	policy_effective *e = NULL;
	if (policy_effective_build(st, names, st->n, idl, &e, NULL) != 0)
		return;
	static const char *const svcs[] = { "echo", "vdisk", "other", "v1" };
	for (size_t i = 0; i < 4; i++) {
		policy_decision d;
		if (policy_decide(e, svcs[i], &d) >= 0) {
			if (d.grant_json) {
				bool keep;
				char *why = NULL;
				policy_grant_recheck(e, svcs[i], d.grant_json, &keep, &why, NULL);
				free(why);
			}
			policy_decision_clear(&d);
		}
		json_object *x = NULL;
		if (policy_explain(e, svcs[i], "sleep", "{\"ms\":3,\"path\":\"/d/x\"}", &x, NULL) == 0)
			json_object_put(x);
	}
	json_object *j = NULL;
	if (policy_effective_to_json(e, &j, NULL) == 0)
		json_object_put(j);
	policy_effective_unref(e);
	policy_lint_report *rep = NULL;
	if (policy_lint(st, idl, NULL, 0, &rep, NULL) == 0)
		policy_lint_report_free(rep);
	rep = NULL;
	if (policy_lint(st, idl, names, st->n, &rep, NULL) == 0)
		policy_lint_report_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	policy_profile *p = NULL;
	scm_error *err = NULL;
	if (!idl)
		setup();
	if (policy_profile_parse("fuzz", (const char *)data, size, &p, &err) != 0) {
		scm_error_free(err);
		return 0;
	}
	/* a store by hand: the profile alone, then beside the fixed one */
	policy_profile *two[2] = { p, fixed };
	if (strcmp(p->name, "fixed") > 0) {
		two[0] = fixed;
		two[1] = p;
	}
	policy_store alone = { .ref = 1000, .profiles = &p, .n = 1 };
	exercise(&alone);
	if (strcmp(p->name, "fixed") != 0) {
		policy_store pair = { .ref = 1000, .profiles = two, .n = 2 };
		exercise(&pair);
	}
	policy_profile_free(p);
	return 0;
}
