/* exportrec.c: the export record's parser and writer (exportrec.h). The
 * record is the tool's own, in a directory of the user's, but it is read
 * back to decide which process to signal: every member is checked, and a
 * record that says anything else is refused whole. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "exportrec.h"

bool export_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > EXPORT_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static const char *const keys[] = { "name", "pid", "disk", "uri", "socket", "readonly", "started" };

static int str_member(json_object *o, const char *k, bool nullable, char **ret, scm_error **ret_err)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, k, &v);
	if (!v && nullable) {
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return scm_fail(ret_err, -EINVAL, "/%s: not a string", k);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= PATH_MAX || strlen(s) != n)
		return scm_fail(ret_err, -EINVAL, "/%s: empty, too long or holds a NUL", k);
	if (!(*ret = strdup(s)))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	return 0;
}

int export_record_parse(const char *text, size_t len, struct export_record *ret, scm_error **ret_err)
{
	if (len > EXPORT_RECORD_MAX)
		return scm_fail(ret_err, -EFBIG, "export record: %zu bytes, over %d", len, EXPORT_RECORD_MAX);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	bool whole = json_tokener_get_error(tok) == json_tokener_success && tok->char_offset == (int)len;
	json_tokener_free(tok);
	struct export_record r = { 0 };
	int e = 0;
	if (!o || !whole || !json_object_is_type(o, json_type_object)) {
		e = scm_fail(ret_err, -EINVAL, "export record: not one JSON object");
		goto out;
	}
	json_object_object_foreach(o, k, val) {
		(void)val;
		size_t i;
		for (i = 0; i < sizeof keys / sizeof keys[0] && strcmp(k, keys[i]); i++)
			;
		if (i == sizeof keys / sizeof keys[0]) {
			e = scm_fail(ret_err, -EINVAL, "export record: unknown member /%s", k);
			goto out;
		}
	}
	json_object *v;
	if (!json_object_object_get_ex(o, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !export_name_valid(json_object_get_string(v)) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		e = scm_fail(ret_err, -EINVAL, "export record: /name: not a valid export name");
		goto out;
	}
	strcpy(r.name, json_object_get_string(v));
	if (!json_object_object_get_ex(o, "pid", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 2 || json_object_get_int64(v) > INT_MAX) {
		e = scm_fail(ret_err, -EINVAL, "export record: /pid: not a process id");
		goto out;
	}
	r.pid = (pid_t)json_object_get_int64(v);
	if (!json_object_object_get_ex(o, "readonly", &v) || !json_object_is_type(v, json_type_boolean)) {
		e = scm_fail(ret_err, -EINVAL, "export record: /readonly: not a boolean");
		goto out;
	}
	r.readonly = json_object_get_boolean(v);
	if (!json_object_object_get_ex(o, "started", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0) {
		e = scm_fail(ret_err, -EINVAL, "export record: /started: not a time");
		goto out;
	}
	r.started = json_object_get_int64(v);
	json_object *sock = NULL;
	json_object_object_get_ex(o, "socket", &sock);
	if ((e = str_member(o, "disk", false, &r.disk, ret_err)) < 0 ||
	    (e = str_member(o, "uri", false, &r.uri, ret_err)) < 0 ||
	    (e = str_member(o, "socket", !sock || json_object_is_type(sock, json_type_null), &r.socket, ret_err)) < 0) {
		scm_fail(ret_err, e, "export record");
		goto out;
	}
	*ret = r;
	r = (struct export_record){ 0 };
out:
	export_record_done(&r);
	json_object_put(o);
	return e;
}

char *export_record_format(const struct export_record *r)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "pid", json_object_new_int64(r->pid));
	json_object_object_add(o, "disk", json_object_new_string(r->disk));
	json_object_object_add(o, "uri", json_object_new_string(r->uri));
	json_object_object_add(o, "socket", r->socket ? json_object_new_string(r->socket) : NULL);
	json_object_object_add(o, "readonly", json_object_new_boolean(r->readonly));
	json_object_object_add(o, "started", json_object_new_int64(r->started));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = s ? strdup(s) : NULL;
	json_object_put(o);
	return out;
}

void export_record_done(struct export_record *r)
{
	free(r->disk);
	free(r->uri);
	free(r->socket);
	r->disk = r->uri = r->socket = NULL;
}
