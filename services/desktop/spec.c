/* spec.c: parsing and validating desktop session specs (see spec.h).
 * Everything is checked here so that launchers never see a json_object. */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

#define INVALID 100
#define ERR(...) scm_fail(ret_err, INVALID, __VA_ARGS__)

static bool good_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static int parse_size(struct json_object *v, uint32_t *w, uint32_t *h)
{
	char tail;
	if (!v || !json_object_is_type(v, json_type_string) ||
	    sscanf(json_object_get_string(v), "%ux%u%c", w, h, &tail) != 2)
		return -1;
	return *w >= 64 && *h >= 64 && *w <= 8192 && *h <= 8192 ? 0 : -1;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* An array of 0..max non-empty strings (at least min). */
static int parse_strv(struct json_object *v, size_t min, size_t max, char ***ret)
{
	if (!v || !json_object_is_type(v, json_type_array))
		return -1;
	size_t n = json_object_array_length(v);
	if (n < min || n > max)
		return -1;
	char **out = calloc(n + 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(v, i);
		if (!s || !json_object_is_type(s, json_type_string) || json_object_get_string_len(s) == 0 ||
		    json_object_get_string_len(s) > 4096 || !(out[i] = strdup(json_object_get_string(s)))) {
			strv_free(out);
			return -1;
		}
	}
	*ret = out;
	return 0;
}

static bool only_keys(struct json_object *o, const char *const *keys, const char **bad)
{
	json_object_object_foreach(o, k, v)
	{
		(void)v;
		bool ok = false;
		for (size_t i = 0; keys[i]; i++)
			ok = ok || strcmp(k, keys[i]) == 0;
		if (!ok) {
			*bad = k;
			return false;
		}
	}
	return true;
}

desktop_spec *desktop_spec_free(desktop_spec *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_apps; i++) {
		free(s->apps[i].name);
		strv_free(s->apps[i].command);
		strv_free(s->apps[i].profiles);
	}
	free(s->name);
	free(s);
	return NULL;
}

static int parse_app(struct json_object *a, size_t i, desktop_app *app, scm_error **ret_err)
{
	static const char *const keys[] = { "name", "command", "size", "profiles", "weight", NULL };
	struct json_object *v;
	const char *bad;
	if (!json_object_is_type(a, json_type_object))
		return ERR("/apps/%zu: must be an object", i);
	if (!only_keys(a, keys, &bad))
		return ERR("/apps/%zu/%.40s: unknown key", i, bad);
	if (!json_object_object_get_ex(a, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !good_name(json_object_get_string(v)))
		return ERR("/apps/%zu/name: want 1..32 of [a-z0-9-]", i);
	if (!(app->name = strdup(json_object_get_string(v))))
		return -ENOMEM;
	json_object_object_get_ex(a, "command", &v);
	int r = parse_strv(v, 1, 64, &app->command);
	if (r)
		return r == -ENOMEM ? r : ERR("/apps/%zu/command: want 1..64 non-empty strings", i);
	v = NULL;
	json_object_object_get_ex(a, "size", &v);
	if (parse_size(v, &app->width, &app->height) < 0)
		return ERR("/apps/%zu/size: want \"WxH\" within 64..8192", i);
	app->weight = 1;
	if (json_object_object_get_ex(a, "weight", &v)) {
		int64_t w = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
		if (w < 1 || w > 10000)
			return ERR("/apps/%zu/weight: want an integer 1..10000", i);
		app->weight = (uint32_t)w;
	}
	if (json_object_object_get_ex(a, "profiles", &v)) {
		r = parse_strv(v, 0, 16, &app->profiles);
		if (r)
			return r == -ENOMEM ? r : ERR("/apps/%zu/profiles: want 0..16 non-empty strings", i);
	} else if (!(app->profiles = calloc(1, sizeof(char *)))) {
		return -ENOMEM;
	}
	return 0;
}

int desktop_spec_parse(const char *text, size_t len, desktop_spec **ret, scm_error **ret_err)
{
	static const char *const keys[] = { "name", "description", "size", "apps", NULL };
	struct json_tokener *tok = json_tokener_new_ex(8);
	if (!tok)
		return -ENOMEM;
	struct json_object *root = len <= 1 << 20 ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
	enum json_tokener_error je = json_tokener_get_error(tok);
	json_tokener_free(tok);
	struct json_object *v;
	const char *bad;
	desktop_spec *s = NULL;
	int r;

	if (!root || je != json_tokener_success) {
		r = ERR("/: not a JSON document (%s)", len > 1 << 20 ? "over 1 MiB" : json_tokener_error_desc(je));
		goto out;
	}
	if (!json_object_is_type(root, json_type_object)) {
		r = ERR("/: must be an object");
		goto out;
	}
	if (!only_keys(root, keys, &bad)) {
		r = ERR("/%.40s: unknown key", bad);
		goto out;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		r = -ENOMEM;
		goto out;
	}
	if (!json_object_object_get_ex(root, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !good_name(json_object_get_string(v))) {
		r = ERR("/name: want 1..32 of [a-z0-9-]");
		goto out;
	}
	s->name = strdup(json_object_get_string(v));
	v = NULL;
	json_object_object_get_ex(root, "size", &v);
	if (parse_size(v, &s->width, &s->height) < 0) {
		r = ERR("/size: want \"WxH\" within 64..8192");
		goto out;
	}
	if (json_object_object_get_ex(root, "description", &v) && !json_object_is_type(v, json_type_string)) {
		r = ERR("/description: must be a string");
		goto out;
	}
	if (!json_object_object_get_ex(root, "apps", &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) < 1 || json_object_array_length(v) > DESKTOP_APPS_MAX) {
		r = ERR("/apps: want an array of 1..%d apps", DESKTOP_APPS_MAX);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		s->n_apps = i + 1;
		r = parse_app(json_object_array_get_idx(v, i), i, &s->apps[i], ret_err);
		if (r)
			goto out;
		for (size_t k = 0; k < i; k++)
			if (strcmp(s->apps[k].name, s->apps[i].name) == 0) {
				r = ERR("/apps/%zu/name: \"%s\" is used twice", i, s->apps[i].name);
				goto out;
			}
		if (s->apps[i].width > s->width || s->apps[i].height > s->height) {
			r = ERR("/apps/%zu/size: %ux%u is larger than the desktop", i, s->apps[i].width, s->apps[i].height);
			goto out;
		}
	}
	r = s->name ? 0 : -ENOMEM;
out:
	json_object_put(root);
	if (r == 0)
		*ret = s;
	else
		desktop_spec_free(s);
	return r;
}
