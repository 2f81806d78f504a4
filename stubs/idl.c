/* idl.c: parsing and printing interface definitions.
 *
 * Strict on purpose: an unknown key, a name that is not a C identifier, or a
 * second bytes field is an error naming its JSON pointer, because the same
 * definition drives generated C code and scmd's view of the service. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "scm/idl.h"
#include "scm/macro.h"
#include "scm-internal/wire.h"
#include "scmutil.h"
#include "scm-internal/error.h"

#define IDL_FILE_MAX (1024 * 1024)
#define IDL_METHODS_MAX 256
#define IDL_FIELDS_MAX 32
#define IDL_GRANT_RULES_MAX 8

static const char *const type_names[_SCM_IDL_TYPE_MAX] = {
	[SCM_IDL_BOOL] = "bool",     [SCM_IDL_INT] = "int",       [SCM_IDL_UINT] = "uint",
	[SCM_IDL_DOUBLE] = "double", [SCM_IDL_STRING] = "string", [SCM_IDL_BYTES] = "bytes",
	[SCM_IDL_FD] = "fd",         [SCM_IDL_JSON] = "json",
};

const char *scm_idl_type_name(enum scm_idl_type t)
{
	return t < _SCM_IDL_TYPE_MAX ? type_names[t] : "?";
}

struct ctx {
	const char *origin;
	scm_error **err;
};

#define BAD(c, ...) scm_fail((c)->err, SCM_E_INVALID, __VA_ARGS__)

static bool is_ident(const char *s)
{
	if (!s || !(islower((unsigned char)*s) || *s == '_'))
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_') ||
		    i >= 63)
			return false;
	return true;
}

/* Field and method names become C identifiers in generated code, beside
 * the generator's own (ch, call, userdata, ret_err, ret_NAME, NAME_len and
 * scm__ locals): a C keyword or one of those would not compile, or would
 * silently alias another value. */
static bool is_reserved(const char *s, bool field)
{
	static const char *const words[] = {
		"auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
		"enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
		"restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
		"typedef", "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", NULL,
	};
	static const char *const generated[] = { "ch", "call", "userdata", "ret_err", NULL };
	for (size_t i = 0; words[i]; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	if (!field)
		return false; /* a method name only follows a prefix (scm_IFACE_, tramp_) */
	for (size_t i = 0; generated[i]; i++)
		if (strcmp(s, generated[i]) == 0)
			return true;
	return strncmp(s, "ret_", 4) == 0 || strncmp(s, "scm_", 4) == 0 || s[0] == '_';
}

/* Interface names may also hold dots and dashes (scm.control); the C
 * prefix the generator derives maps both to '_'. */
static bool is_iface_name(const char *s)
{
	if (!s || !islower((unsigned char)*s) || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '.' ||
		      *s == '-'))
			return false;
	return true;
}

/* Checks that o is an object whose keys are all in allowed (NULL-ended). */
static int only_keys(struct ctx *c, json_object *o, const char *ptr, const char *const *allowed)
{
	if (!json_object_is_type(o, json_type_object))
		return BAD(c, "%s: %s: expected an object", c->origin, ptr);
	const char *k = json_unknown_key(o, allowed);
	if (k)
		return BAD(c, "%s: %s/%s: unknown key", c->origin, ptr, k);
	return 0;
}

static int get_str(struct ctx *c, json_object *o, const char *key, const char *ptr, bool required,
		   char **ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			return BAD(c, "%s: %s/%s: missing", c->origin, ptr, key);
		*ret = strdup("");
		return *ret ? 0 : -ENOMEM;
	}
	if (!json_object_is_type(v, json_type_string))
		return BAD(c, "%s: %s/%s: expected a string", c->origin, ptr, key);
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

static int parse_fields(struct ctx *c, json_object *m, const char *key, const char *mptr,
			scm_idl_field **ret, size_t *ret_n)
{
	static const char *const keys[] = { "name", "type", "doc", "format", NULL };
	json_object *arr;
	char ptr[128];
	int r, n_bytes = 0, n_fds = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!json_object_object_get_ex(m, key, &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return BAD(c, "%s: %s/%s: expected an array", c->origin, mptr, key);
	size_t n = json_object_array_length(arr);
	if (n > IDL_FIELDS_MAX)
		return BAD(c, "%s: %s/%s: more than %d fields", c->origin, mptr, key, IDL_FIELDS_MAX);
	*ret = calloc(n ? n : 1, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	*ret_n = n;
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(arr, i), *t;
		scm_idl_field *fd = &(*ret)[i];
		snprintf(ptr, sizeof(ptr), "%s/%s/%zu", mptr, key, i);
		if ((r = only_keys(c, f, ptr, keys)) || (r = get_str(c, f, "name", ptr, true, &fd->name)) ||
		    (r = get_str(c, f, "doc", ptr, false, &fd->doc)))
			return r;
		if (!is_ident(fd->name))
			return BAD(c, "%s: %s/name: '%s' is not a lower-case C identifier", c->origin, ptr,
				   fd->name);
		if (is_reserved(fd->name, true))
			return BAD(c, "%s: %s/name: '%s' is reserved (a C keyword, or a name generated code uses)",
				   c->origin, ptr, fd->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp((*ret)[j].name, fd->name) == 0)
				return BAD(c, "%s: %s/name: '%s' appears twice", c->origin, ptr, fd->name);
		if (!json_object_object_get_ex(f, "type", &t) || !json_object_is_type(t, json_type_string))
			return BAD(c, "%s: %s/type: missing or not a string", c->origin, ptr);
		fd->type = _SCM_IDL_TYPE_MAX;
		for (int k = 0; k < _SCM_IDL_TYPE_MAX; k++)
			if (strcmp(json_object_get_string(t), type_names[k]) == 0)
				fd->type = k;
		if (fd->type == _SCM_IDL_TYPE_MAX)
			return BAD(c, "%s: %s/type: unknown type '%s' (bool int uint double string bytes fd json)",
				   c->origin, ptr, json_object_get_string(t));
		/* "format": "path" marks a string the provider treats as a file
		 * path; only the policy tools read it (prefix vs path_prefix). */
		json_object *fmt;
		if (json_object_object_get_ex(f, "format", &fmt) &&
		    (fd->type != SCM_IDL_STRING || !json_object_is_type(fmt, json_type_string) ||
		     strcmp(json_object_get_string(fmt), "path") != 0))
			return BAD(c, "%s: %s/format: only \"path\", on a string field", c->origin, ptr);
		fd->is_path = fmt != NULL;
		if (fd->type == SCM_IDL_BYTES && ++n_bytes > 1)
			return BAD(c, "%s: %s: only one bytes field per direction (it is the frame's binary body)",
				   c->origin, ptr);
		if (fd->type == SCM_IDL_FD && ++n_fds > (int)SCM_FDS_MAX)
			return BAD(c, "%s: %s: more than %u fd fields", c->origin, ptr, SCM_FDS_MAX);
	}
	/* A bytes field NAME comes with a NAME_len in C: no other field may
	 * be called that. */
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen((*ret)[i].name);
		if (l <= 4 || strcmp((*ret)[i].name + l - 4, "_len") != 0)
			continue;
		for (size_t j = 0; j < n; j++)
			if ((*ret)[j].type == SCM_IDL_BYTES && strlen((*ret)[j].name) == l - 4 &&
			    strncmp((*ret)[j].name, (*ret)[i].name, l - 4) == 0)
				return BAD(c, "%s: %s/%s/%zu/name: '%s' collides with the length of bytes field '%s'",
					   c->origin, mptr, key, i, (*ret)[i].name, (*ret)[j].name);
	}
	return 0;
}

static int parse_range_end(struct ctx *c, json_object *s, const char *key, const char *ptr,
			   enum scm_idl_type t, bool *ret_set, int64_t *ret)
{
	json_object *v;
	*ret_set = json_object_object_get_ex(s, key, &v);
	if (!*ret_set)
		return 0;
	if (t != SCM_IDL_INT && t != SCM_IDL_UINT)
		return BAD(c, "%s: %s/%s: only an int or uint setting has a range", c->origin, ptr, key);
	/* json-c reads 2^63.. as INT64_MAX: bounds stay within int64 */
	if (!json_object_is_type(v, json_type_int) ||
	    (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) ||
	    (t == SCM_IDL_UINT && json_object_get_int64(v) < 0))
		return BAD(c, "%s: %s/%s: expected an integer%s within -2^63..2^63-1", c->origin, ptr, key,
			   t == SCM_IDL_UINT ? " >= 0" : "");
	*ret = json_object_get_int64(v);
	return 0;
}

/* "settings": [{"name", "type", "doc", "min", "max"}]: what a profile
 * rule may set for this service's grants (scm_idl_setting). */
static int parse_settings(struct ctx *c, json_object *root, scm_idl *idl)
{
	static const char *const skeys[] = { "name", "type", "doc", "min", "max", NULL };
	json_object *arr, *t;
	char ptr[64];
	int r;
	if (!json_object_object_get_ex(root, "settings", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > IDL_FIELDS_MAX)
		return BAD(c, "%s: /settings: expected an array of at most %d", c->origin, IDL_FIELDS_MAX);
	size_t n = json_object_array_length(arr);
	idl->settings = calloc(n ? n : 1, sizeof(*idl->settings));
	if (!idl->settings)
		return -ENOMEM;
	idl->n_settings = n;
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		scm_idl_setting *sd = &idl->settings[i];
		snprintf(ptr, sizeof(ptr), "/settings/%zu", i);
		if ((r = only_keys(c, s, ptr, skeys)) || (r = get_str(c, s, "name", ptr, true, &sd->name)) ||
		    (r = get_str(c, s, "doc", ptr, false, &sd->doc)))
			return r;
		if (!is_ident(sd->name))
			return BAD(c, "%s: %s/name: '%s' is not a lower-case C identifier", c->origin, ptr,
				   sd->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(idl->settings[j].name, sd->name) == 0)
				return BAD(c, "%s: %s/name: setting '%s' appears twice", c->origin, ptr, sd->name);
		sd->type = _SCM_IDL_TYPE_MAX;
		if (json_object_object_get_ex(s, "type", &t) && json_object_is_type(t, json_type_string))
			for (int k = SCM_IDL_BOOL; k <= SCM_IDL_STRING; k++)
				if (strcmp(json_object_get_string(t), type_names[k]) == 0)
					sd->type = k;
		if (sd->type == _SCM_IDL_TYPE_MAX)
			return BAD(c, "%s: %s/type: expected one of bool int uint double string", c->origin, ptr);
		bool has_min, has_max;
		if ((r = parse_range_end(c, s, "min", ptr, sd->type, &has_min, &sd->min)) ||
		    (r = parse_range_end(c, s, "max", ptr, sd->type, &has_max, &sd->max)))
			return r;
		if (has_min != has_max)
			return BAD(c, "%s: %s: a range has both min and max", c->origin, ptr);
		sd->has_range = has_min;
		if (sd->has_range && sd->min > sd->max)
			return BAD(c, "%s: %s: min is greater than max", c->origin, ptr);
	}
	return 0;
}

/* "grant_rules": ["clipboard", ...]: kinds of profile rule the provider is
 * handed with each grant (scm_idl.grant_rules). */
static int parse_grant_rules(struct ctx *c, json_object *root, scm_idl *idl)
{
	json_object *arr;
	if (!json_object_object_get_ex(root, "grant_rules", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > IDL_GRANT_RULES_MAX)
		return BAD(c, "%s: /grant_rules: expected an array of at most %d names", c->origin,
			   IDL_GRANT_RULES_MAX);
	size_t n = json_object_array_length(arr);
	idl->grant_rules = calloc(n + 1, sizeof(char *));
	if (!idl->grant_rules)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string) || !is_ident(json_object_get_string(v)))
			return BAD(c, "%s: /grant_rules/%zu: expected a lower-case C identifier", c->origin, i);
		const char *name = json_object_get_string(v);
		for (size_t j = 0; j < i; j++)
			if (strcmp(idl->grant_rules[j], name) == 0)
				return BAD(c, "%s: /grant_rules/%zu: '%s' appears twice", c->origin, i, name);
		if (!(idl->grant_rules[i] = strdup(name)))
			return -ENOMEM;
		idl->n_grant_rules = i + 1;
	}
	return 0;
}

static int parse_root(struct ctx *c, json_object *root, scm_idl *idl)
{
	static const char *const keys[] = { "interface", "version", "doc",	   "errors",
					    "methods",	 "settings", "grant_rules", NULL };
	static const char *const mkeys[] = { "name", "doc", "params", "results", NULL };
	static const char *const ekeys[] = { "name", "code", "doc", NULL };
	json_object *v, *arr;
	char ptr[64];
	int r;

	if ((r = only_keys(c, root, "", keys)) || (r = get_str(c, root, "interface", "", true, &idl->name)) ||
	    (r = get_str(c, root, "doc", "", false, &idl->doc)))
		return r;
	if (!is_iface_name(idl->name))
		return BAD(c, "%s: /interface: '%s' is not a valid interface name", c->origin, idl->name);
	if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1 || json_object_get_int64(v) > 65535)
		return BAD(c, "%s: /version: expected an integer from 1 to 65535", c->origin);
	idl->version = (uint32_t)json_object_get_int64(v);

	if (!json_object_object_get_ex(root, "methods", &arr) || !json_object_is_type(arr, json_type_array))
		return BAD(c, "%s: /methods: missing or not an array", c->origin);
	size_t n = json_object_array_length(arr);
	if (n == 0 || n > IDL_METHODS_MAX)
		return BAD(c, "%s: /methods: expected 1 to %d methods", c->origin, IDL_METHODS_MAX);
	idl->methods = calloc(n, sizeof(*idl->methods));
	if (!idl->methods)
		return -ENOMEM;
	idl->n_methods = n;
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		scm_idl_method *md = &idl->methods[i];
		snprintf(ptr, sizeof(ptr), "/methods/%zu", i);
		md->id = (uint32_t)i + 1;
		if ((r = only_keys(c, m, ptr, mkeys)) || (r = get_str(c, m, "name", ptr, true, &md->name)) ||
		    (r = get_str(c, m, "doc", ptr, false, &md->doc)) ||
		    (r = parse_fields(c, m, "params", ptr, &md->params, &md->n_params)) ||
		    (r = parse_fields(c, m, "results", ptr, &md->results, &md->n_results)))
			return r;
		if (!is_ident(md->name))
			return BAD(c, "%s: %s/name: '%s' is not a lower-case C identifier", c->origin, ptr,
				   md->name);
		if (is_reserved(md->name, false))
			return BAD(c, "%s: %s/name: '%s' is reserved (a C keyword, or a name generated code uses)",
				   c->origin, ptr, md->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(idl->methods[j].name, md->name) == 0)
				return BAD(c, "%s: %s/name: method '%s' appears twice", c->origin, ptr, md->name);
	}
	if ((r = parse_settings(c, root, idl)) || (r = parse_grant_rules(c, root, idl)))
		return r;

	if (!json_object_object_get_ex(root, "errors", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > IDL_METHODS_MAX)
		return BAD(c, "%s: /errors: expected an array of at most %d", c->origin, IDL_METHODS_MAX);
	n = json_object_array_length(arr);
	idl->errors = calloc(n ? n : 1, sizeof(*idl->errors));
	if (!idl->errors)
		return -ENOMEM;
	idl->n_errors = n;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		scm_idl_error *ed = &idl->errors[i];
		snprintf(ptr, sizeof(ptr), "/errors/%zu", i);
		if ((r = only_keys(c, e, ptr, ekeys)) || (r = get_str(c, e, "name", ptr, true, &ed->name)) ||
		    (r = get_str(c, e, "doc", ptr, false, &ed->doc)))
			return r;
		if (!json_object_object_get_ex(e, "code", &v) || !json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < SCM_E_APP || json_object_get_int64(v) > 65535)
			return BAD(c, "%s: %s/code: expected an integer from %d to 65535", c->origin, ptr,
				   SCM_E_APP);
		ed->code = (int)json_object_get_int64(v);
	}
	return 0;
}

int scm_idl_parse(const char *text, size_t len, const char *origin, scm_idl **ret,
		  scm_error **ret_err)
{
	struct ctx c = { origin ? origin : "interface", ret_err };
	json_object *root = NULL;
	scm_error *e = NULL;
	int r;

	if (len > IDL_FILE_MAX)
		return BAD(&c, "%s: %zu bytes is over the %d-byte limit", c.origin, len, IDL_FILE_MAX);
	r = scm_json_parse(text, len, &root, &e);
	if (r != 0) {
		scm_error_push(ret_err, e);
		return scm_fail(ret_err, SCM_E_INVALID, "%s: not a valid interface definition", c.origin);
	}
	scm_idl *idl = calloc(1, sizeof(*idl));
	if (!idl) {
		json_object_put(root);
		return -ENOMEM;
	}
	r = parse_root(&c, root, idl);
	json_object_put(root);
	if (r != 0) {
		scm_idl_free(idl);
		return r;
	}
	*ret = idl;
	return 0;
}

int scm_idl_load(const char *path, scm_idl **ret, scm_error **ret_err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *buf = NULL;
	size_t n;

	if (!f)
		return scm_fail(ret_err, -errno, "cannot open interface %s: %m", path);
	buf = malloc(IDL_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	n = fread(buf, 1, IDL_FILE_MAX + 1, f);
	if (ferror(f))
		return scm_fail(ret_err, -EIO, "cannot read interface %s", path);
	return scm_idl_parse(buf, n, path, ret, ret_err);
}

static void free_fields(scm_idl_field *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++) {
		free(f[i].name);
		free(f[i].doc);
	}
	free(f);
}

scm_idl *scm_idl_free(scm_idl *idl)
{
	if (!idl)
		return NULL;
	for (size_t i = 0; i < idl->n_methods; i++) {
		free(idl->methods[i].name);
		free(idl->methods[i].doc);
		free_fields(idl->methods[i].params, idl->methods[i].n_params);
		free_fields(idl->methods[i].results, idl->methods[i].n_results);
	}
	for (size_t i = 0; i < idl->n_errors; i++) {
		free(idl->errors[i].name);
		free(idl->errors[i].doc);
	}
	for (size_t i = 0; i < idl->n_settings; i++) {
		free(idl->settings[i].name);
		free(idl->settings[i].doc);
	}
	free(idl->settings);
	strv_free(idl->grant_rules);
	free(idl->methods);
	free(idl->errors);
	free(idl->name);
	free(idl->doc);
	free(idl);
	return NULL;
}

const scm_idl_method *scm_idl_method_by_name(const scm_idl *idl, const char *name)
{
	for (size_t i = 0; i < idl->n_methods; i++)
		if (strcmp(idl->methods[i].name, name) == 0)
			return &idl->methods[i];
	return NULL;
}

const scm_idl_method *scm_idl_method_by_id(const scm_idl *idl, uint32_t id)
{
	return id >= 1 && id <= idl->n_methods ? &idl->methods[id - 1] : NULL;
}

const scm_idl_setting *scm_idl_setting_by_name(const scm_idl *idl, const char *name)
{
	for (size_t i = 0; i < idl->n_settings; i++)
		if (strcmp(idl->settings[i].name, name) == 0)
			return &idl->settings[i];
	return NULL;
}

const char *scm_idl_setting_check(const scm_idl_setting *s, struct json_object *v)
{
	bool big = json_object_is_type(v, json_type_int) && json_object_get_int64(v) == INT64_MAX &&
		   json_object_get_uint64(v) > (uint64_t)INT64_MAX;
	switch (s->type) {
	case SCM_IDL_BOOL:
		return json_object_is_type(v, json_type_boolean) ? NULL : "is not a bool";
	case SCM_IDL_STRING:
		/* a NUL inside would be cut where the provider reads it */
		return json_object_is_type(v, json_type_string) &&
				       strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v)
			       ? NULL
			       : "is not a string (or holds a NUL)";
	case SCM_IDL_DOUBLE:
		return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)
			       ? NULL
			       : "is not a number";
	case SCM_IDL_INT:
	case SCM_IDL_UINT:
		if (!json_object_is_type(v, json_type_int))
			return "is not an integer";
		if (s->type == SCM_IDL_UINT && !big && json_object_get_int64(v) < 0)
			return "is negative";
		if (s->type == SCM_IDL_INT && big)
			return "is out of the int64 range";
		if (s->has_range && (big || json_object_get_int64(v) < s->min || json_object_get_int64(v) > s->max))
			return "is out of the setting's range";
		return NULL;
	default:
		return "has a type a setting cannot have";
	}
}

static void print_fields(const scm_idl_field *f, size_t n, FILE *out)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s %s", i ? ", " : "", type_names[f[i].type], f[i].name);
}

void scm_idl_print(const scm_idl *idl, FILE *out)
{
	fprintf(out, "interface %s version %u\n", idl->name, idl->version);
	if (idl->doc && *idl->doc)
		fprintf(out, "  %s\n", idl->doc);
	fprintf(out, "\nmethods:\n");
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		fprintf(out, "  %3u  %s(", m->id, m->name);
		print_fields(m->params, m->n_params, out);
		fprintf(out, ") -> (");
		print_fields(m->results, m->n_results, out);
		fprintf(out, ")\n");
		if (m->doc && *m->doc)
			fprintf(out, "         %s\n", m->doc);
		for (size_t j = 0; j < m->n_params; j++)
			if (m->params[j].doc && *m->params[j].doc)
				fprintf(out, "         %s: %s\n", m->params[j].name, m->params[j].doc);
	}
	if (idl->n_settings) {
		fprintf(out, "\nsettings (set by a profile's allow rule):\n");
		for (size_t i = 0; i < idl->n_settings; i++) {
			const scm_idl_setting *s = &idl->settings[i];
			fprintf(out, "  %s %s", type_names[s->type], s->name);
			if (s->has_range)
				fprintf(out, " (%lld..%lld)", (long long)s->min, (long long)s->max);
			fprintf(out, "%s%s\n", s->doc && *s->doc ? ": " : "", s->doc ? s->doc : "");
		}
	}
	if (idl->n_grant_rules) {
		fprintf(out, "\nprofile rules handed to the provider with each grant:");
		for (size_t i = 0; i < idl->n_grant_rules; i++)
			fprintf(out, " %s", idl->grant_rules[i]);
		fprintf(out, "\n");
	}
	if (idl->n_errors) {
		fprintf(out, "\nerrors:\n");
		for (size_t i = 0; i < idl->n_errors; i++)
			fprintf(out, "  %5d  %s%s%s\n", idl->errors[i].code, idl->errors[i].name,
				idl->errors[i].doc && *idl->errors[i].doc ? ": " : "",
				idl->errors[i].doc ? idl->errors[i].doc : "");
	}
}
