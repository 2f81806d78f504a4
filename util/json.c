/* json.c: checks of JSON objects every schema in the tree makes. */
#include <json-c/json.h>
#include <string.h>

#include "scmutil.h"

const char *json_unknown_key(struct json_object *o, const char *const *known)
{
	if (!json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_foreach(o, k, v)
	{
		(void)v;
		bool ok = false;
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			return k;
	}
	return NULL;
}
