/* bench-main.c: policy-bench, the policy figures for `make bench`:
 * parsing and merging 1,000 profiles of 50 rules, the connect decision
 * with that policy loaded (median and p99 of batches), a single-call check,
 * and re-checking 10,000 live grants as a reload does. Prints lines
 * "policy <name>: <value> <unit>". Usage: policy-bench [PROFILES [RULES]] */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "policy.h"

#define N_SERVICES 200
#define N_METHODS 8
#define BATCH 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void die(const char *what, scm_error *err)
{
	fprintf(stderr, "policy-bench: %s failed\n", what);
	if (err)
		scm_error_print(err, stderr);
	exit(1);
}

/* Profile i: a priority shared by many (so overrides and ties both
 * happen), rules over a spread of services, a glob, some constraints. */
static void write_profiles(const char *dir, int n, int rules, unsigned *seed)
{
	for (int i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/p%04d.json", dir, i);
		FILE *f = fopen(path, "we");
		if (!f)
			die("writing profiles", NULL);
		fprintf(f, "{\"name\":\"p%04d\",\"priority\":%d,\"services\":[", i, i % 50);
		for (int k = 0; k < rules; k++) {
			int s = rand_r(seed) % N_SERVICES, m = rand_r(seed) % N_METHODS;
			const char *action = rand_r(seed) % 4 == 0 ? "deny" : "allow";
			if (k)
				fputc(',', f);
			if (k == 0)
				fprintf(f, "{\"service\":\"svc%d*\",\"methods\":\"*\",\"action\":\"allow\"}", s % 10);
			else if (k % 5 == 0 && action[0] == 'a')
				fprintf(f, "{\"service\":\"svc%03d\",\"methods\":[\"m%d\"],\"action\":\"allow\","
					   "\"args\":{\"n\":{\"range\":[0,%d]},\"path\":{\"path_prefix\":\"/d/%d\"}}}",
					s, m, k, i);
			else
				fprintf(f, "{\"service\":\"svc%03d\",\"methods\":[\"m%d\",\"m%d\"],\"action\":\"%s\"}", s, m,
					(m + 1) % N_METHODS, action);
		}
		fprintf(f, "],\"sandbox\":{\"syscalls\":{\"allow\":[\"read\",\"write\"]},\"limits\":{\"pids\":%d}}}\n",
			1 + i % 100);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000, rules = argc > 2 ? atoi(argv[2]) : 50;
	unsigned seed = 42;
	scm_error *err = NULL;
	char dir[] = "/tmp/scm-bench-policy-XXXXXX";
	if (n < 1 || rules < 1 || !mkdtemp(dir))
		die("setup", NULL);
	write_profiles(dir, n, rules, &seed);

	policy_idl_set *idl = policy_idl_set_new();
	for (int s = 0; s < N_SERVICES; s++) {
		char name[32], mn[N_METHODS][8];
		const char *ms[N_METHODS];
		snprintf(name, sizeof(name), "svc%03d", s);
		for (int m = 0; m < N_METHODS; m++) {
			snprintf(mn[m], sizeof(mn[m]), "m%d", m);
			ms[m] = mn[m];
		}
		if (policy_idl_set_add(idl, name, ms, N_METHODS, &err))
			die("idl", err);
	}

	double t0 = now();
	policy_store *st = NULL;
	if (policy_store_load_dir(dir, &st, &err))
		die("load", err);
	double t1 = now();
	const char **names = calloc((size_t)n, sizeof(char *));
	for (size_t i = 0; i < policy_store_size(st); i++)
		names[i] = policy_profile_name(policy_store_at(st, i));
	/* merge: best of 3, so one page-fault-heavy first run does not decide */
	double merge = 1e9;
	policy_effective *e = NULL;
	for (int round = 0; round < 3; round++) {
		policy_effective *x = NULL;
		double a = now();
		if (policy_effective_build(st, names, (size_t)n, idl, &x, &err))
			die("merge", err);
		double b = now();
		merge = b - a < merge ? b - a : merge;
		policy_effective_unref(e);
		e = x;
	}
	printf("policy parse %d profiles x %d rules: %.1f ms\n", n, rules, (t1 - t0) * 1e3);
	/* what a reload costs before any merge: parse and lint the directory */
	policy_store *linted = NULL;
	double l0 = now();
	int lr = policy_store_load(dir, idl, &linted, &err);
	double l1 = now();
	if (lr && lr != SCM_E_INVALID)
		die("load+lint", err);
	printf("policy load+lint directory of %d profiles: %.1f ms\n", n, (l1 - l0) * 1e3);
	scm_error_free(err);
	err = NULL;
	policy_store_free(linted);
	printf("policy merge %d profiles x %d rules: %.1f ms\n", n, rules, merge * 1e3);
	printf("policy equal-priority conflicts in the bench set: %zu count\n", policy_effective_conflicts(e));

	/* connect decisions: batches of BATCH lookups over all services */
	char svc[N_SERVICES][16];
	for (int s = 0; s < N_SERVICES; s++)
		snprintf(svc[s], sizeof(svc[s]), "svc%03d", s);
	size_t nb = 20000, allowed = 0;
	double *per = calloc(nb, sizeof(double));
	for (size_t b = 0; b < nb; b++) {
		double a = now();
		for (int k = 0; k < BATCH; k++) {
			policy_decision d;
			allowed += policy_decide(e, svc[(b * BATCH + (size_t)k * 7) % N_SERVICES], &d) == 0;
			policy_decision_clear(&d);
		}
		per[b] = (now() - a) / BATCH;
	}
	qsort(per, nb, sizeof(double), dcmp);
	printf("policy connect decision median: %.3f us\n", per[nb / 2] * 1e6);
	printf("policy connect decision p99: %.3f us\n", per[nb * 99 / 100] * 1e6);
	if (allowed == 0)
		fprintf(stderr, "policy-bench: no connect was allowed: the bench set is wrong\n");

	/* one call checked with arguments (explain/check path) */
	json_object *args = json_tokener_parse("{\"n\":3,\"path\":\"/d/1/x\"}");
	double a = now();
	size_t calls = 200000;
	for (size_t i = 0; i < calls; i++) {
		char m[4] = { 'm', (char)('0' + i % N_METHODS), 0 };
		policy_check_call(e, svc[i % N_SERVICES], m, args, NULL);
	}
	printf("policy call check with args: %.3f us\n", (now() - a) / (double)calls * 1e6);
	json_object_put(args);

	/* reload: 10,000 live channels re-checked against a new effective
	 * profile (the same set here, so every grant is kept) */
	size_t live = 10000, kept = 0;
	const char **grants = calloc(live, sizeof(char *));
	const char **gsvc = calloc(live, sizeof(char *));
	policy_decision *ds = calloc(live, sizeof(policy_decision));
	size_t ng = 0;
	for (size_t i = 0; ng < live && i < live * 4; i++) {
		if (policy_decide(e, svc[i % N_SERVICES], &ds[ng]) == 0) {
			grants[ng] = ds[ng].grant_json;
			gsvc[ng] = svc[i % N_SERVICES];
			ng++;
		}
	}
	policy_effective *e2 = NULL;
	a = now();
	if (policy_effective_build(st, names, (size_t)n, idl, &e2, &err))
		die("rebuild", err);
	double b = now();
	for (size_t i = 0; i < ng; i++) {
		bool keep = false;
		if (policy_grant_recheck(e2, gsvc[i], grants[i], &keep, NULL, &err))
			die("recheck", err);
		kept += keep;
	}
	double c = now();
	printf("policy reload rebuild (same set): %.1f ms\n", (b - a) * 1e3);
	printf("policy reload recheck %zu live grants: %.1f ms\n", ng, (c - b) * 1e3);
	if (kept != ng)
		fprintf(stderr, "policy-bench: %zu of %zu unchanged grants were not kept\n", ng - kept, ng);
	for (size_t i = 0; i < ng; i++)
		policy_decision_clear(&ds[i]);
	policy_effective_unref(e2);
	policy_effective_unref(e);
	policy_store_free(st);
	policy_idl_set_free(idl);
	free(ds);
	free(grants);
	free(gsvc);
	free(per);
	free(names);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return kept == ng && allowed ? 0 : 1;
}
