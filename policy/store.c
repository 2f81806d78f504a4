/* store.c: a set of parsed profiles (a profile directory, or files named
 * on a command line), referenced by name. Loading is all or nothing: one
 * bad file, or a set that fails lint, and the caller gets an error and no
 * store, so a reload never half-applies. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <scm/macro.h>

#include "internal.h"

#define STORE_MAX 100000 /* profiles in one store */

static int profile_cmp(const void *a, const void *b)
{
	return strcmp((*(policy_profile *const *)a)->name, (*(policy_profile *const *)b)->name);
}

policy_store *policy_store_free(policy_store *s)
{
	if (!s || __atomic_sub_fetch(&s->ref, 1, __ATOMIC_SEQ_CST) > 0)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		policy_profile_free(s->profiles[i]);
	free(s->profiles);
	free(s);
	return NULL;
}

int policy_store_load_files(char *const *paths, size_t n, policy_store **ret, scm_error **ret_err)
{
	if (n > STORE_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "%zu profiles, more than %d", n, STORE_MAX);
	policy_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->profiles = calloc(n + 1, sizeof(policy_profile *)))) {
		free(s);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	s->ref = 1;
	for (size_t i = 0; i < n; i++) {
		int r = policy_profile_load(paths[i], &s->profiles[s->n], ret_err);
		if (r) {
			policy_store_free(s);
			return r;
		}
		s->n++;
	}
	qsort(s->profiles, s->n, sizeof(policy_profile *), profile_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(s->profiles[i]->name, s->profiles[i - 1]->name) == 0) {
			int r = scm_fail(ret_err, SCM_E_EXISTS, "profile \"%s\" is defined twice: %s and %s",
					 s->profiles[i]->name, s->profiles[i - 1]->file, s->profiles[i]->file);
			policy_store_free(s);
			return r;
		}
	*ret = s;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_store_load_dir(const char *dir, policy_store **ret, scm_error **ret_err)
{
	DIR *d = opendir(dir);
	char **paths = NULL;
	size_t n = 0;
	struct dirent *de;
	int r = 0;
	if (!d)
		return scm_fail(ret_err, -errno, "%s: cannot open profile directory: %m", dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char *p;
		/* NAME.json only: editors' backups and dot files are not profiles */
		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		if (n >= STORE_MAX) {
			r = scm_fail(ret_err, SCM_E_INVALID, "%s: more than %d profiles", dir, STORE_MAX);
			break;
		}
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
		int ar = strv_add(&paths, &n, p);
		free(p);
		if (ar < 0) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
	}
	closedir(d);
	if (r == 0) {
		if (n)
			qsort(paths, n, sizeof(char *), name_cmp);
		r = policy_store_load_files(paths, n, ret, ret_err);
	}
	strv_free(paths);
	return r;
}

int policy_store_load(const char *dir, const policy_idl_set *idl, policy_store **ret,
		      scm_error **ret_err)
{
	policy_store *s = NULL;
	policy_lint_report *rep = NULL;
	int r = policy_store_load_dir(dir, &s, ret_err);
	if (r)
		return r;
	r = policy_lint(s, idl, NULL, 0, &rep, ret_err);
	if (r == 0 && rep->n_errors > 0) {
		/* The first few findings go into the chain so scmctl reload can
		 * show why the set was refused. */
		scm_error *e = NULL;
		size_t shown = 0;
		for (size_t i = 0; i < rep->n_findings && shown < 5; i++) {
			const policy_finding *f = &rep->findings[i];
			if (f->severity != POLICY_LINT_ERROR)
				continue;
			shown++;
			e = e ? scm_error_wrap(e, SCM_E_INVALID, f->file, "%s: %s [%s]", f->pointer, f->message, f->kind)
			      : scm_error_new(SCM_E_INVALID, f->file, "%s: %s [%s]", f->pointer, f->message, f->kind);
		}
		if (ret_err) {
			*ret_err = e;
			e = NULL;
		}
		scm_error_free(e);
		r = scm_fail(ret_err, SCM_E_INVALID, "%s: %zu lint error(s), profile set not loaded",
				  dir, rep->n_errors);
	}
	policy_lint_report_free(rep);
	if (r) {
		policy_store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

size_t policy_store_size(const policy_store *s)
{
	return s ? s->n : 0;
}

const policy_profile *policy_store_at(const policy_store *s, size_t i)
{
	return s && i < s->n ? s->profiles[i] : NULL;
}

const policy_profile *policy_store_get(const policy_store *s, const char *name)
{
	size_t lo = 0, hi = s ? s->n : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->profiles[mid]->name, name);
		if (c == 0)
			return s->profiles[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
