/* stub-rt.h: helpers for the code scm-idlc generates. Not for hand use. */
#pragma once
#include <json-c/json.h>

#include "scm/scm.h"
#include "scm/idl.h"

/* Fetches result `key` of type t from a reply; SCM_E_PROTOCOL if absent or
 * of the wrong type. */
int scm__result(const scm_message *m, const char *key, enum scm_idl_type t, json_object **ret,
		scm_error **ret_err);
/* Fetches argument `key` of type t from a call; on a bad argument replies
 * SCM_E_BAD_ARGS to the caller and returns -1. */
int scm__arg(scm_call *call, const scm_message *m, const char *key, enum scm_idl_type t,
	     json_object **ret);
/* A JSON value for an integer/unsigned argument or result. */
json_object *scm__new_uint(uint64_t v);
