/* idl.c: the set of known services, their methods and parameters, read
 * from the interface files (stubs/idl/NAME.json). Rules are checked against it
 * (lint) and globs and "methods": "*" are expanded against it (merge). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

#define IDL_FILE_MAX (1024u * 1024u)

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
	if (!name_valid(service, false))
		return scm_fail(ret_err, SCM_E_INVALID, "bad service name \"%.80s\"", service ? service : "");
	pidl_service svc = { .name = strdup(service), .methods = calloc(n_methods + 1, sizeof(pidl_method)) };
	if (!svc.name || !svc.methods) {
		service_done(&svc);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n_methods; i++) {
		if (!name_valid(methods[i], false)) {
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

static int copy_service(const pidl_service *from, const char *name, pidl_service *ret)
{
	pidl_service svc = { .name = strdup(name), .methods = calloc(from->n_methods + 1, sizeof(pidl_method)) };
	if (!svc.name || !svc.methods)
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
	if (!name_valid(service, false))
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

static int idl_parse(const char *path, json_object *root, pidl_service *svc, scm_error **ret_err)
{
	json_object *v, *methods;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "interface", &v) || !json_object_is_type(v, json_type_string) ||
	    !name_valid(json_object_get_string(v), false))
		return scm_fail(ret_err, SCM_E_INVALID, "%s: /interface: expected an interface name", path);
	if (!(svc->name = strdup(json_object_get_string(v))))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	if (!json_object_object_get_ex(root, "methods", &methods) ||
	    !json_object_is_type(methods, json_type_array))
		return scm_fail(ret_err, SCM_E_INVALID, "%s: /methods: expected an array", path);
	size_t n = json_object_array_length(methods);
	if (!(svc->methods = calloc(n + 1, sizeof(pidl_method))))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(methods, i), *name, *params;
		if (!json_object_is_type(m, json_type_object) || !json_object_object_get_ex(m, "name", &name) ||
		    !json_object_is_type(name, json_type_string) || !name_valid(json_object_get_string(name), false))
			return scm_fail(ret_err, SCM_E_INVALID, "%s: /methods/%zu/name: expected a method name",
					path, i);
		pidl_method *pm = &svc->methods[svc->n_methods++];
		pm->params_known = true;
		if (!(pm->name = strdup(json_object_get_string(name))))
			return scm_fail(ret_err, -ENOMEM, "out of memory");
		if (!json_object_object_get_ex(m, "params", &params))
			continue;
		if (!json_object_is_type(params, json_type_array))
			return scm_fail(ret_err, SCM_E_INVALID, "%s: /methods/%zu/params: expected an array",
					path, i);
		size_t np = json_object_array_length(params);
		if (!(pm->params = calloc(np + 1, sizeof(pidl_param))))
			return scm_fail(ret_err, -ENOMEM, "out of memory");
		for (size_t k = 0; k < np; k++) {
			json_object *p = json_object_array_get_idx(params, k), *pn, *pt;
			if (!json_object_is_type(p, json_type_object) || !json_object_object_get_ex(p, "name", &pn) ||
			    !json_object_object_get_ex(p, "type", &pt) || !json_object_is_type(pn, json_type_string) ||
			    !json_object_is_type(pt, json_type_string))
				return scm_fail(ret_err, SCM_E_INVALID,
						"%s: /methods/%zu/params/%zu: expected {\"name\", \"type\"}", path, i, k);
			pidl_param *pp = &pm->params[pm->n_params++];
			pp->name = strdup(json_object_get_string(pn));
			pp->type = strdup(json_object_get_string(pt));
			if (!pp->name || !pp->type)
				return scm_fail(ret_err, -ENOMEM, "out of memory");
			json_object *pf;
			pp->is_path = json_object_object_get_ex(p, "format", &pf) &&
				      json_object_is_type(pf, json_type_string) &&
				      strcmp(json_object_get_string(pf), "path") == 0;
		}
	}
	return 0;
}

int policy_idl_set_load_file(policy_idl_set *s, const char *path, scm_error **ret_err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *buf = NULL;
	if (!f)
		return scm_fail(ret_err, -errno, "%s: cannot open: %m", path);
	if (!(buf = malloc(IDL_FILE_MAX + 1)))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	size_t n = fread(buf, 1, IDL_FILE_MAX + 1, f);
	if (ferror(f))
		return scm_fail(ret_err, -EIO, "%s: cannot read", path);
	if (n > IDL_FILE_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: larger than %u bytes", path, IDL_FILE_MAX);
	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *root = json_tokener_parse_ex(tok, buf, (int)n);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t off = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		json_object_put(root);
		return scm_fail(ret_err, SCM_E_INVALID, "%s: syntax error at byte %zu: %s", path, off,
				json_tokener_error_desc(jerr));
	}
	pidl_service svc = { 0 };
	int r = idl_parse(path, root, &svc, ret_err);
	json_object_put(root);
	if (r == 0 && idl_insert(s, &svc) < 0)
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
	if (r)
		service_done(&svc);
	return r;
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
	strv_free_n(names, n);
	return r;
}
