/* helpers.h: shared by the policy unit tests: profiles written from
 * compact JSON (single quotes become double quotes, so tables stay
 * readable), a temporary profile directory, and the test interfaces. */
#pragma once
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "policy.h"

/* 'x' -> "x": table entries stay readable C strings. */
static inline char *J(const char *s)
{
	char *d = strdup(s);
	for (char *p = d; p && *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static inline int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static inline void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *tmpdir_new(void)
{
	char *d = strdup("/tmp/scm-policy-test-XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static inline void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Writes NAME.json with compact JSON jtext (quotes as '). */
static inline void write_profile(const char *dir, const char *name, const char *jtext)
{
	char file[256];
	char *t = J(jtext);
	snprintf(file, sizeof(file), "%s.json", name);
	write_file(dir, file, t);
	free(t);
}

/* echo, vdisk and gfx, as the tests expect them. */
static inline policy_idl_set *test_idl(void)
{
	static const char *const idls[] = {
		"{'interface':'echo','version':1,'methods':[{'name':'ping'},"
		"{'name':'echo','params':[{'name':'data','type':'bytes'}]},"
		"{'name':'greet','params':[{'name':'name','type':'string'}]},"
		"{'name':'sleep','params':[{'name':'ms','type':'uint'}]},{'name':'crash'}]}",
		"{'interface':'vdisk','version':1,'methods':["
		"{'name':'open','params':[{'name':'path','type':'string','format':'path'},{'name':'readonly','type':'bool'}]},"
		"{'name':'read','params':[{'name':'offset','type':'uint'},{'name':'len','type':'uint'}]},"
		"{'name':'close'}]}",
		"{'interface':'gfx','version':1,'methods':[{'name':'draw'},{'name':'present'}],"
		"'settings':[{'name':'weight','type':'uint','min':1,'max':10000},{'name':'label','type':'string'}]}",
	};
	char *dir = tmpdir_new();
	policy_idl_set *s = policy_idl_set_new();
	scm_error *err = NULL;
	for (size_t i = 0; i < sizeof(idls) / sizeof(idls[0]); i++) {
		char name[32];
		char *t = J(idls[i]);
		snprintf(name, sizeof(name), "i%zu.json", i);
		write_file(dir, name, t);
		free(t);
	}
	if (policy_idl_set_load_dir(s, dir, &err) != 0) {
		scm_error_print(err, stderr);
		fail();
	}
	rm_rf(dir);
	free(dir);
	return s;
}

static inline policy_store *load_store_or_fail(const char *dir)
{
	policy_store *st = NULL;
	scm_error *err = NULL;
	if (policy_store_load_dir(dir, &st, &err) != 0) {
		scm_error_print(err, stderr);
		scm_error_free(err);
		fail_msg("cannot load %s", dir);
	}
	return st;
}
