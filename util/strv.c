/* strv.c: NULL-terminated string vectors. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "scmutil.h"

char **strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
	return NULL;
}

size_t strv_length(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **strv_copy(char *const *v)
{
	size_t n = strv_length(v);
	char **c = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i])))
			return strv_free(c);
	return c;
}

bool strv_contains(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

int strv_add(char ***v, size_t *n, const char *s)
{
	char *d = strdup(s);
	if (!d)
		return -ENOMEM;
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(d);
		return -ENOMEM;
	}
	nv[(*n)++] = d;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

char **strv_from_json(struct json_object *a, size_t max, bool allow_empty, const char **ret_why)
{
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > max) {
		*ret_why = "expected an array of strings";
		return NULL;
	}
	size_t n = json_object_array_length(a);
	char **v = calloc(n + 1, sizeof(*v));
	if (!v) {
		*ret_why = "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_string) ||
		    (!allow_empty && json_object_get_string_len(e) == 0)) {
			*ret_why = allow_empty ? "expected strings" : "expected non-empty strings";
			return strv_free(v);
		}
		if (!(v[i] = strdup(json_object_get_string(e)))) {
			*ret_why = "out of memory";
			return strv_free(v);
		}
	}
	return v;
}
