/* profile-sandbox.c: a profile's "sandbox" section (profile.c parses the
 * rest): syscalls, capabilities, mounts, network, limits and log, each
 * checked and turned into canonical "kind:name" settings (add_setting)
 * that the merge orders and decides (sandbox.c). A name no kernel knows
 * and a second spelling of the same mount point are refused here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <scm/macro.h>

#include "internal.h"

#define SETTINGS_MAX 4096

static int get_uint(pctx *c, json_object *o, const char *key, const char *pointer, uint64_t min,
		    uint64_t max, bool *ret_set, uint64_t *ret)
{
	json_object *v;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/%s", pointer, key);
	*ret_set = false;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return prof_err(c, sub, "expected an integer, got %s", prof_type(v));
	int64_t i = json_object_get_int64(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return prof_err(c, sub, "%lld is out of range [%llu, %llu]", (long long)i,
			    (unsigned long long)min, (unsigned long long)max);
	*ret = (uint64_t)i;
	*ret_set = true;
	return 0;
}

static int add_setting(pctx *c, const char *key, const char *value, const char *pointer)
{
	policy_profile *p = c->p;
	for (size_t i = 0; i < p->n_settings; i++)
		if (strcmp(p->settings[i].key, key) == 0)
			return prof_err(c, pointer, "%s is already set at %s", key, p->settings[i].pointer);
	if (p->n_settings >= SETTINGS_MAX)
		return prof_err(c, pointer, "more than %d sandbox settings", SETTINGS_MAX);
	psetting *ns = realloc(p->settings, (p->n_settings + 1) * sizeof(*ns));
	if (!ns)
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	p->settings = ns;
	psetting *s = &ns[p->n_settings];
	*s = (psetting){ strdup(key), strdup(value), strdup(pointer), p };
	if (!s->key || !s->value || !s->pointer) {
		free(s->key);
		free(s->value);
		free(s->pointer);
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	}
	p->n_settings++;
	return 0;
}

/* {"allow": [names], "deny": [names]} for syscalls and capabilities. */
static int parse_allow_deny(pctx *c, json_object *o, const char *pointer, const char *prefix,
			    bool caps)
{
	static const char *const known[] = { "allow", "deny", NULL };
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, pointer, "expected an object {\"allow\": [...], \"deny\": [...]}, got %s",
			    prof_type(o));
	int r = prof_keys(c, o, pointer, known);
	if (r)
		return r;
	for (int d = 0; d < 2; d++) {
		const char *which = known[d];
		json_object *a;
		char sub[512];
		snprintf(sub, sizeof(sub), "%s/%s", pointer, which);
		if (!json_object_object_get_ex(o, which, &a))
			continue;
		if (!json_object_is_type(a, json_type_array))
			return prof_err(c, sub, "expected an array of names, got %s", prof_type(a));
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *n = json_object_array_get_idx(a, i);
			char el[600], key[200];
			snprintf(el, sizeof(el), "%s/%zu", sub, i);
			if (!json_object_is_type(n, json_type_string))
				return prof_err(c, el, "expected a name, got %s", prof_type(n));
			const char *s = json_object_get_string(n);
			bool ok = *s && strlen(s) <= 64;
			for (const char *q = s; *q && ok; q++)
				ok = caps ? ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')
					  : ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_');
			if (caps && ok)
				ok = strncmp(s, "CAP_", 4) == 0 && s[4];
			if (!ok)
				return prof_err(c, el, caps ? "bad capability name \"%.80s\" (expected CAP_NAME)"
							: "bad syscall name \"%.80s\"", s);
			/* a name no kernel knows would deny (or allow) nothing: a
			 * typo in a deny must not leave a lower allow standing */
			if (caps && !cap_name_known(s)) {
				const char *near = cap_name_suggest(s);
				if (near)
					return prof_err(c, el, "unknown capability \"%s\" (did you mean %s?)", s, near);
				return prof_err(c, el, "unknown capability \"%s\"", s);
			}
			if (!caps && !syscall_name_known(s))
				return prof_err(c, el, "unknown system call \"%s\" (not known to libseccomp for this "
						   "architecture)", s);
			snprintf(key, sizeof(key), "%s:%s", prefix, s);
			if ((r = add_setting(c, key, which, el)))
				return r;
		}
	}
	return 0;
}

static int parse_mounts(pctx *c, json_object *a, const char *pointer)
{
	static const char *const known[] = { "source", "destination", "readonly", NULL };
	if (!json_object_is_type(a, json_type_array))
		return prof_err(c, pointer, "expected an array of mounts, got %s", prof_type(a));
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *m = json_object_array_get_idx(a, i), *ro;
		char el[512], key[4200], val[4200];
		const char *src, *dst;
		bool readonly = true;
		snprintf(el, sizeof(el), "%s/%zu", pointer, i);
		if (!json_object_is_type(m, json_type_object))
			return prof_err(c, el, "expected a mount object, got %s", prof_type(m));
		int r = prof_keys(c, m, el, known);
		if (!r)
			r = prof_string(c, m, "source", el, true, &src);
		if (!r)
			r = prof_string(c, m, "destination", el, true, &dst);
		if (r)
			return r;
		/* Keys are canonical paths: "/x/", "/x/." and "/x//" name the same
		 * mount point as "/x", so they must be the same setting, or a low
		 * profile could respell a high one's read-only mount and win. */
		_cleanup_free_ char *csrc = NULL, *cdst = NULL;
		const char *why = NULL;
		char sub[600];
		snprintf(sub, sizeof(sub), "%s/source", el);
		if ((r = path_canon(src, &csrc, &why)) == -ENOMEM)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		if (r < 0)
			return prof_err(c, sub, "source \"%.200s\" %s", src, why);
		snprintf(sub, sizeof(sub), "%s/destination", el);
		if ((r = path_canon(dst, &cdst, &why)) == -ENOMEM)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		if (r < 0)
			return prof_err(c, sub, "destination \"%.200s\" %s", dst, why);

		if (json_object_object_get_ex(m, "readonly", &ro)) {
			if (!json_object_is_type(ro, json_type_boolean))
				return prof_err(c, el, "readonly: expected true or false, got %s", prof_type(ro));
			readonly = json_object_get_boolean(ro);
		}
		snprintf(key, sizeof(key), "mount:%s", cdst);
		snprintf(val, sizeof(val), "%s:%s", readonly ? "ro" : "rw", csrc);
		if ((r = add_setting(c, key, val, el)))
			return r;
	}
	return 0;
}

int parse_sandbox(pctx *c, json_object *o)
{
	static const char *const known[] = { "syscalls", "capabilities", "mounts", "network",
					     "limits", "log", "gfx", NULL };
	static const char *const lknown[] = { "memory", "pids", "cpu", NULL };
	static const char *const logknown[] = { "max_bytes", "files", NULL };
	json_object *v;
	int r;
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, "/sandbox", "expected an object, got %s", prof_type(o));
	if ((r = prof_keys(c, o, "/sandbox", known)))
		return r;
	/* The graphics weight was the one service setting scmd knew by name;
	 * settings now belong to the service's allow rule, for every service. */
	if (json_object_object_get_ex(o, "gfx", &v))
		return prof_err(c, "/sandbox/gfx", "per-service settings moved to the service's allow rule: "
					      "{\"service\": \"gfx-*\", \"methods\": [...], \"action\": \"allow\", "
					      "\"settings\": {\"weight\": %s}} (docs/policy.md, \"Service settings\")",
			    json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "weight", &v)
				    ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
				    : "W");
	if (json_object_object_get_ex(o, "syscalls", &v) &&
	    (r = parse_allow_deny(c, v, "/sandbox/syscalls", "syscall", false)))
		return r;
	if (json_object_object_get_ex(o, "capabilities", &v) &&
	    (r = parse_allow_deny(c, v, "/sandbox/capabilities", "cap", true)))
		return r;
	if (json_object_object_get_ex(o, "mounts", &v) && (r = parse_mounts(c, v, "/sandbox/mounts")))
		return r;
	const char *net;
	if ((r = prof_string(c, o, "network", "/sandbox", false, &net)))
		return r;
	if (net) {
		if (strcmp(net, "none") && strcmp(net, "loopback") && strcmp(net, "host"))
			return prof_err(c, "/sandbox/network",
				    "expected \"none\", \"loopback\" or \"host\", got \"%.80s\"", net);
		if ((r = add_setting(c, "network", net, "/sandbox/network")))
			return r;
	}
	struct {
		const char *obj, *field, *key;
		uint64_t min, max;
		const char *const *known;
	} lim[] = {
		{ "limits", "memory", "limit:memory", 1u << 20, UINT64_C(1) << 62, lknown },
		{ "limits", "pids", "limit:pids", 1, 4194304, lknown },
		{ "limits", "cpu", "limit:cpu", 1, 10000, lknown },
		{ "log", "max_bytes", "log:max_bytes", 64u << 10, UINT64_C(1) << 40, logknown },
		{ "log", "files", "log:files", 1, 7, logknown },
	};
	for (size_t i = 0; i < ELEMENTSOF(lim); i++) {
		char ptr[64], val[32], sub[96];
		json_object *lo;
		snprintf(ptr, sizeof(ptr), "/sandbox/%s", lim[i].obj);
		if (!json_object_object_get_ex(o, lim[i].obj, &lo))
			continue;
		if (!json_object_is_type(lo, json_type_object))
			return prof_err(c, ptr, "expected an object, got %s", prof_type(lo));
		if ((r = prof_keys(c, lo, ptr, lim[i].known)))
			return r;
		bool set;
		uint64_t u;
		if ((r = get_uint(c, lo, lim[i].field, ptr, lim[i].min, lim[i].max, &set, &u)))
			return r;
		if (!set)
			continue;
		snprintf(val, sizeof(val), "%llu", (unsigned long long)u);
		snprintf(sub, sizeof(sub), "%s/%s", ptr, lim[i].field);
		if ((r = add_setting(c, lim[i].key, val, sub)))
			return r;
	}
	return 0;
}
