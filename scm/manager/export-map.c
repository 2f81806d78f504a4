/* export-map.c: an scm interface as a D-Bus interface (export-map.h).
 *
 * Everything a bus peer sends is read here, so the reading is strict: the
 * body must have exactly the method's signature (libdbus has checked that
 * the message itself is well formed), a json param must parse, and the
 * strings must be what json-c takes (libdbus has validated UTF-8 already). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export-map.h"

static char type_char(enum scm_idl_type t)
{
	switch (t) {
	case SCM_IDL_BOOL: return 'b';
	case SCM_IDL_INT: return 'x';
	case SCM_IDL_UINT: return 't';
	case SCM_IDL_DOUBLE: return 'd';
	case SCM_IDL_FD: return 'h';
	default: return 's'; /* string, json; bytes is "ay" */
	}
}

bool xp_member(const char *idl_name, char *buf, size_t n)
{
	size_t k = 0;
	bool up = true;
	for (const char *s = idl_name; *s; s++) {
		if (*s == '_' || *s == '-') {
			up = true;
			continue;
		}
		if (k + 1 >= n)
			return false;
		buf[k++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		up = false;
	}
	buf[k] = 0;
	return k > 0 && dbus_validate_member(buf, NULL);
}

const scm_idl_method *xp_method_by_member(const scm_idl *idl, const char *member)
{
	char buf[256];
	for (size_t i = 0; member && i < idl->n_methods; i++)
		if (xp_member(idl->methods[i].name, buf, sizeof(buf)) && strcmp(buf, member) == 0)
			return &idl->methods[i];
	return NULL;
}

bool xp_signature(const scm_idl_field *f, size_t n, char *buf, size_t bufsz)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k + 3 > bufsz)
			return false;
		if (f[i].type == SCM_IDL_BYTES) {
			buf[k++] = 'a';
			buf[k++] = 'y';
		} else
			buf[k++] = type_char(f[i].type);
	}
	if (k >= bufsz)
		return false;
	buf[k] = 0;
	return true;
}

/* IDL names are [a-z0-9_] (stubs/idl.c), nothing XML would escape. */
static void put_args(FILE *f, const scm_idl_field *a, size_t n, const char *dir)
{
	for (size_t i = 0; i < n; i++) {
		char sig[4];
		xp_signature(&a[i], 1, sig, sizeof(sig));
		fprintf(f, "<arg type='%s' name='%s' direction='%s'/>", sig, a[i].name, dir);
	}
}

char *xp_introspect(const scm_idl *idl, const char *iface)
{
	char *xml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&xml, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s<node>\n <interface name='%s'>\n", DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE, iface);
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		char member[256];
		if (!xp_member(m->name, member, sizeof(member)))
			continue;
		fprintf(f, "  <method name='%s'>", member);
		put_args(f, m->params, m->n_params, "in");
		put_args(f, m->results, m->n_results, "out");
		fprintf(f, "</method>\n");
	}
	fprintf(f, " </interface>\n"
		   " <interface name='org.freedesktop.DBus.Introspectable'>\n"
		   "  <method name='Introspect'><arg type='s' name='xml' direction='out'/></method>\n"
		   " </interface>\n"
		   " <interface name='org.freedesktop.DBus.Peer'>\n"
		   "  <method name='Ping'/>\n"
		   "  <method name='GetMachineId'><arg type='s' name='machine_uuid' direction='out'/></method>\n"
		   " </interface>\n"
		   "</node>\n");
	if (fclose(f) != 0) {
		free(xml);
		return NULL;
	}
	return xml;
}

void xp_call_done(xp_call *c)
{
	json_object_put(c->args);
	free(c->bin);
	for (size_t i = 0; i < c->n_fds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	*c = (xp_call){ 0 };
}

static json_object *basic_json(const scm_idl_field *p, DBusMessageIter *it, char *why, size_t whysz)
{
	DBusBasicValue v;
	dbus_message_iter_get_basic(it, &v);
	switch (p->type) {
	case SCM_IDL_BOOL: return json_object_new_boolean(v.bool_val);
	case SCM_IDL_INT: return json_object_new_int64(v.i64);
	case SCM_IDL_UINT: return json_object_new_uint64(v.u64);
	case SCM_IDL_DOUBLE: return json_object_new_double(v.dbl);
	case SCM_IDL_STRING: return json_object_new_string(v.str);
	case SCM_IDL_JSON: {
		json_tokener *tok = json_tokener_new();
		json_object *o = NULL;
		if (!tok)
			return NULL;
		o = json_tokener_parse_ex(tok, v.str, (int)strlen(v.str));
		if (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != strlen(v.str)) {
			snprintf(why, whysz, "%s: not one JSON value: %s", p->name,
				 json_tokener_error_desc(json_tokener_get_error(tok)));
			json_object_put(o);
			o = NULL;
		} else if (!o) {
			o = json_object_new_null(); /* "null" parses to NULL */
		}
		json_tokener_free(tok);
		return o;
	}
	default: return NULL;
	}
}

int xp_call_from_dbus(const scm_idl_method *method, DBusMessage *m, xp_call *ret, char *why, size_t whysz)
{
	char want[256];
	const char *got = dbus_message_get_signature(m);
	xp_call c = { 0 };
	DBusMessageIter it;
	if (!xp_signature(method->params, method->n_params, want, sizeof(want))) {
		snprintf(why, whysz, "the method has too many parameters for D-Bus");
		return -EINVAL;
	}
	if (strcmp(got, want) != 0) {
		snprintf(why, whysz, "expected arguments of signature '%s', got '%.64s'", want, got);
		return -EINVAL;
	}
	if (!(c.args = json_object_new_object()))
		return -ENOMEM;
	dbus_message_iter_init(m, &it);
	for (size_t i = 0; i < method->n_params; i++, dbus_message_iter_next(&it)) {
		const scm_idl_field *p = &method->params[i];
		if (p->type == SCM_IDL_BYTES) {
			DBusMessageIter sub;
			const void *data = NULL;
			int n = 0;
			dbus_message_iter_recurse(&it, &sub);
			if (dbus_message_iter_get_arg_type(&sub) == DBUS_TYPE_BYTE)
				dbus_message_iter_get_fixed_array(&sub, &data, &n);
			free(c.bin);
			if (!(c.bin = malloc(n > 0 ? (size_t)n : 1))) {
				xp_call_done(&c);
				return -ENOMEM;
			}
			if (n > 0)
				memcpy(c.bin, data, (size_t)n);
			c.bin_len = (size_t)n;
		} else if (p->type == SCM_IDL_FD) {
			int fd = -1;
			dbus_message_iter_get_basic(&it, &fd); /* libdbus hands a dup */
			if (fd < 0 || c.n_fds == SCM_FDS_MAX) {
				if (fd >= 0)
					close(fd);
				snprintf(why, whysz, "%s: no file descriptor (or more than %u)", p->name, SCM_FDS_MAX);
				xp_call_done(&c);
				return -EINVAL;
			}
			c.fds[c.n_fds++] = fd;
		} else {
			why[0] = 0;
			json_object *v = basic_json(p, &it, why, whysz);
			if (!v) {
				xp_call_done(&c);
				return why[0] ? -EINVAL : -ENOMEM;
			}
			json_object_object_add(c.args, p->name, v);
		}
	}
	*ret = c;
	return 0;
}

static int append_result(const scm_idl_field *f, json_object *v, DBusMessageIter *it, char *why, size_t whysz)
{
	DBusBasicValue b = { 0 };
	int t = type_char(f->type);
	const char *s;
	switch (f->type) {
	case SCM_IDL_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			goto bad;
		b.bool_val = json_object_get_boolean(v);
		break;
	case SCM_IDL_INT:
		if (!json_object_is_type(v, json_type_int))
			goto bad;
		b.i64 = json_object_get_int64(v);
		break;
	case SCM_IDL_UINT:
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
			goto bad;
		b.u64 = json_object_get_uint64(v);
		break;
	case SCM_IDL_DOUBLE:
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
			goto bad;
		b.dbl = json_object_get_double(v);
		break;
	case SCM_IDL_STRING:
		if (!json_object_is_type(v, json_type_string))
			goto bad;
		b.str = (char *)json_object_get_string(v);
		if (!dbus_validate_utf8(b.str, NULL) || strlen(b.str) != (size_t)json_object_get_string_len(v))
			goto bad;
		break;
	default: /* json */
		s = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
		      : "null";
		b.str = (char *)s;
		break;
	}
	return dbus_message_iter_append_basic(it, t, &b) ? 0 : -ENOMEM;
bad:
	snprintf(why, whysz, "the provider's result %s is not a %s", f->name, scm_idl_type_name(f->type));
	return -EINVAL;
}

int xp_reply_to_dbus(const scm_idl_method *method, const scm_message *reply, DBusMessage *out, char *why,
		     size_t whysz)
{
	DBusMessageIter it;
	size_t k = 0;
	dbus_message_iter_init_append(out, &it);
	for (size_t i = 0; i < method->n_results; i++) {
		const scm_idl_field *f = &method->results[i];
		int r = 0;
		if (f->type == SCM_IDL_BYTES) {
			DBusMessageIter sub;
			const unsigned char *p = reply->bin ? reply->bin : (const unsigned char *)"";
			if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "y", &sub) ||
			    !dbus_message_iter_append_fixed_array(&sub, DBUS_TYPE_BYTE, &p, (int)reply->bin_len) ||
			    !dbus_message_iter_close_container(&it, &sub))
				r = -ENOMEM;
		} else if (f->type == SCM_IDL_FD) {
			if (k >= reply->n_fds) {
				snprintf(why, whysz, "the provider's result %s carries no file descriptor", f->name);
				return -EINVAL;
			}
			int fd = reply->fds[k++];
			r = dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &fd) ? 0 : -ENOMEM;
		} else {
			json_object *v = NULL;
			if (!reply->json || !json_object_object_get_ex(reply->json, f->name, &v)) {
				if (f->type != SCM_IDL_JSON) {
					snprintf(why, whysz, "the provider's reply has no result %s", f->name);
					return -EINVAL;
				}
			}
			r = append_result(f, v, &it, why, whysz);
		}
		if (r)
			return r;
	}
	return 0;
}
