/* fuzz_profile.c: libFuzzer target for the profile parser. Whatever
 * parses is also merged (alone and with a fixed second profile), compiled,
 * decided on, explained, linted and dumped, so the whole pipeline behind
 * the parser sees hostile-but-valid profiles too. Two properties abort:
 * a mount path in the effective sandbox that is not canonical, and the
 * tools (policy_check_call) allowing a call that the provider's skeleton
 * (scm_grant_check on the issued grant) denies, or the reverse. The
 * D-Bus rules a grant would carry are read by the bridge's own reader
 * (services/dbus-bridge/rules.c), which must accept every list the engine
 * writes, and a call to the first rule's own target is decided: a deny
 * rule first in merge order must deny it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/scm.h>

#include "internal.h"
#include "rules.h"

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
		"\"sandbox\":{\"network\":\"host\",\"limits\":{\"memory\":8388608},"
		"\"mounts\":[{\"source\":\"/srv/data\",\"destination\":\"/data\",\"readonly\":true}]}}";
	idl = policy_idl_set_new();
	policy_idl_set_add(idl, "echo", echo, 4, NULL);
	policy_idl_set_add(idl, "vdisk", vdisk, 2, NULL);
	if (policy_profile_parse("fixed", fixed_text, sizeof(fixed_text) - 1, &fixed, NULL) != 0)
		abort();
}

/* Canonical: absolute, no empty, "." or ".." component, no trailing
 * slash (the engine's own path_canon is internal to the library). */
static void check_canonical(const char *path)
{
	size_t n = strlen(path);
	if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") ||
	    (n > 1 && path[n - 1] == '/') || (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(path + n - 3, "/..") == 0))
		abort(); /* a mount key the merge could be fooled by */
}

static bool grant_has_method(json_object *grant, const char *method)
{
	json_object *m;
	if (!json_object_object_get_ex(grant, "methods", &m))
		return false;
	if (json_object_is_type(m, json_type_string))
		return strcmp(json_object_get_string(m), "*") == 0;
	for (size_t i = 0; i < json_object_array_length(m); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(m, i)), method) == 0)
			return true;
	return false;
}

/* The tools and the provider decide every call alike. */
static void check_agreement(const policy_effective *e, const char *svc, const char *grant_json)
{
	static const char *const methods[] = { "sleep", "greet", "open", "read" };
	static const char *const args[] = {
		"{\"ms\":3,\"name\":\"user-x\",\"path\":\"/d/x\"}",
		"{\"ms\":18446744073709551615,\"name\":\"user-\\u0000\",\"path\":\"/d/x\\u0000/../y\"}",
		"{\"ms\":9223372036854775807,\"name\":\"\",\"path\":\"/d/./x\"}",
		"{\"ms\":-1.5,\"name\":7,\"path\":\"/\",\"readonly\":true,\"len\":4096}",
		"{}",
	};
	json_object *g = json_tokener_parse(grant_json), *cons = NULL;
	if (!g)
		abort();
	json_object_object_get_ex(g, "constraints", &cons);
	scm_grant grant = { .service = svc, .caller = "fuzz", .constraints = cons };
	for (size_t m = 0; m < 4; m++)
		for (size_t a = 0; a < 5; a++) {
			json_object *aj = json_tokener_parse(args[a]);
			scm_error *err = NULL;
			int provider = scm_grant_check(&grant, methods[m], aj, &err);
			scm_error_free(err);
			int tool = policy_check_call(e, svc, methods[m], aj, NULL);
			if (tool == 0 && provider != 0)
				abort();
			if (tool != 0 && provider == 0 && grant_has_method(g, methods[m]))
				abort();
			json_object_put(aj);
		}
	json_object_put(g);
}

static void check_dbus(const policy_effective *e)
{
	json_object *dr = NULL, *args = json_tokener_parse("[\"app\", 7, \"\", \"s\"]");
	br_rules br;
	const char *why = NULL;
	char buf[1024];
	if (policy_grant_rules(e, "dbus", &dr, NULL) != 0) {
		json_object_put(args);
		return;
	}
	if (br_rules_parse(dr, &br, &why) != 0)
		abort(); /* the bridge could not read a grant the engine wrote */
	if (br.n) {
		const br_rule *r = &br.v[0];
		br_target t = { r->bus, r->destination, r->path_prefix, r->interface,
				r->methods && r->methods[0] ? r->methods[0] : "Any" };
		bool ok = br_decide(&br, &t, args, buf, sizeof(buf));
		if (ok && !r->allow)
			abort();
	}
	br_rules_done(&br);
	json_object_put(dr);
	json_object_put(args);
}

static void exercise(policy_store *st)
{
	const char *names[2] = { st->profiles[0]->name, st->n > 1 ? st->profiles[1]->name : NULL };
	policy_effective *e = NULL;
	if (policy_effective_build(st, names, st->n, idl, &e, NULL) != 0)
		return;
	const policy_sandbox *sb = policy_effective_sandbox(e);
	for (size_t i = 0; i < sb->n_mounts; i++) {
		check_canonical(sb->mounts[i].source);
		check_canonical(sb->mounts[i].destination);
	}
	static const char *const svcs[] = { "echo", "vdisk", "other", "v1" };
	for (size_t i = 0; i < 4; i++) {
		policy_decision d;
		if (policy_decide(e, svcs[i], &d) >= 0) {
			if (d.grant_json) {
				bool keep;
				char *why = NULL;
				policy_grant_recheck(e, svcs[i], d.grant_json, &keep, &why, NULL);
				free(why);
				check_agreement(e, svcs[i], d.grant_json);
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
	check_dbus(e);
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
