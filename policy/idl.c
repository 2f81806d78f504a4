/* idl.c: the set of known services, their methods, parameters and
 * settings, read from the interface files (stubs/idl/NAME.json) by libscm's
 * parser (scm_idl_parse), the one scmd and scm-idlc use, so a file the
 * policy tools accept is one a service can be registered with. Rules are
 * checked against the set (lint) and globs and "methods": "*" are
 * expanded against it (merge). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/idl.h>
#include <scm/macro.h>

#include "internal.h"

policy_idl_set *policy_idl_set_new(void)
{
	return calloc(1, sizeof(policy_idl_set));
}

static void service_done(pidl_service *s)
{
	for (size_t i = 0; i < s->n_methods; i++) {
		for (size_t k = 0; k < s->methods[i].n_params; k++) {
			free(s->methods[i].params[k].name);
			free(s->methods[i].params[k].type);
		}
		free(s->methods[i].params);
		free(s->methods[i].name);
	}
	for (size_t i = 0; i < s->n_settings; i++)
		free(s->settings[i].name);
	free(s->settings);
	free(s->methods);
	free(s->name);
	*s = (pidl_service){ 0 };
}

policy_idl_set *policy_idl_set_free(policy_idl_set *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		service_done(&s->services[i]);
	free(s->services);
	free(s);
	return NULL;
}

size_t policy_idl_set_size(const policy_idl_set *s)
{
	return s ? s->n : 0;
}

const pidl_service *pidl_find(const policy_idl_set *s, const char *name)
{
	size_t lo = 0, hi = s ? s->n : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->services[mid].name, name);
		if (c == 0)
			return &s->services[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const pidl_method *pidl_find_method(const pidl_service *s, const char *name)
{
	for (size_t i = 0; s && i < s->n_methods; i++)
		if (strcmp(s->methods[i].name, name) == 0)
			return &s->methods[i];
	return NULL;
}

const pidl_param *pidl_find_param(const pidl_method *m, const char *name)
{
	for (size_t i = 0; m && i < m->n_params; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return &m->params[i];
	return NULL;
}

static int method_cmp(const void *a, const void *b)
{
	return strcmp(((const pidl_method *)a)->name, ((const pidl_method *)b)->name);
}

/* Takes svc (moved in), replacing a service of the same name. */
static int idl_insert(policy_idl_set *s, pidl_service *svc)
{
	size_t lo = 0, hi = s->n;
	qsort(svc->methods, svc->n_methods, sizeof(pidl_method), method_cmp);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->services[mid].name, svc->name);
		if (c == 0) {
			service_done(&s->services[mid]);
			s->services[mid] = *svc;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		pidl_service *n = realloc(s->services, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->services = n;
		s->cap = cap;
	}
	memmove(&s->services[lo + 1], &s->services[lo], (s->n - lo) * sizeof(pidl_service));
	s->services[lo] = *svc;
	s->n++;
	return 0;
}

int policy_idl_set_add(policy_idl_set *s, const char *service, const char *const *methods,
		       size_t n_methods, scm_error **ret_err)
{
	if (!name_valid(service, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "bad service name \"%.80s\"", service ? service : "");
	pidl_service svc = { .name = strdup(service), .methods = calloc(n_methods + 1, sizeof(pidl_method)) };
	if (!svc.name || !svc.methods) {
		service_done(&svc);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n_methods; i++) {
		if (!name_valid(methods[i], SCM_NAME_MAX, NAME_RULE)) {
			service_done(&svc);
			return scm_fail(ret_err, SCM_E_INVALID, "%s: bad method name \"%.80s\"", service,
					methods[i] ? methods[i] : "");
		}
		if (!(svc.methods[i].name = strdup(methods[i]))) {
			service_done(&svc);
			return scm_fail(ret_err, -ENOMEM, "out of memory");
		}
		svc.n_methods++;
	}
	if (idl_insert(s, &svc) < 0) {
		service_done(&svc);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int copy_settings(pidl_service *to, const scm_idl_setting *from, size_t n)
{
	if (!(to->settings = calloc(n + 1, sizeof(scm_idl_setting))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		to->settings[i] = from[i];
		to->settings[i].doc = NULL;
		if (!(to->settings[i].name = strdup(from[i].name)))
			return -ENOMEM;
		to->n_settings++;
	}
	return 0;
}

static int copy_service(const pidl_service *from, const char *name, pidl_service *ret)
{
	pidl_service svc = { .name = strdup(name), .methods = calloc(from->n_methods + 1, sizeof(pidl_method)) };
	if (!svc.name || !svc.methods || copy_settings(&svc, from->settings, from->n_settings) < 0)
		goto oom;
	for (size_t i = 0; i < from->n_methods; i++) {
		const pidl_method *fm = &from->methods[i];
		pidl_method *m = &svc.methods[i];
		svc.n_methods++;
		m->params_known = fm->params_known;
		if (!(m->name = strdup(fm->name)) || !(m->params = calloc(fm->n_params + 1, sizeof(pidl_param))))
			goto oom;
		for (size_t k = 0; k < fm->n_params; k++) {
			m->n_params++;
			if (!(m->params[k].name = strdup(fm->params[k].name)) ||
			    !(m->params[k].type = strdup(fm->params[k].type)))
				goto oom;
			m->params[k].is_path = fm->params[k].is_path;
		}
	}
	*ret = svc;
	return 0;
oom:
	service_done(&svc);
	return -ENOMEM;
}

int policy_idl_set_alias(policy_idl_set *s, const char *service, const char *interface,
			 scm_error **ret_err)
{
	const pidl_service *from = pidl_find(s, interface);
	pidl_service svc;
	if (!name_valid(service, SCM_NAME_MAX, NAME_RULE))
		return scm_fail(ret_err, SCM_E_INVALID, "bad service name \"%.80s\"", service ? service : "");
	if (!from)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "unknown interface \"%.80s\"", interface);
	if (copy_service(from, service, &svc) < 0 || idl_insert(s, &svc) < 0)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	return 0;
}

policy_idl_set *pidl_copy(const policy_idl_set *s)
{
	policy_idl_set *c = policy_idl_set_new();
	if (!c)
		return NULL;
	for (size_t i = 0; s && i < s->n; i++) {
		pidl_service svc;
		if (copy_service(&s->services[i], s->services[i].name, &svc) < 0 || idl_insert(c, &svc) < 0)
			return policy_idl_set_free(c);
	}
	return c;
}

/* The policy's view of a parsed interface: method and parameter names,
 * parameter types, which strings are paths, the settings schema. */
static int from_scm_idl(const scm_idl *idl, pidl_service *svc)
{
	if (!(svc->name = strdup(idl->name)) || !(svc->methods = calloc(idl->n_methods + 1, sizeof(pidl_method))) ||
	    copy_settings(svc, idl->settings, idl->n_settings) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *im = &idl->methods[i];
		pidl_method *pm = &svc->methods[svc->n_methods++];
		pm->params_known = true;
		if (!(pm->name = strdup(im->name)) || !(pm->params = calloc(im->n_params + 1, sizeof(pidl_param))))
			return -ENOMEM;
		for (size_t k = 0; k < im->n_params; k++) {
			pidl_param *pp = &pm->params[pm->n_params++];
			pp->name = strdup(im->params[k].name);
			pp->type = strdup(scm_idl_type_name(im->params[k].type));
			if (!pp->name || !pp->type)
				return -ENOMEM;
			pp->is_path = im->params[k].is_path;
		}
	}
	return 0;
}

int policy_idl_set_load_file(policy_idl_set *s, const char *path, scm_error **ret_err)
{
	scm_idl *idl = NULL;
	int r = scm_idl_load(path, &idl, ret_err);
	if (r)
		return r;
	pidl_service svc = { 0 };
	r = from_scm_idl(idl, &svc) < 0 || idl_insert(s, &svc) < 0 ? -ENOMEM : 0;
	scm_idl_free(idl);
	if (r) {
		service_done(&svc);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	return 0;
}

const char *pidl_setting_check(const pidl_service *svc, const char *name, struct json_object *v)
{
	const scm_idl_setting *st = NULL;
	for (size_t i = 0; svc && i < svc->n_settings && !st; i++)
		if (strcmp(svc->settings[i].name, name) == 0)
			st = &svc->settings[i];
	if (!st)
		return "is not a setting the service's interface declares";
	return scm_idl_setting_check(st, v);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_idl_set_load_dir(policy_idl_set *s, const char *dir, scm_error **ret_err)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	int r = 0;
	struct dirent *de;
	if (!d)
		return scm_fail(ret_err, -errno, "%s: cannot open IDL directory: %m", dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		if (strv_add(&names, &n, de->d_name) < 0) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), name_cmp);
	for (size_t i = 0; r == 0 && i < n; i++) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			r = scm_fail(ret_err, -ENOMEM, "out of memory");
			break;
		}
		r = policy_idl_set_load_file(s, path, ret_err);
	}
	strv_free(names);
	return r;
}
