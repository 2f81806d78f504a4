/* spec-internal.h: helpers shared by the config.json parser files.
 *
 * Every getter takes the JSON pointer of the value it reads, so an error
 * can say exactly which field was wrong ("/process/args/2: expected a
 * string"); json_object never leaves these files. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "container.h"
#include "scm/macro.h"
#include "scmutil.h"

#define JPATH_MAX 512

/* The runtime's failures: the first observation made is the one kept
 * (what went wrong first explains the rest), with its where. Each sets
 * *err (when err is set and *err is not) and returns code. */
#define ctr_fail(err, code, ...) ctr_fail_at((err), SCM_HERE, (code), __VA_ARGS__)
int ctr_fail_at(scm_error **err, const char *where, int code, const char *fmt, ...) _printf_(4, 5);
/* "path: message" and CONTAINER_E_SPEC. */
#define jfail(err, path, ...) jfail_at((err), SCM_HERE, (path), __VA_ARGS__)
int jfail_at(scm_error **err, const char *where, const char *path, const char *fmt, ...) _printf_(4, 5);
/* Like jfail with a chosen code. */
#define jfail_code(err, code, path, ...) jfail_code_at((err), SCM_HERE, (code), (path), __VA_ARGS__)
int jfail_code_at(scm_error **err, const char *where, int code, const char *path, const char *fmt, ...)
	_printf_(5, 6);
/* path + "/" + key (escaped per RFC 6901) into buf. */
const char *jpath_key(char *buf, const char *path, const char *key);
const char *jpath_idx(char *buf, const char *path, size_t i);

/* Refuses any key of obj not in the NULL-terminated list. */
int jcheck_keys(json_object *obj, const char *path, const char *const *allowed, scm_error **err);
int jexpect_type(json_object *v, json_type t, const char *path, scm_error **err);

/* Field getters: missing optional fields leave *out untouched and return 0. */
int jget_string(json_object *obj, const char *key, const char *path, bool required, char **out,
		scm_error **err);
int jget_bool(json_object *obj, const char *key, const char *path, bool *out, scm_error **err);
int jget_int(json_object *obj, const char *key, const char *path, bool required, int64_t min,
	     int64_t max, int64_t *out, scm_error **err);
/* A JSON array of strings into a NULL-terminated vector (empty allowed). */
int jget_strv(json_object *obj, const char *key, const char *path, char ***out, scm_error **err);
int jstring_value(json_object *v, const char *path, char **out, scm_error **err);


/* Capability names (CAP_CHOWN ...) <-> numbers: scmutil.h. */
int cap_last_supported(void);

int spec_parse_linux(json_object *linux_obj, const char *path, container_spec *s, scm_error **err);
int spec_check_mappings(const container_spec *s, scm_error **err);
DEFINE_TRIVIAL_CLEANUP(container_spec *, container_spec_free)
DEFINE_TRIVIAL_CLEANUP(container_sandbox *, container_sandbox_free)
