/* util.c: small helpers scmd's files share: string vectors from JSON, and
 * the rule for names that become file names (endpoints, containers). */
#include <json-c/json.h>
#include <string.h>

#include "scmd.h"

void scmd_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

char **scmd_strv_from_json(json_object *a, size_t max, bool allow_empty, const char **bad)
{
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > max) {
		*bad = "expected an array of strings";
		return NULL;
	}
	size_t n = json_object_array_length(a);
	char **v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_string) || (!allow_empty && json_object_get_string_len(e) == 0)) {
			*bad = allow_empty ? "expected strings" : "expected non-empty strings";
			scmd_strv_free(v);
			return NULL;
		}
		v[i] = strdup(json_object_get_string(e));
	}
	if (!v)
		*bad = "out of memory";
	return v;
}

bool scmd_name_valid(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}
