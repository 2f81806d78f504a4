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

/* Sets *err to "path: message" (if err is set and not already set) and
 * returns CONTAINER_E_SPEC. */
int jfail(char **err, const char *path, const char *fmt, ...) _printf_(3, 4);
/* Like jfail with a chosen code. */
int jfail_code(char **err, int code, const char *path, const char *fmt, ...) _printf_(4, 5);
/* path + "/" + key (escaped per RFC 6901) into buf. */
const char *jpath_key(char *buf, const char *path, const char *key);
const char *jpath_idx(char *buf, const char *path, size_t i);

/* Refuses any key of obj not in the NULL-terminated list. */
int jcheck_keys(json_object *obj, const char *path, const char *const *allowed, char **err);
int jexpect_type(json_object *v, json_type t, const char *path, char **err);

/* Field getters: missing optional fields leave *out untouched and return 0. */
int jget_string(json_object *obj, const char *key, const char *path, bool required, char **out,
		char **err);
int jget_bool(json_object *obj, const char *key, const char *path, bool *out, char **err);
int jget_int(json_object *obj, const char *key, const char *path, bool required, int64_t min,
	     int64_t max, int64_t *out, char **err);
/* A JSON array of strings into a NULL-terminated vector (empty allowed). */
int jget_strv(json_object *obj, const char *key, const char *path, char ***out, char **err);
int jstring_value(json_object *v, const char *path, char **out, char **err);


/* Capability names (CAP_CHOWN ...) <-> numbers: scmutil.h. */
int cap_last_supported(void);

int spec_parse_linux(json_object *linux_obj, const char *path, container_spec *s, char **err);
int spec_check_mappings(const container_spec *s, char **err);
DEFINE_TRIVIAL_CLEANUP(container_spec *, container_spec_free)
DEFINE_TRIVIAL_CLEANUP(container_sandbox *, container_sandbox_free)
