/* marshal.c: a D-Bus body from JSON by signature, and back.
 *
 * The client's JSON is hostile input: every value is checked against its
 * type before libdbus sees it (libdbus treats a bad string, path or
 * signature as a programming error: it warns and may abort), integers are
 * range-checked for their width, and nesting is bounded (variants can nest
 * without the signature saying so). */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marshal.h"

#define DEPTH_MAX 32

typedef struct mctx {
	char *why;
	size_t whysz;
	const char *arg; /* "arg2" */
} mctx;

static int bad(mctx *c, const char *fmt, const char *detail)
{
	char m[256];
	snprintf(m, sizeof(m), fmt, detail);
	snprintf(c->why, c->whysz, "%s: %s", c->arg, m);
	return -EINVAL;
}

static int put(mctx *c, DBusMessageIter *it, DBusSignatureIter *si, json_object *v, int depth);

static int put_int(mctx *c, DBusMessageIter *it, int t, json_object *v)
{
	if (!json_object_is_type(v, json_type_int))
		return bad(c, "expected an integer for type '%s'", (char[]){ (char)t, 0 });
	int64_t i = json_object_get_int64(v);
	uint64_t u = json_object_get_uint64(v);
	bool neg = i < 0;
	union {
		uint8_t y;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
	} x;
	bool ok = true;
	switch (t) {
	case DBUS_TYPE_BYTE: ok = !neg && u <= UINT8_MAX; x.y = (uint8_t)u; break;
	case DBUS_TYPE_INT16: ok = i >= INT16_MIN && i <= INT16_MAX && (neg || u <= INT16_MAX); x.n = (int16_t)i; break;
	case DBUS_TYPE_UINT16: ok = !neg && u <= UINT16_MAX; x.q = (uint16_t)u; break;
	case DBUS_TYPE_INT32: ok = i >= INT32_MIN && i <= INT32_MAX && (neg || u <= INT32_MAX); x.i = (int32_t)i; break;
	case DBUS_TYPE_UINT32: ok = !neg && u <= UINT32_MAX; x.u = (uint32_t)u; break;
	case DBUS_TYPE_INT64: ok = neg || u <= INT64_MAX; x.x = i; break;
	default: ok = !neg; x.t = u; break;
	}
	if (!ok)
		return bad(c, "integer out of range for type '%s'", (char[]){ (char)t, 0 });
	return dbus_message_iter_append_basic(it, t, &x) ? 0 : -ENOMEM;
}

static int put_string(mctx *c, DBusMessageIter *it, int t, json_object *v)
{
	if (!json_object_is_type(v, json_type_string))
		return bad(c, "expected a string for type '%s'", (char[]){ (char)t, 0 });
	const char *s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return bad(c, "%s", "a string holds a NUL");
	if (t == DBUS_TYPE_STRING && !dbus_validate_utf8(s, NULL))
		return bad(c, "%s", "not valid UTF-8");
	if (t == DBUS_TYPE_OBJECT_PATH && !dbus_validate_path(s, NULL))
		return bad(c, "\"%.80s\" is not an object path", s);
	if (t == DBUS_TYPE_SIGNATURE && !dbus_signature_validate(s, NULL))
		return bad(c, "\"%.80s\" is not a signature", s);
	return dbus_message_iter_append_basic(it, t, &s) ? 0 : -ENOMEM;
}

/* A dict key comes as a JSON object key (a string): typed back here. */
static int put_key(mctx *c, DBusMessageIter *it, int t, const char *k)
{
	json_object *v = NULL;
	int r;
	if (t == DBUS_TYPE_STRING || t == DBUS_TYPE_OBJECT_PATH || t == DBUS_TYPE_SIGNATURE) {
		v = json_object_new_string(k);
	} else if (t == DBUS_TYPE_BOOLEAN) {
		if (strcmp(k, "true") && strcmp(k, "false"))
			return bad(c, "dict key \"%.80s\" is not true or false", k);
		v = json_object_new_boolean(strcmp(k, "true") == 0);
	} else if (t == DBUS_TYPE_DOUBLE) {
		char *end;
		double d = strtod(k, &end);
		if (!*k || *end)
			return bad(c, "dict key \"%.80s\" is not a number", k);
		v = json_object_new_double(d);
	} else {
		char *end;
		errno = 0;
		if (k[0] == '-') {
			long long i = strtoll(k, &end, 10);
			if (errno || !k[1] || *end)
				return bad(c, "dict key \"%.80s\" is not an integer", k);
			v = json_object_new_int64(i);
		} else {
			unsigned long long u = strtoull(k, &end, 10);
			if (errno || !*k || *end)
				return bad(c, "dict key \"%.80s\" is not an integer", k);
			v = json_object_new_uint64(u);
		}
	}
	if (!v)
		return -ENOMEM;
	DBusSignatureIter ksi;
	char sig[2] = { (char)t, 0 };
	dbus_signature_iter_init(&ksi, sig);
	r = put(c, it, &ksi, v, 0);
	json_object_put(v);
	return r;
}

/* A container half written (a bad value inside) is abandoned: closing
 * it is a libdbus usage error. */
static int close_or_abandon(DBusMessageIter *it, DBusMessageIter *sub, int r)
{
	if (r) {
		dbus_message_iter_abandon_container(it, sub);
		return r;
	}
	return dbus_message_iter_close_container(it, sub) ? 0 : -ENOMEM;
}

static int put_container(mctx *c, DBusMessageIter *it, DBusSignatureIter *si, json_object *v, int depth)
{
	int t = dbus_signature_iter_get_current_type(si);
	DBusMessageIter sub;
	DBusSignatureIter ssi;
	char *esig = NULL;
	int r = 0;
	if (t == DBUS_TYPE_VARIANT) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2 ||
		    !json_object_is_type(json_object_array_get_idx(v, 0), json_type_string))
			return bad(c, "%s", "expected a variant as [\"SIGNATURE\", value]");
		const char *vs = json_object_get_string(json_object_array_get_idx(v, 0));
		if (!dbus_signature_validate_single(vs, NULL))
			return bad(c, "variant signature \"%.80s\" is not one complete type", vs);
		if (strchr(vs, DBUS_TYPE_UNIX_FD))
			return bad(c, "%s", "file descriptors ('h') cannot pass the bridge");
		dbus_signature_iter_init(&ssi, vs);
		if (!dbus_message_iter_open_container(it, t, vs, &sub))
			return -ENOMEM;
		r = put(c, &sub, &ssi, json_object_array_get_idx(v, 1), depth + 1);
		return close_or_abandon(it, &sub, r);
	}
	dbus_signature_iter_recurse(si, &ssi);
	if (t == DBUS_TYPE_STRUCT) {
		size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0, i = 0;
		if (!json_object_is_type(v, json_type_array))
			return bad(c, "%s", "expected a struct as an array of its fields");
		if (!dbus_message_iter_open_container(it, t, NULL, &sub))
			return -ENOMEM;
		do {
			r = i < n ? put(c, &sub, &ssi, json_object_array_get_idx(v, i), depth + 1)
				  : bad(c, "%s", "a struct has fewer fields than its signature");
			i++;
		} while (!r && dbus_signature_iter_next(&ssi));
		if (!r && i != n)
			r = bad(c, "%s", "a struct has more fields than its signature");
		return close_or_abandon(it, &sub, r);
	}
	/* an array; of dict entries, a JSON object */
	if (!(esig = dbus_signature_iter_get_signature(&ssi)))
		return -ENOMEM;
	bool dict = dbus_signature_iter_get_current_type(&ssi) == DBUS_TYPE_DICT_ENTRY;
	if (dict ? !json_object_is_type(v, json_type_object) : !json_object_is_type(v, json_type_array)) {
		dbus_free(esig);
		return bad(c, "%s", dict ? "expected a dict as a JSON object" : "expected an array");
	}
	if (!dbus_message_iter_open_container(it, t, esig, &sub)) {
		dbus_free(esig);
		return -ENOMEM;
	}
	dbus_free(esig);
	if (dict) {
		DBusSignatureIter kv;
		dbus_signature_iter_recurse(&ssi, &kv);
		int kt = dbus_signature_iter_get_current_type(&kv);
		dbus_signature_iter_next(&kv);
		json_object_object_foreach(v, k, e)
		{
			DBusMessageIter de;
			DBusSignatureIter vsi = kv;
			if (!dbus_message_iter_open_container(&sub, DBUS_TYPE_DICT_ENTRY, NULL, &de)) {
				r = -ENOMEM;
				break;
			}
			r = put_key(c, &de, kt, k);
			if (!r)
				r = put(c, &de, &vsi, e, depth + 1);
			if ((r = close_or_abandon(&sub, &de, r)))
				break;
		}
	} else {
		for (size_t i = 0; !r && i < json_object_array_length(v); i++) {
			DBusSignatureIter esi = ssi;
			r = put(c, &sub, &esi, json_object_array_get_idx(v, i), depth + 1);
		}
	}
	return close_or_abandon(it, &sub, r);
}

static int put(mctx *c, DBusMessageIter *it, DBusSignatureIter *si, json_object *v, int depth)
{
	int t = dbus_signature_iter_get_current_type(si);
	if (depth > DEPTH_MAX)
		return bad(c, "nested deeper than %s", "32");
	switch (t) {
	case DBUS_TYPE_BOOLEAN: {
		if (!json_object_is_type(v, json_type_boolean))
			return bad(c, "%s", "expected true or false for type 'b'");
		dbus_bool_t b = json_object_get_boolean(v);
		return dbus_message_iter_append_basic(it, t, &b) ? 0 : -ENOMEM;
	}
	case DBUS_TYPE_DOUBLE: {
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
			return bad(c, "%s", "expected a number for type 'd'");
		double d = json_object_get_double(v);
		return dbus_message_iter_append_basic(it, t, &d) ? 0 : -ENOMEM;
	}
	case DBUS_TYPE_BYTE: case DBUS_TYPE_INT16: case DBUS_TYPE_UINT16: case DBUS_TYPE_INT32:
	case DBUS_TYPE_UINT32: case DBUS_TYPE_INT64: case DBUS_TYPE_UINT64:
		return put_int(c, it, t, v);
	case DBUS_TYPE_STRING: case DBUS_TYPE_OBJECT_PATH: case DBUS_TYPE_SIGNATURE:
		return put_string(c, it, t, v);
	case DBUS_TYPE_ARRAY: case DBUS_TYPE_STRUCT: case DBUS_TYPE_VARIANT:
		return put_container(c, it, si, v, depth);
	case DBUS_TYPE_UNIX_FD:
		return bad(c, "%s", "file descriptors ('h') cannot pass the bridge");
	}
	return bad(c, "%s", "a type the bridge does not know");
}

int br_marshal(DBusMessage *m, const char *sig, json_object *args, char *why, size_t whysz)
{
	mctx c = { why, whysz, "args" };
	char arg[24];
	if (!dbus_signature_validate(sig, NULL))
		return snprintf(why, whysz, "signature \"%.80s\" is not a D-Bus signature", sig), -EINVAL;
	if (!json_object_is_type(args, json_type_array))
		return snprintf(why, whysz, "args: expected a JSON array, one element per complete type"), -EINVAL;
	size_t n = json_object_array_length(args), i = 0;
	DBusMessageIter it;
	DBusSignatureIter si;
	dbus_message_iter_init_append(m, &it);
	if (!*sig)
		return n ? (snprintf(why, whysz, "args: %zu values for an empty signature", n), -EINVAL) : 0;
	dbus_signature_iter_init(&si, sig);
	do {
		snprintf(arg, sizeof(arg), "arg%zu", i);
		c.arg = arg;
		if (i >= n)
			return snprintf(why, whysz, "args: %zu values for signature \"%s\" (more needed)", n, sig), -EINVAL;
		int r = put(&c, &it, &si, json_object_array_get_idx(args, i), 0);
		if (r)
			return r;
		i++;
	} while (dbus_signature_iter_next(&si));
	if (i != n)
		return snprintf(why, whysz, "args: %zu values for signature \"%s\" (%zu expected)", n, sig, i), -EINVAL;
	return 0;
}

static json_object *get(DBusMessageIter *it, char *why, size_t whysz);

static json_object *get_container(DBusMessageIter *it, int t, char *why, size_t whysz)
{
	DBusMessageIter sub;
	dbus_message_iter_recurse(it, &sub);
	if (t == DBUS_TYPE_VARIANT) {
		char *s = dbus_message_iter_get_signature(&sub);
		json_object *a = json_object_new_array(), *v = s ? get(&sub, why, whysz) : NULL;
		if (!a || !v) {
			json_object_put(a);
			json_object_put(v);
			dbus_free(s);
			return NULL;
		}
		json_object_array_add(a, json_object_new_string(s));
		json_object_array_add(a, v);
		dbus_free(s);
		return a;
	}
	bool dict = t == DBUS_TYPE_ARRAY && dbus_message_iter_get_element_type(it) == DBUS_TYPE_DICT_ENTRY;
	json_object *o = dict ? json_object_new_object() : json_object_new_array();
	while (o && dbus_message_iter_get_arg_type(&sub) != DBUS_TYPE_INVALID) {
		if (dict) {
			DBusMessageIter de;
			dbus_message_iter_recurse(&sub, &de);
			json_object *k = get(&de, why, whysz), *v = NULL;
			if (k && dbus_message_iter_next(&de))
				v = get(&de, why, whysz);
			if (!k || !v) {
				json_object_put(k);
				json_object_put(v);
				json_object_put(o);
				return NULL;
			}
			const char *ks = json_object_is_type(k, json_type_string)
						 ? json_object_get_string(k)
						 : json_object_to_json_string_ext(k, JSON_C_TO_STRING_PLAIN);
			json_object_object_add(o, ks, v);
			json_object_put(k);
		} else {
			json_object *v = get(&sub, why, whysz);
			if (!v) {
				json_object_put(o);
				return NULL;
			}
			json_object_array_add(o, v);
		}
		dbus_message_iter_next(&sub);
	}
	return o;
}

static json_object *get(DBusMessageIter *it, char *why, size_t whysz)
{
	int t = dbus_message_iter_get_arg_type(it);
	DBusBasicValue b;
	switch (t) {
	case DBUS_TYPE_BOOLEAN: dbus_message_iter_get_basic(it, &b); return json_object_new_boolean(b.bool_val);
	case DBUS_TYPE_DOUBLE: dbus_message_iter_get_basic(it, &b); return json_object_new_double(b.dbl);
	case DBUS_TYPE_BYTE: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.byt);
	case DBUS_TYPE_INT16: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.i16);
	case DBUS_TYPE_UINT16: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.u16);
	case DBUS_TYPE_INT32: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.i32);
	case DBUS_TYPE_UINT32: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.u32);
	case DBUS_TYPE_INT64: dbus_message_iter_get_basic(it, &b); return json_object_new_int64(b.i64);
	case DBUS_TYPE_UINT64: dbus_message_iter_get_basic(it, &b); return json_object_new_uint64(b.u64);
	case DBUS_TYPE_STRING: case DBUS_TYPE_OBJECT_PATH: case DBUS_TYPE_SIGNATURE:
		dbus_message_iter_get_basic(it, &b);
		return json_object_new_string(b.str);
	case DBUS_TYPE_ARRAY: case DBUS_TYPE_STRUCT: case DBUS_TYPE_VARIANT:
		return get_container(it, t, why, whysz);
	}
	snprintf(why, whysz, "the reply holds a value of type '%c', which the bridge does not pass (file descriptors)",
		 (char)t);
	return NULL;
}

json_object *br_unmarshal(DBusMessage *m, char *why, size_t whysz)
{
	DBusMessageIter it;
	json_object *a = json_object_new_array();
	snprintf(why, whysz, "out of memory");
	if (!a || !dbus_message_iter_init(m, &it))
		return a;
	do {
		json_object *v = get(&it, why, whysz);
		if (!v) {
			json_object_put(a);
			return NULL;
		}
		json_object_array_add(a, v);
	} while (dbus_message_iter_next(&it));
	return a;
}
