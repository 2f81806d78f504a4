/* spec-json.c: typed, validated access to json-c values for the spec and
 * sandbox parsers. Each helper names the offending JSON pointer, and none
 * of them crashes on a value of the wrong type. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec-internal.h"

int ctr_fail_at(scm_error **err, const char *where, int code, const char *fmt, ...)
{
	if (err && !*err) {
		va_list ap;
		va_start(ap, fmt);
		*err = scm_error_newv(code, where, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int vfail(scm_error **err, const char *where, int code, const char *path, const char *fmt, va_list ap)
{
	if (err && !*err) {
		_cleanup_free_ char *msg = NULL;
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		*err = scm_error_new(code, where, "%s: %s", path && *path ? path : "/", msg ? msg : "out of memory");
	}
	return code;
}

int jfail_at(scm_error **err, const char *where, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(err, where, CONTAINER_E_SPEC, path, fmt, ap);
	va_end(ap);
	return r;
}

int jfail_code_at(scm_error **err, const char *where, int code, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(err, where, code, path, fmt, ap);
	va_end(ap);
	return r;
}

const char *jpath_key(char *buf, const char *path, const char *key)
{
	size_t n = (size_t)snprintf(buf, JPATH_MAX, "%s/", path);
	/* RFC 6901: '~' is "~0" and '/' is "~1"; truncation only shortens a
	 * message, never overflows. */
	for (const char *k = key; *k && n + 3 < JPATH_MAX; k++) {
		if (*k == '~' || *k == '/') {
			buf[n++] = '~';
			buf[n++] = *k == '~' ? '0' : '1';
		} else
			buf[n++] = *k;
	}
	buf[n < JPATH_MAX ? n : JPATH_MAX - 1] = 0;
	return buf;
}

const char *jpath_idx(char *buf, const char *path, size_t i)
{
	snprintf(buf, JPATH_MAX, "%s/%zu", path, i);
	return buf;
}

static const char *type_word(json_type t)
{
	switch (t) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "?";
}

int jexpect_type(json_object *v, json_type t, const char *path, scm_error **err)
{
	if (json_object_get_type(v) != t)
		return jfail(err, path, "expected %s, got %s", type_word(t),
			     type_word(json_object_get_type(v)));
	return 0;
}

int jcheck_keys(json_object *obj, const char *path, const char *const *allowed, scm_error **err)
{
	char p[JPATH_MAX];
	const char *key = json_unknown_key(obj, allowed);
	if (key)
		return jfail(err, jpath_key(p, path, key), "unknown field");
	return 0;
}

int jstring_value(json_object *v, const char *path, char **out, scm_error **err)
{
	int r = jexpect_type(v, json_type_string, path, err);
	if (r)
		return r;
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		return jfail(err, path, "string contains a NUL byte");
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	*out = copy;
	return 0;
}

int jget_string(json_object *obj, const char *key, const char *path, bool required, char **out,
		scm_error **err)
{
	char p[JPATH_MAX];
	json_object *v;
	jpath_key(p, path, key);
	if (!json_object_object_get_ex(obj, key, &v))
		return required ? jfail(err, p, "required field is missing") : 0;
	char *s = NULL;
	int r = jstring_value(v, p, &s, err);
	if (r)
		return r;
	free(*out);
	*out = s;
	return 0;
}

int jget_bool(json_object *obj, const char *key, const char *path, bool *out, scm_error **err)
{
	char p[JPATH_MAX];
	json_object *v;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	int r = jexpect_type(v, json_type_boolean, jpath_key(p, path, key), err);
	if (r)
		return r;
	*out = json_object_get_boolean(v);
	return 0;
}

int jget_int(json_object *obj, const char *key, const char *path, bool required, int64_t min,
	     int64_t max, int64_t *out, scm_error **err)
{
	char p[JPATH_MAX];
	json_object *v;
	jpath_key(p, path, key);
	if (!json_object_object_get_ex(obj, key, &v))
		return required ? jfail(err, p, "required field is missing") : 0;
	int r = jexpect_type(v, json_type_int, p, err);
	if (r)
		return r;
	/* json-c saturates out-of-range integers; errno tells. */
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno != 0 || x < min || x > max)
		return jfail(err, p, "%s out of range [%lld, %lld]", json_object_get_string(v),
			     (long long)min, (long long)max);
	*out = x;
	return 0;
}

int jget_strv(json_object *obj, const char *key, const char *path, char ***out, scm_error **err)
{
	char p[JPATH_MAX], q[JPATH_MAX];
	json_object *v;
	jpath_key(p, path, key);
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	int r = jexpect_type(v, json_type_array, p, err);
	if (r)
		return r;
	size_t n = json_object_array_length(v);
	_cleanup_(strv_freep) char **vec = calloc(n + 1, sizeof(char *));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = jstring_value(json_object_array_get_idx(v, i), jpath_idx(q, p, i), &vec[i], err);
		if (r)
			return r;
	}
	strv_free(*out);
	*out = TAKE_PTR(vec);
	return 0;
}
