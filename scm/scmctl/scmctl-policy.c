/* scmctl-policy.c: `scmctl policy ...`, the authoring tools of the policy
 * engine. Offline subcommands (lint, effective/explain/check with
 * --profiles, graph, suggest) read profile files directly through
 * policy.h; the ones about a running container (effective CONTAINER,
 * explain CONTAINER ..., reload) ask scmd through scmctl_control_call(),
 * which scmctl provides. Entry: scmctl_policy(argc, argv) with argv[0] =
 * "policy". Exit codes: 0 ok (check: allowed), 1 lint errors / denied /
 * failure, 2 usage. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include <scm/macro.h>
#include <scm/scm.h>

#include "policy.h"
#include "scmctl.h" /* scmctl_control_call(): one call on scmd's control socket */

/* Where installed interfaces live: scm/build.mk passes the data dir. */
#ifdef SCM_DATADIR
#define IDL_DIR SCM_DATADIR "/idl"
#else
#define IDL_DIR POLICY_DEFAULT_IDL_DIR
#endif

typedef struct opts {
	const char *config, *idl, *profiles, *svg;
	bool json;
	char **pos;
	size_t n_pos;
} opts;

static void usage(FILE *f)
{
	fputs("usage: scmctl policy COMMAND ...\n"
	      "  lint [--config DIR] [--idl DIR] [FILE...]     check profiles (exit 1 on errors)\n"
	      "  lint --profiles A,B                           ... as one container carries them\n"
	      "  effective --profiles A,B [--json]             the merged profile with origins\n"
	      "  effective CONTAINER [--json]                  ... of a running container (scmd)\n"
	      "  explain --profiles A,B SERVICE [METHOD [ARGS]]  why allowed or denied\n"
	      "  explain CONTAINER SERVICE [METHOD [ARGS]]     ... for a running container (scmd)\n"
	      "  check --profiles A,B SERVICE METHOD [ARGS]    what-if: exit 0 allow, 1 deny\n"
	      "  explain|check ... @clipboard FROM TO          a clipboard flow (FROM, TO: endpoint\n"
	      "                                                names or @viewer), as these profiles decide it\n"
	      "  graph [--config DIR] [--svg FILE]             who may call what (Graphviz DOT)\n"
	      "  suggest AUDIT-LOG [--json]                    rules that would allow logged denials\n"
	      "  reload                                        make scmd reload its profiles\n"
	      "options: --config DIR (profiles in DIR/profiles or DIR; default " POLICY_DEFAULT_DIR ")\n"
	      "         --idl DIR (interfaces; default $SCM_IDL_DIR, " IDL_DIR ", ./stubs/idl)\n",
	      f);
}

static int fail_print(const char *what, scm_error *err)
{
	fprintf(stderr, "scmctl policy %s: failed\n", what);
	if (err)
		scm_error_print(err, stderr);
	scm_error_free(err);
	return 1;
}

static int parse_opts(int argc, char **argv, opts *o)
{
	o->pos = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->pos)
		return -ENOMEM;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return 1;
		static const char *const names[] = { "--config", "--idl", "--profiles", "--svg" };
		const char **slots[] = { &o->config, &o->idl, &o->profiles, &o->svg };
		for (size_t k = 0; k < ELEMENTSOF(names) && !slot; k++) {
			size_t l = strlen(names[k]);
			if (strcmp(a, names[k]) == 0) {
				if (i + 1 >= argc) {
					fprintf(stderr, "scmctl policy: %s needs a value\n", a);
					return -EINVAL;
				}
				slot = slots[k];
				*slot = argv[++i];
			} else if (strncmp(a, names[k], l) == 0 && a[l] == '=') {
				slot = slots[k];
				*slot = a + l + 1;
			}
		}
		if (slot)
			continue;
		if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
			fprintf(stderr, "scmctl policy: unknown option %s\n", a);
			return -EINVAL;
		}
		o->pos[o->n_pos++] = argv[i];
	}
	return 0;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --config DIR names scm's configuration root (profiles in DIR/profiles)
 * or the profile directory itself. */
static char *profile_dir(const opts *o)
{
	char *p = NULL;
	if (!o->config)
		return strdup(getenv("SCM_PROFILE_DIR") ? getenv("SCM_PROFILE_DIR") : POLICY_DEFAULT_DIR);
	if (asprintf(&p, "%s/profiles", o->config) < 0)
		return NULL;
	if (is_dir(p))
		return p;
	free(p);
	return strdup(o->config);
}

/* Loads the interfaces; without any IDL directory, lint cannot check
 * service names and says so rather than failing. */
static int load_idl(const opts *o, policy_idl_set **ret)
{
	const char *cands[] = { o->idl, getenv("SCM_IDL_DIR"), IDL_DIR, "stubs/idl" };
	scm_error *err = NULL;
	for (size_t i = 0; i < ELEMENTSOF(cands); i++) {
		if (!cands[i] || (i > 0 && !is_dir(cands[i])))
			continue;
		policy_idl_set *s = policy_idl_set_new();
		if (!s)
			return -ENOMEM;
		if (policy_idl_set_load_dir(s, cands[i], &err)) {
			policy_idl_set_free(s);
			return fail_print("interfaces", err) ? -EINVAL : 0;
		}
		*ret = s;
		return 0;
	}
	fprintf(stderr, "scmctl policy: no interface directory found (--idl DIR): service and method "
			"names are not checked\n");
	*ret = NULL;
	return 0;
}

static int load_store(const opts *o, policy_store **ret)
{
	_cleanup_free_ char *dir = profile_dir(o);
	scm_error *err = NULL;
	if (!dir)
		return -ENOMEM;
	if (policy_store_load_dir(dir, ret, &err))
		return fail_print("load", err) ? -EINVAL : 0;
	return 0;
}

static int split_names(const char *list, char ***ret, size_t *ret_n)
{
	char **v = NULL, *dup = strdup(list), *save = NULL;
	size_t n = 0;
	if (!dup)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char **nv = realloc(v, (n + 2) * sizeof(char *));
		if (!nv)
			break;
		v = nv;
		v[n++] = strdup(t);
		v[n] = NULL;
	}
	free(dup);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The effective profile of --profiles, from the profile directory. */
static int offline_effective(const opts *o, policy_effective **ret)
{
	policy_store *st = NULL;
	policy_idl_set *idl = NULL;
	char **names = NULL;
	size_t n = 0;
	scm_error *err = NULL;
	int r = load_store(o, &st);
	if (r == 0)
		r = load_idl(o, &idl);
	if (r == 0)
		r = split_names(o->profiles, &names, &n);
	if (r == 0 && n == 0) {
		fprintf(stderr, "scmctl policy: --profiles needs at least one name\n");
		r = -EINVAL;
	}
	if (r == 0 && policy_effective_build(st, (const char *const *)names, n, idl, ret, &err))
		r = fail_print("effective", err) ? -EINVAL : 0;
	free_names(names, n);
	policy_idl_set_free(idl);
	policy_store_free(st); /* the effective profile keeps what it needs */
	return r;
}

static const char *jget(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : "";
}

static void print_json(json_object *x)
{
	puts(json_object_to_json_string_ext(x, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int cmd_lint(const opts *o)
{
	policy_idl_set *idl = NULL;
	policy_store *st = NULL;
	policy_lint_report *rep = NULL;
	scm_error *err = NULL;
	char **good = NULL;
	size_t n_good = 0, parse_errors = 0;
	glob_t g = { 0 };
	int rc = 1;
	if (load_idl(o, &idl) < 0)
		return 1;
	char **files = o->pos;
	size_t n = o->n_pos;
	if (n == 0) {
		_cleanup_free_ char *dir = profile_dir(o), *pat = NULL;
		if (!dir || asprintf(&pat, "%s/*.json", dir) < 0)
			goto out;
		if (!is_dir(dir)) {
			fprintf(stderr, "scmctl policy lint: %s: no such profile directory\n", dir);
			goto out;
		}
		if (glob(pat, 0, NULL, &g) == 0) {
			files = g.gl_pathv;
			n = g.gl_pathc;
		}
	}
	/* parse every file on its own first, so one syntax error does not
	 * hide the others */
	good = calloc(n + 1, sizeof(char *));
	if (!good)
		goto out;
	for (size_t i = 0; i < n; i++) {
		policy_profile *p = NULL;
		if (policy_profile_load(files[i], &p, &err) == 0) {
			good[n_good++] = files[i];
			policy_profile_free(p);
			continue;
		}
		parse_errors++;
		for (scm_error *e = err; e; e = e->cause)
			fprintf(stdout, "%s [parse]\n", e->message);
		err = scm_error_free(err);
	}
	/* --profiles A,B: lint that combination, as a container carries it */
	char **names = NULL;
	size_t n_names = 0;
	if (o->profiles && split_names(o->profiles, &names, &n_names) < 0)
		goto out;
	int lr = policy_store_load_files(good, n_good, &st, &err);
	if (lr == 0)
		lr = policy_lint(st, idl, (const char *const *)names, o->profiles ? n_names : 0, &rep, &err);
	free_names(names, n_names);
	if (lr) {
		fail_print("lint", err);
		goto out;
	}
	policy_lint_report_print(rep, stdout);
	fprintf(stderr, "%zu file(s): %zu error(s), %zu warning(s)\n", n,
		rep->n_errors + parse_errors, rep->n_warnings);
	rc = rep->n_errors + parse_errors > 0;
out:
	free(good);
	globfree(&g);
	policy_lint_report_free(rep);
	policy_store_free(st);
	policy_idl_set_free(idl);
	return rc;
}

static int cmd_effective(const opts *o)
{
	json_object *x = NULL;
	scm_error *err = NULL;
	if (o->profiles) {
		policy_effective *e = NULL;
		if (o->n_pos) {
			fprintf(stderr, "scmctl policy effective: --profiles or CONTAINER, not both\n");
			return 2;
		}
		if (offline_effective(o, &e) < 0)
			return 1;
		int r = policy_effective_to_json(e, &x, &err);
		policy_effective_unref(e);
		if (r)
			return fail_print("effective", err);
	} else {
		if (o->n_pos != 1) {
			usage(stderr);
			return 2;
		}
		json_object *args = json_object_new_object();
		json_object_object_add(args, "endpoint", json_object_new_string(o->pos[0]));
		int r = scmctl_control_call("policy.effective", args, &x, &err);
		json_object_put(args);
		if (r)
			return fail_print("effective", err);
	}
	if (o->json)
		print_json(x);
	else
		policy_effective_print(x, stdout);
	json_object_put(x);
	return 0;
}

/* explain and check share their arguments: SERVICE [METHOD [ARGS]]. */
static int cmd_explain(const opts *o, bool check)
{
	json_object *x = NULL;
	scm_error *err = NULL;
	size_t base = o->profiles ? 0 : 1;
	size_t n = o->n_pos - (o->n_pos >= base ? base : 0);
	if (o->n_pos < base + (check ? 2 : 1) || n > 3 || (check && !o->profiles)) {
		if (check && !o->profiles)
			fprintf(stderr, "scmctl policy check: needs --profiles A,B (what-if on files)\n");
		usage(stderr);
		return 2;
	}
	const char *svc = o->pos[base], *method = n > 1 ? o->pos[base + 1] : NULL,
		   *args = n > 2 ? o->pos[base + 2] : NULL;
	if (o->profiles) {
		policy_effective *e = NULL;
		if (offline_effective(o, &e) < 0)
			return check ? 2 : 1;
		int r = policy_explain(e, svc, method, args, &x, &err);
		policy_effective_unref(e);
		if (r) {
			fail_print(check ? "check" : "explain", err);
			return check ? 2 : 1;
		}
	} else {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "endpoint", json_object_new_string(o->pos[0]));
		json_object_object_add(a, "service", json_object_new_string(svc));
		if (method)
			json_object_object_add(a, "method", json_object_new_string(method));
		if (args)
			json_object_object_add(a, "args", json_object_new_string(args));
		int r = scmctl_control_call("policy.explain", a, &x, &err);
		json_object_put(a);
		if (r)
			return fail_print("explain", err);
	}
	bool allowed = strcmp(jget(x, "decision"), "allow") == 0;
	if (o->json)
		print_json(x);
	else if (check)
		printf("%s: %s\n", allowed ? "allow" : "deny", jget(x, "origin"));
	else
		policy_explain_print(x, stdout);
	json_object_put(x);
	return check && !allowed ? 1 : 0;
}

static int cmd_graph(const opts *o)
{
	policy_store *st = NULL;
	policy_idl_set *idl = NULL;
	scm_error *err = NULL;
	FILE *out = stdout, *pipe = NULL;
	int rc = 1;
	if (load_store(o, &st) < 0 || load_idl(o, &idl) < 0)
		goto out;
	if (o->svg) {
		_cleanup_free_ char *cmd = NULL;
		if (system("command -v dot >/dev/null 2>&1") != 0) {
			fprintf(stderr, "scmctl policy graph: --svg needs Graphviz's dot (apt-get install graphviz)\n");
			goto out;
		}
		/* the path goes through the shell: quote it */
		if (strchr(o->svg, '\'')) {
			fprintf(stderr, "scmctl policy graph: unsupported character ' in %s\n", o->svg);
			goto out;
		}
		if (asprintf(&cmd, "dot -Tsvg -o '%s'", o->svg) < 0 || !(pipe = popen(cmd, "we")))
			goto out;
		out = pipe;
	}
	if (policy_graph_dot(st, idl, out, &err)) {
		fail_print("graph", err);
		goto out;
	}
	rc = 0;
out:
	if (pipe) {
		int st2 = pclose(pipe);
		if (st2 != 0) {
			fprintf(stderr, "scmctl policy graph: dot failed\n");
			rc = 1;
		}
	}
	policy_store_free(st);
	policy_idl_set_free(idl);
	return rc;
}

/* Adds "decided_by" (today's verdict and its origin) to a suggestion. */
static void annotate(json_object *sug, const policy_store *st, const policy_idl_set *idl)
{
	json_object *profs, *ms;
	const char *names[64];
	size_t n = 0;
	policy_effective *e = NULL;
	if (!json_object_object_get_ex(sug, "profiles", &profs) || !json_object_object_get_ex(sug, "methods", &ms))
		return;
	for (size_t i = 0; i < json_object_array_length(profs) && n < 64; i++)
		names[n++] = json_object_get_string(json_object_array_get_idx(profs, i));
	if (policy_effective_build(st, names, n, idl, &e, NULL) != 0) {
		json_object_object_add(sug, "decided_by", json_object_new_string("(profiles not in --config)"));
		return;
	}
	const char *m = json_object_get_string(json_object_array_get_idx(ms, 0));
	char *why = NULL;
	policy_decision d;
	if (m && strcmp(m, "*") != 0) {
		int r = policy_check_call(e, jget(sug, "service"), m, NULL, &why);
		if (r >= 0)
			json_object_object_add(sug, "decided_by", json_object_new_string(why));
	} else if (policy_decide(e, jget(sug, "service"), &d) >= 0) {
		json_object_object_add(sug, "decided_by", json_object_new_string(d.origin));
		policy_decision_clear(&d);
	}
	free(why);
	policy_effective_unref(e);
}

static int cmd_suggest(const opts *o)
{
	json_object *x = NULL;
	scm_error *err = NULL;
	if (o->n_pos != 1) {
		usage(stderr);
		return 2;
	}
	_cleanup_fclose_ FILE *f = strcmp(o->pos[0], "-") ? fopen(o->pos[0], "re") : NULL;
	if (!f && strcmp(o->pos[0], "-")) {
		fprintf(stderr, "scmctl policy suggest: %s: %m\n", o->pos[0]);
		return 1;
	}
	if (policy_suggest(f ? f : stdin, o->pos[0], &x, &err))
		return fail_print("suggest", err);
	/* with --config, say which rule denies each group today */
	policy_store *st = NULL;
	policy_idl_set *idl = NULL;
	if (o->config && (load_store(o, &st) < 0 || load_idl(o, &idl) < 0)) {
		json_object_put(x);
		policy_store_free(st);
		return 1;
	}
	for (size_t i = 0; st && i < json_object_array_length(x); i++)
		annotate(json_object_array_get_idx(x, i), st, idl);
	policy_idl_set_free(idl);
	policy_store_free(st);
	if (o->json) {
		print_json(x);
	} else {
		for (size_t i = 0; i < json_object_array_length(x); i++) {
			json_object *s = json_object_array_get_idx(x, i), *v, *rule;
			json_object_object_get_ex(s, "denials", &v);
			printf("# %d denied connect(s) to %s", json_object_get_int(v), jget(s, "service"));
			json_object_object_get_ex(s, "callers", &v);
			printf(" by %s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_object_get_ex(s, "profiles", &v);
			printf(" with profiles %s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			if (json_object_object_get_ex(s, "decided_by", &v))
				printf("# today: %s\n", json_object_get_string(v));
			printf("# review, then add to a profile of priority above the deciding rule:\n");
			json_object_object_get_ex(s, "rule", &rule);
			printf("%s\n", json_object_to_json_string_ext(rule, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		}
		if (json_object_array_length(x) == 0)
			printf("# no denied connects in %s\n", o->pos[0]);
	}
	json_object_put(x);
	return 0;
}

static int cmd_reload(const opts *o)
{
	json_object *x = NULL, *args = json_object_new_object();
	scm_error *err = NULL;
	int r = scmctl_control_call("policy.reload", args, &x, &err);
	json_object_put(args);
	if (r)
		return fail_print("reload", err);
	if (x)
		print_json(x);
	/* say it in words too: an endpoint losing everything is not routine */
	json_object *cut = NULL;
	if (x && json_object_object_get_ex(x, "endpoints_denied", &cut) && json_object_is_type(cut, json_type_array))
		for (size_t i = 0; i < json_object_array_length(cut); i++) {
			json_object *one = json_object_array_get_idx(cut, i), *ep = NULL, *m = NULL;
			json_object_object_get_ex(one, "endpoint", &ep);
			json_object_object_get_ex(one, "missing_profiles", &m);
			fprintf(stderr, "scmctl: endpoint '%s': its profile(s) %s were deleted; its channels are revoked "
					"and it is denied everything until they are back\n",
				ep ? json_object_get_string(ep) : "?",
				m ? json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN) : "?");
		}
	json_object_put(x);
	return 0;
}

int scmctl_policy(int argc, char **argv)
{
	opts o = { 0 };
	int rc;
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	int r = parse_opts(argc, argv, &o);
	if (r) {
		free(o.pos);
		usage(r > 0 ? stdout : stderr);
		return r > 0 ? 0 : 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "lint") == 0)
		rc = cmd_lint(&o);
	else if (strcmp(cmd, "effective") == 0)
		rc = cmd_effective(&o);
	else if (strcmp(cmd, "explain") == 0)
		rc = cmd_explain(&o, false);
	else if (strcmp(cmd, "check") == 0)
		rc = cmd_explain(&o, true);
	else if (strcmp(cmd, "graph") == 0)
		rc = cmd_graph(&o);
	else if (strcmp(cmd, "suggest") == 0)
		rc = cmd_suggest(&o);
	else if (strcmp(cmd, "reload") == 0)
		rc = cmd_reload(&o);
	else {
		fprintf(stderr, "scmctl policy: unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = 2;
	}
	free(o.pos);
	return rc;
}
