/* scm-error-weak.c: weak stand-ins for libscm's observation-chain
 * functions, linked only into policy's own programs (tests, scm-policy,
 * bench, fuzz) so they build while libscm is not there yet. When libscm.a
 * is linked too, its strong definitions win and these are ignored. Not
 * part of libscmpolicy.a. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/scm.h>

#define WEAK __attribute__((weak))

static scm_error *verror(scm_error *cause, int code, const char *where, const char *fmt, va_list ap)
{
	scm_error *e = calloc(1, sizeof(*e));
	if (!e)
		return cause;
	e->code = code;
	if (vasprintf(&e->message, fmt, ap) < 0)
		e->message = NULL;
	e->where = where ? strdup(where) : NULL;
	e->cause = cause;
	return e;
}

WEAK scm_error *scm_error_new(int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = verror(NULL, code, where, fmt, ap);
	va_end(ap);
	return e;
}

WEAK scm_error *scm_error_wrap(scm_error *cause, int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = verror(cause, code, where, fmt, ap);
	va_end(ap);
	return e;
}

WEAK scm_error *scm_error_free(scm_error *e)
{
	while (e) {
		scm_error *c = e->cause;
		free(e->message);
		free(e->where);
		free(e);
		e = c;
	}
	return NULL;
}

WEAK int scm_error_root_code(const scm_error *e)
{
	while (e && e->cause)
		e = e->cause;
	return e ? e->code : 0;
}

WEAK const char *scm_code_name(int code)
{
	static const char *const names[] = { "ok", "denied", "no-service", "no-method", "bad-args",
					     "quota", "activation", "timeout", "revoked",
					     "provider-gone", "protocol", "exists", "not-found",
					     "invalid", "busy", "internal" };
	if (code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])))
		return names[code];
	if (code < 0)
		return strerrorname_np(-code) ? strerrorname_np(-code) : "errno";
	return "app";
}

WEAK void scm_error_print(const scm_error *e, FILE *f)
{
	for (int depth = 0; e; e = e->cause, depth++)
		fprintf(f, "%*s%s: %s [%s]\n", depth * 2, "", e->where ? e->where : "?",
			e->message ? e->message : "", scm_code_name(e->code));
}

WEAK struct json_object *scm_error_to_json(const scm_error *e)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	for (; e; e = e->cause) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "code", json_object_new_int(e->code));
		json_object_object_add(x, "name", json_object_new_string(scm_code_name(e->code)));
		json_object_object_add(x, "message", json_object_new_string(e->message ? e->message : ""));
		json_object_object_add(x, "where", json_object_new_string(e->where ? e->where : ""));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "error", a);
	return o;
}

WEAK int scm_fail_at(scm_error **ret_err, int code, const char *where, const char *fmt, ...)
{
	if (ret_err) {
		va_list ap;
		va_start(ap, fmt);
		*ret_err = verror(*ret_err, code, where, fmt, ap);
		va_end(ap);
	}
	return code;
}

WEAK int scm_fail_wrap_at(scm_error **ret_err, int code, const char *where, const char *fmt, ...)
{
	if (ret_err) {
		va_list ap;
		va_start(ap, fmt);
		*ret_err = verror(*ret_err, code, where, fmt, ap);
		va_end(ap);
	}
	return code;
}
