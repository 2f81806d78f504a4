/* clipflow.c: clipboard flow rules (scm-internal/clipflow.h). The proxy parses the
 * list from a grant scmd made; it is still checked field by field, since
 * a malformed list must deny, never crash or allow. */
#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scm-internal/clipflow.h"
#include "scm/scm.h"

bool scm_clip_pattern_valid(const char *p)
{
	size_t n = 0;
	if (!p || !*p)
		return false;
	if (strcmp(p, SCM_CLIP_VIEWER) == 0)
		return true;
	for (; p[n]; n++) {
		char c = p[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.' || c == '*' || c == '?'))
			return false;
	}
	return n <= SCM_NAME_MAX;
}

bool scm_clip_match(const char *pattern, const char *name)
{
	if (!scm_clip_pattern_valid(pattern) || !name)
		return false;
	/* The viewer is reached only by its own name, as Qubes' @anyvm
	 * leaves out dom0: "*" means every container, not the viewer too. */
	if (strcmp(name, SCM_CLIP_VIEWER) == 0 || strcmp(pattern, SCM_CLIP_VIEWER) == 0)
		return strcmp(pattern, name) == 0;
	/* Valid patterns hold no '[' or '\\', so fnmatch is the glob. */
	return fnmatch(pattern, name, FNM_NOESCAPE) == 0;
}

void scm_clip_rules_done(scm_clip_rules *r)
{
	for (size_t i = 0; r && i < r->n; i++) {
		free(r->v[i].from);
		free(r->v[i].to);
		free(r->v[i].origin);
	}
	if (r) {
		free(r->v);
		r->v = NULL;
		r->n = 0;
	}
}

static const char *pattern_of(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	const char *s = json_object_get_string(v);
	/* A NUL inside would make C read a shorter pattern than JSON holds. */
	if (strlen(s) != (size_t)json_object_get_string_len(v) || !scm_clip_pattern_valid(s))
		return NULL;
	return s;
}

int scm_clip_rules_parse(struct json_object *arr, scm_clip_rules *ret, scm_error **ret_err)
{
	scm_clip_rules out = { 0 };
	*ret = out;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return scm_fail(ret_err, SCM_E_INVALID, "clipboard rules: expected an array");
	size_t n = json_object_array_length(arr);
	if (n > SCM_CLIP_RULES_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "clipboard rules: %zu, more than %d", n, SCM_CLIP_RULES_MAX);
	if (n && !(out.v = calloc(n, sizeof(*out.v))))
		return scm_fail(ret_err, -ENOMEM, "clipboard rules: out of memory");
	for (size_t i = 0; i < n; i++, out.n++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *a, *p, *g;
		const char *from = NULL, *to = NULL, *origin = "";
		if (!json_object_is_type(o, json_type_object) || !(from = pattern_of(o, "from")) ||
		    !(to = pattern_of(o, "to")) || !json_object_object_get_ex(o, "allow", &a) ||
		    !json_object_is_type(a, json_type_boolean) || !json_object_object_get_ex(o, "priority", &p) ||
		    !json_object_is_type(p, json_type_int)) {
			scm_clip_rules_done(&out);
			return scm_fail(ret_err, SCM_E_INVALID,
					"clipboard rules: /%zu: want {\"from\",\"to\": pattern, \"allow\": bool, "
					"\"priority\": int}", i);
		}
		if (json_object_object_get_ex(o, "origin", &g) && json_object_is_type(g, json_type_string))
			origin = json_object_get_string(g);
		scm_clip_rule *r = &out.v[i];
		r->allow = json_object_get_boolean(a);
		r->priority = json_object_get_int64(p);
		r->from = strdup(from);
		r->to = strdup(to);
		r->origin = strdup(origin);
		if (!r->from || !r->to || !r->origin) {
			out.n++;
			scm_clip_rules_done(&out);
			return scm_fail(ret_err, -ENOMEM, "clipboard rules: out of memory");
		}
		/* Merge order is scmd's promise; a list out of it is malformed. */
		if (i > 0 && out.v[i - 1].priority < r->priority) {
			out.n++;
			scm_clip_rules_done(&out);
			return scm_fail(ret_err, SCM_E_INVALID, "clipboard rules: /%zu: out of priority order", i);
		}
	}
	*ret = out;
	return 0;
}

/* why is the decision's reason, not an error (see clipflow.h): a caller's
 * buffer, filled for an allow as for a deny. */
bool scm_clip_decide(const scm_clip_rules *r, const char *from, const char *to, char *why, size_t whysz)
{
	const scm_clip_rule *win = NULL;
	char dummy[1];
	if (!why) {
		why = dummy;
		whysz = sizeof(dummy);
	}
	for (size_t i = 0; r && i < r->n; i++) {
		const scm_clip_rule *c = &r->v[i];
		if (win && c->priority != win->priority)
			break;
		if (!scm_clip_match(c->from, from) || !scm_clip_match(c->to, to))
			continue;
		if (!win) {
			win = c;
			continue;
		}
		if (c->allow != win->allow) {
			snprintf(why, whysz, "denied (fail closed): %s conflicts with %s at equal priority %lld",
				 win->origin, c->origin, (long long)win->priority);
			return false;
		}
	}
	if (!win) {
		snprintf(why, whysz, "no clipboard rule matches %s -> %s (default deny)", from, to);
		return false;
	}
	snprintf(why, whysz, "%s by %s", win->allow ? "allowed" : "denied", win->origin);
	return win->allow;
}
