/* error.c: observation chains.
 *
 * Every layer that fails adds what it saw (code, message, where) on top of
 * the chain it got from below, so the user reads the story from the outside
 * in: "scmctl: call failed" <- "scmd: activation of 'echo' failed" <-
 * "exec /bin/x: No such file or directory". A layer that recovers frees
 * what it consumed. Chains cross the wire as a JSON array. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <string.h>

#include "scm/macro.h"
#include "scm-internal/wire.h"
#include "scm-internal/error.h"

static const char *const code_names[] = {
	[SCM_OK] = "ok",
	[SCM_E_DENIED] = "denied",
	[SCM_E_NO_SERVICE] = "no-service",
	[SCM_E_NO_METHOD] = "no-method",
	[SCM_E_BAD_ARGS] = "bad-args",
	[SCM_E_QUOTA] = "quota",
	[SCM_E_ACTIVATION] = "activation",
	[SCM_E_TIMEOUT] = "timeout",
	[SCM_E_REVOKED] = "revoked",
	[SCM_E_PROVIDER_GONE] = "provider-gone",
	[SCM_E_PROTOCOL] = "protocol",
	[SCM_E_EXISTS] = "exists",
	[SCM_E_NOT_FOUND] = "not-found",
	[SCM_E_INVALID] = "invalid",
	[SCM_E_BUSY] = "busy",
	[SCM_E_INTERNAL] = "internal",
};

/* The container runtime's range (containers/container.h). */
static const char *const container_names[] = {
	[SCM_E_CONTAINER_SPEC - SCM_E_CONTAINER] = "container-spec",
	[SCM_E_CONTAINER_DENIED - SCM_E_CONTAINER] = "container-denied",
	[SCM_E_CONTAINER_ROOTFS - SCM_E_CONTAINER] = "container-rootfs",
	[SCM_E_CONTAINER_MAPPING - SCM_E_CONTAINER] = "container-mapping",
	[SCM_E_CONTAINER_UNSUPPORTED - SCM_E_CONTAINER] = "container-unsupported",
};

const char *scm_code_name(int code)
{
	static __thread char buf[32];

	if (code >= 0 && (size_t)code < ELEMENTSOF(code_names) && code_names[code])
		return code_names[code];
	if (code > SCM_E_CONTAINER && code - SCM_E_CONTAINER < (int)ELEMENTSOF(container_names) &&
	    container_names[code - SCM_E_CONTAINER])
		return container_names[code - SCM_E_CONTAINER];
	if (code < 0 && code != INT_MIN) { /* a peer may send INT_MIN: -code would overflow */
		const char *n = strerrorname_np(-code);
		if (n)
			return n;
	}
	snprintf(buf, sizeof(buf), code >= SCM_E_APP && code < SCM_E_CONTAINER ? "app-%d" : "code-%d", code);
	return buf;
}

static scm_error *error_vnew(int code, const char *where, const char *fmt, va_list ap)
{
	int saved = errno; /* for a %m in fmt */
	scm_error *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	errno = saved;
	e->code = code;
	if (vasprintf(&e->message, fmt, ap) < 0)
		e->message = NULL;
	e->where = where ? strdup(where) : NULL;
	return e;
}

scm_error *scm_error_newv(int code, const char *where, const char *fmt, va_list ap)
{
	return error_vnew(code, where, fmt, ap);
}

scm_error *scm_error_new(int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	scm_error *e;

	va_start(ap, fmt);
	e = error_vnew(code, where, fmt, ap);
	va_end(ap);
	return e;
}

scm_error *scm_error_wrap(scm_error *cause, int code, const char *where, const char *fmt, ...)
{
	va_list ap;
	scm_error *e;

	va_start(ap, fmt);
	e = error_vnew(code, where, fmt, ap);
	va_end(ap);
	if (!e)
		return cause;
	e->cause = cause;
	return e;
}

scm_error *scm_error_free(scm_error *e)
{
	while (e) {
		scm_error *next = e->cause;
		free(e->message);
		free(e->where);
		free(e);
		e = next;
	}
	return NULL;
}

int scm_error_root_code(const scm_error *e)
{
	if (!e)
		return 0;
	while (e->cause)
		e = e->cause;
	return e->code;
}

void scm_error_print(const scm_error *e, FILE *f)
{
	for (int depth = 0; e; e = e->cause, depth++) {
		fprintf(f, "%*s%s%s [%s]", depth * 2, depth ? "<- " : "",
			e->message ? e->message : "(no message)", "", scm_code_name(e->code));
		if (e->where)
			fprintf(f, " (%s)", e->where);
		fputc('\n', f);
	}
}

/* Pushes one observation onto *ret_err (which may already hold the cause). */
static int vfail(scm_error **ret_err, int code, const char *where, const char *fmt, va_list ap)
{
	if (ret_err) {
		scm_error *e = error_vnew(code, where, fmt, ap);
		if (e) {
			e->cause = *ret_err;
			*ret_err = e;
		}
	}
	return code;
}

int scm_fail_atv(scm_error **ret_err, int code, const char *where, const char *fmt, va_list ap)
{
	return vfail(ret_err, code, where, fmt, ap);
}

int scm_fail_at(scm_error **ret_err, int code, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(ret_err, code, where, fmt, ap);
	va_end(ap);
	return code;
}

char *scm_error_text(const scm_error *e)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	bool first = true;
	for (; e; e = e->cause) {
		if (!e->message || !e->message[0])
			continue;
		fprintf(f, "%s%s", first ? "" : ": ", e->message);
		first = false;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct json_object *scm_error_to_json(const scm_error *e)
{
	json_object *arr = json_object_new_array();

	for (; e; e = e->cause) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "code", json_object_new_int(e->code));
		json_object_object_add(o, "name", json_object_new_string(scm_code_name(e->code)));
		json_object_object_add(o, "message", json_object_new_string(e->message ? e->message : ""));
		if (e->where)
			json_object_object_add(o, "where", json_object_new_string(e->where));
		json_object_array_add(arr, o);
	}
	json_object *top = json_object_new_object();
	json_object_object_add(top, "error", arr);
	return top;
}

/* Rebuilds a chain sent by a peer. Whatever the peer sent, the result is a
 * well-formed chain: missing fields become placeholders, at most 32 layers
 * are kept. */
scm_error *scm_error_from_json(struct json_object *j)
{
	json_object *arr;
	scm_error *head = NULL, **tail = &head;

	if (!j || !json_object_object_get_ex(j, "error", &arr) ||
	    !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
		return scm_error_new(SCM_E_PROTOCOL, NULL, "peer sent an error without a chain");

	size_t n = json_object_array_length(arr);
	for (size_t i = 0; i < n && i < 32; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		int code = SCM_E_INTERNAL;
		const char *msg = "(no message)", *where = NULL;

		if (json_object_object_get_ex(o, "code", &v) && json_object_is_type(v, json_type_int))
			code = json_object_get_int(v);
		if (json_object_object_get_ex(o, "message", &v) && json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
		if (json_object_object_get_ex(o, "where", &v) && json_object_is_type(v, json_type_string))
			where = json_object_get_string(v);
		*tail = scm_error_new(code, where, "%s", msg);
		if (!*tail)
			break;
		tail = &(*tail)->cause;
	}
	return head;
}

scm_error *scm_error_copy(const scm_error *e)
{
	scm_error *head = NULL, **tail = &head;

	for (; e; e = e->cause) {
		*tail = scm_error_new(e->code, e->where, "%s", e->message ? e->message : "");
		if (!*tail)
			break;
		tail = &(*tail)->cause;
	}
	return head;
}

void scm_error_push(scm_error **ret_err, scm_error *e)
{
	if (!ret_err) {
		scm_error_free(e);
		return;
	}
	scm_error **tail = &e;
	while (*tail)
		tail = &(*tail)->cause;
	*tail = *ret_err;
	*ret_err = e;
}
