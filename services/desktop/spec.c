/* spec.c: parsing and validating desktop session specs (see spec.h).
 * Everything is checked here so that launchers never see a json_object. */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scmutil.h"
#include "spec.h"

#define INVALID 100
#define ERR(...) scm_fail(ret_err, INVALID, __VA_ARGS__)

/* [a-z0-9-], 1..32, not starting with '-': it names the session's files. */
static bool good_name(const char *s)
{
	return name_valid(s, 32, NAME_DASH) && s[0] != '-';
}

static int parse_size(struct json_object *v, uint32_t *w, uint32_t *h)
{
	char tail;
	if (!v || !json_object_is_type(v, json_type_string) ||
	    sscanf(json_object_get_string(v), "%ux%u%c", w, h, &tail) != 2)
		return -1;
	return *w >= 64 && *h >= 64 && *w <= 8192 && *h <= 8192 ? 0 : -1;
}

/* An array of 0..max non-empty strings (at least min). */
static int parse_strv(struct json_object *v, size_t min, size_t max, char ***ret)
{
	const char *why;
	char **out = v ? strv_from_json(v, max, false, &why) : NULL;
	if (!out)
		return -1;
	bool ok = strv_length(out) >= min;
	for (size_t i = 0; ok && out[i]; i++)
		ok = strlen(out[i]) <= 4096;
	if (!ok) {
		strv_free(out);
		return -1;
	}
	*ret = out;
	return 0;
}

void desktop_app_clear(desktop_app *a)
{
	free(a->name);
	strv_free(a->command);
	strv_free(a->profiles);
	*a = (desktop_app){ 0 };
}

desktop_spec *desktop_spec_free(desktop_spec *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_apps; i++)
		desktop_app_clear(&s->apps[i]);
	free(s->name);
	free(s->tls);
	free(s->tls_cert);
	free(s->tls_key);
	free(s);
	return NULL;
}

/* where: the app's JSON pointer ("/apps/3", or "/app" for app_add). */
static int parse_app(struct json_object *a, const char *where, desktop_app *app, scm_error **ret_err)
{
	static const char *const keys[] = { "name", "command", "size", "profiles", "weight", NULL };
	struct json_object *v;
	const char *bad;
	if (!json_object_is_type(a, json_type_object))
		return ERR("%s: must be an object", where);
	if ((bad = json_unknown_key(a, keys)))
		return ERR("%s/%.40s: unknown key", where, bad);
	if (!json_object_object_get_ex(a, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    !good_name(json_object_get_string(v)))
		return ERR("%s/name: want 1..32 of [a-z0-9-]", where);
	if (!(app->name = strdup(json_object_get_string(v))))
		return -ENOMEM;
	json_object_object_get_ex(a, "command", &v);
	int r = parse_strv(v, 1, 64, &app->command);
	if (r)
		return r == -ENOMEM ? r : ERR("%s/command: want 1..64 non-empty strings", where);
	v = NULL;
	json_object_object_get_ex(a, "size", &v);
	if (parse_size(v, &app->width, &app->height) < 0)
		return ERR("%s/size: want \"WxH\" within 64..8192", where);
	app->weight = 1;
	if (json_object_object_get_ex(a, "weight", &v)) {
		int64_t w = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
		if (w < 1 || w > 10000)
			return ERR("%s/weight: want an integer 1..10000", where);
		app->weight = (uint32_t)w;
	}
	if (json_object_object_get_ex(a, "profiles", &v)) {
		r = parse_strv(v, 0, 16, &app->profiles);
		if (r)
			return r == -ENOMEM ? r : ERR("%s/profiles: want 0..16 non-empty strings", where);
	} else if (!(app->profiles = calloc(1, sizeof(char *)))) {
		return -ENOMEM;
	}
	return 0;
}

/* "tls": the RFB port's security (the proxy's --tls); "tls_cert" and
 * "tls_key" go together, as absolute clean paths. */
static int parse_tls(struct json_object *root, desktop_spec *s, scm_error **ret_err)
{
	struct json_object *v;
	if (json_object_object_get_ex(root, "tls", &v)) {
		const char *m = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		if (strcmp(m, "required") != 0 && strcmp(m, "preferred") != 0 && strcmp(m, "off") != 0)
			return ERR("/tls: want \"required\", \"preferred\" or \"off\"");
		if (!(s->tls = strdup(m)))
			return -ENOMEM;
	}
	static const char *const names[] = { "tls_cert", "tls_key" };
	char **dst[] = { &s->tls_cert, &s->tls_key };
	for (size_t i = 0; i < 2; i++) {
		if (!json_object_object_get_ex(root, names[i], &v))
			continue;
		const char *p = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		if (p[0] != '/' || strlen(p) > 1024 || !path_is_clean(p))
			return ERR("/%s: want an absolute path without . or .. (a PEM file)", names[i]);
		if (!(*dst[i] = strdup(p)))
			return -ENOMEM;
	}
	if (!s->tls_cert != !s->tls_key)
		return ERR("/%s: tls_cert and tls_key go together", s->tls_cert ? "tls_key" : "tls_cert");
	if (s->tls_cert && s->tls && strcmp(s->tls, "off") == 0)
		return ERR("/tls_cert: given with \"tls\": \"off\"");
	return 0;
}

int desktop_spec_parse(const char *text, size_t len, desktop_spec **ret, scm_error **ret_err)
{
	static const char *const keys[] = { "name", "description", "size", "resize", "tls", "tls_cert", "tls_key", "apps",
					    NULL };
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
	if ((bad = json_unknown_key(root, keys))) {
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
	if (json_object_object_get_ex(root, "resize", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			r = ERR("/resize: must be true or false");
			goto out;
		}
		s->resize = json_object_get_boolean(v);
	}
	if ((r = parse_tls(root, s, ret_err)) != 0)
		goto out;
	if (!json_object_object_get_ex(root, "apps", &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) < 1 || json_object_array_length(v) > DESKTOP_APPS_MAX) {
		r = ERR("/apps: want an array of 1..%d apps", DESKTOP_APPS_MAX);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		s->n_apps = i + 1;
		char where[32];
		snprintf(where, sizeof(where), "/apps/%zu", i);
		r = parse_app(json_object_array_get_idx(v, i), where, &s->apps[i], ret_err);
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

int desktop_app_parse(struct json_object *a, uint32_t max_w, uint32_t max_h, desktop_app *ret, scm_error **ret_err)
{
	desktop_app app = { 0 };
	int r = parse_app(a, "/app", &app, ret_err);
	if (r == 0 && (app.width > max_w || app.height > max_h))
		r = ERR("/app/size: %ux%u is larger than the desktop", app.width, app.height);
	if (r)
		desktop_app_clear(&app);
	else
		*ret = app;
	return r;
}
