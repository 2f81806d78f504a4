/* stub-rt.c: the runtime half of generated stubs: type checks on what a
 * peer sent, with errors that name the field. */
#include <string.h>

#include "scm/stub-rt.h"

static bool type_ok(json_object *v, enum scm_idl_type t)
{
	switch (t) {
	case SCM_IDL_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case SCM_IDL_INT:
		return json_object_is_type(v, json_type_int);
	case SCM_IDL_UINT:
		/* json-c keeps values over INT64_MAX as uint64; negatives are not uint. */
		return json_object_is_type(v, json_type_int) &&
		       (json_object_get_int64(v) >= 0 || json_object_get_uint64(v) > (uint64_t)INT64_MAX);
	case SCM_IDL_DOUBLE:
		return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
	case SCM_IDL_STRING:
		return json_object_is_type(v, json_type_string);
	case SCM_IDL_JSON:
		return true;
	default:
		return false;
	}
}

int scm__result(const scm_message *m, const char *key, enum scm_idl_type t, json_object **ret,
		scm_error **ret_err)
{
	json_object *v = NULL;

	if (t == SCM_IDL_JSON) {
		if (m->json)
			json_object_object_get_ex(m->json, key, &v);
		*ret = v;
		return 0;
	}
	if (!m->json || !json_object_object_get_ex(m->json, key, &v))
		return scm_fail(ret_err, SCM_E_PROTOCOL, "reply lacks result '%s'", key);
	if (!type_ok(v, t))
		return scm_fail(ret_err, SCM_E_PROTOCOL, "result '%s' is not of type %s", key,
				scm_idl_type_name(t));
	*ret = v;
	return 0;
}

int scm__arg(scm_call *call, const scm_message *m, const char *key, enum scm_idl_type t,
	     json_object **ret)
{
	json_object *v = NULL;

	if (t == SCM_IDL_JSON) {
		if (m->json)
			json_object_object_get_ex(m->json, key, &v);
		*ret = v;
		return 0;
	}
	if (!m->json || !json_object_object_get_ex(m->json, key, &v)) {
		scm_call_reply_error(call, SCM_E_BAD_ARGS, "missing argument '%s' (%s)", key,
				     scm_idl_type_name(t));
		return -1;
	}
	if (!type_ok(v, t)) {
		scm_call_reply_error(call, SCM_E_BAD_ARGS, "argument '%s' must be of type %s", key,
				     scm_idl_type_name(t));
		return -1;
	}
	*ret = v;
	return 0;
}

json_object *scm__new_uint(uint64_t v)
{
	return json_object_new_uint64(v);
}
