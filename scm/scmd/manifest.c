/* manifest.c: service manifests, JSON to a validated struct manifest.
 *
 *   {"name": "echo", "interface": "echo", "exec": ["scm-echo"],
 *    "activation": "on-demand"|"always", "restart": "no"|"on-failure"|"always",
 *    "timeout_ms": 5000, "allow": ["host", "app-*"], "description": "...",
 *    "container": true | {"profiles": [...]}, "recover": true|false}
 *
 * Unknown members are refused, so a misspelt one is not silently
 * ignored. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "manifest.h"
#include "scmutil.h"
#include "scmd.h"

#define MBAD(...) scm_fail(ret_err, SCM_E_INVALID, __VA_ARGS__)

void manifest_done(struct manifest *m)
{
	free(m->name);
	free(m->iface);
	strv_free(m->exec);
	strv_free(m->allow);
	strv_free(m->container_profiles);
	*m = (struct manifest){ 0 };
}

int manifest_parse(json_object *m, const char *origin, struct manifest *ret, scm_error **ret_err)
{
	static const char *const keys[] = { "name", "interface", "exec", "activation", "restart",
					    "timeout_ms", "allow", "description", "container", "recover", NULL };
	json_object *v;
	const char *bad = NULL;

	if (!json_object_is_type(m, json_type_object))
		return MBAD("%s: a manifest is a JSON object", origin);
	const char *key = json_unknown_key(m, keys);
	if (key)
		return MBAD("%s: /%s: unknown key", origin, key);
	if (!json_object_object_get_ex(m, "name", &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > 64)
		return MBAD("%s: /name: expected a string of 1 to 64 bytes", origin);
	const char *name = json_object_get_string(v);
	if (strlen(name) != (size_t)json_object_get_string_len(v))
		return MBAD("%s: /name: holds a NUL byte", origin);
	if (!name_valid(name, 64, NAME_DASH | NAME_UNDERSCORE | NAME_DOT))
		return MBAD("%s: /name: '%s' may only hold a-z 0-9 . _ -", origin, name);

	if (!json_object_object_get_ex(m, "interface", &v) || !json_object_is_type(v, json_type_string))
		return MBAD("%s: /interface: expected the name of an interface", origin);
	/* It becomes a file name on the IDL path: no way out of those dirs. */
	const char *iname = json_object_get_string(v);
	if (!name_valid(iname, 64, NAME_DASH | NAME_UNDERSCORE | NAME_DOT | NAME_NO_LEADING_PUNCT))
		return MBAD("%s: /interface: '%s' is not an interface name (a-z 0-9 . _ -)", origin, iname);

	_cleanup_(strv_freep) char **exec = NULL, **allow = NULL;
	if (!json_object_object_get_ex(m, "exec", &v) || !(exec = strv_from_json(v, 64, false, &bad)) || !exec[0])
		return MBAD("%s: /exec: %s", origin, bad ? bad : "expected a command (array of strings)");
	if (json_object_object_get_ex(m, "allow", &v) && !(allow = strv_from_json(v, 1024, false, &bad)))
		return MBAD("%s: /allow: %s", origin, bad);

	enum activation act = ACT_ON_DEMAND;
	if (json_object_object_get_ex(m, "activation", &v)) {
		const char *a = json_object_get_string(v);
		if (json_object_is_type(v, json_type_string) && strcmp(a, "always") == 0)
			act = ACT_ALWAYS;
		else if (!json_object_is_type(v, json_type_string) || strcmp(a, "on-demand") != 0)
			return MBAD("%s: /activation: expected \"on-demand\" or \"always\"", origin);
	}
	enum restart rs = RESTART_ON_FAILURE;
	if (json_object_object_get_ex(m, "restart", &v)) {
		const char *a = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		if (strcmp(a, "no") == 0)
			rs = RESTART_NO;
		else if (strcmp(a, "always") == 0)
			rs = RESTART_ALWAYS;
		else if (strcmp(a, "on-failure") != 0)
			return MBAD("%s: /restart: expected \"no\", \"on-failure\" or \"always\"", origin);
	}
	unsigned timeout = 5000;
	if (json_object_object_get_ex(m, "timeout_ms", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
		    json_object_get_int64(v) > 600000)
			return MBAD("%s: /timeout_ms: expected an integer from 1 to 600000", origin);
		timeout = (unsigned)json_object_get_int64(v);
	}

	/* "container": true runs the provider on the quick path (the host
	 * read-only, nothing else); {"profiles": [..]} adds its sandbox. */
	bool in_container = false;
	_cleanup_(strv_freep) char **cprofiles = NULL;
	if (json_object_object_get_ex(m, "container", &v)) {
		json_object *pv;
		if (json_object_is_type(v, json_type_boolean))
			in_container = json_object_get_boolean(v);
		else if (json_object_is_type(v, json_type_object)) {
			in_container = true;
			json_object_object_foreach(v, ck, cv)
			{
				(void)cv;
				if (strcmp(ck, "profiles") != 0)
					return MBAD("%s: /container/%s: unknown key", origin, ck);
			}
			if (json_object_object_get_ex(v, "profiles", &pv) &&
			    !(cprofiles = strv_from_json(pv, 64, false, &bad)))
				return MBAD("%s: /container/profiles: %s", origin, bad);
		} else
			return MBAD("%s: /container: expected true, false or {\"profiles\": [...]}", origin);
	}

	/* docs/handover.md, "A provider that crashes" */
	bool recover = false;
	if (json_object_object_get_ex(m, "recover", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return MBAD("%s: /recover: expected true or false (whether a crashed provider's channels are "
				    "recovered from its checkpoint)",
				    origin);
		recover = json_object_get_boolean(v);
		if (recover && in_container)
			return MBAD("%s: /recover: a provider in a container cannot be recovered: its channels are "
				    "recovered for providers scmd starts as processes",
				    origin);
	}

	char *n = strdup(name), *i = strdup(iname);
	if (!n || !i) {
		free(n);
		free(i);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	*ret = (struct manifest){ .name = n, .iface = i, .exec = TAKE_PTR(exec), .allow = TAKE_PTR(allow),
				  .activation = act, .restart = rs, .timeout_ms = timeout,
				  .in_container = in_container, .container_profiles = TAKE_PTR(cprofiles),
				  .recover = recover };
	return 0;
}

int manifest_parse_text(const char *text, size_t len, const char *origin, struct manifest *ret,
			scm_error **ret_err)
{
	json_object *m = NULL;

	if (scm_json_parse(text, len, &m, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: not a valid manifest", origin);
	int r = manifest_parse(m, origin, ret, ret_err);
	json_object_put(m);
	return r;
}
