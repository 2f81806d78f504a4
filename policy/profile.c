/* profile.c: one profile file -> a validated policy_profile.
 *
 * The bytes go through the strict scanner first (syntax with line and
 * column, duplicate keys, UTF-8, depth, number range), then json-c, then
 * the schema below, field by field; every refusal names the file, the line
 * and column when known, and the JSON pointer of the offending value.
 * The "sandbox" section is profile-sandbox.c's, "dbus" dbus.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include <scm-internal/clipflow.h>
#include <scm/macro.h>

#include "internal.h"

#define RULES_MAX 4096
#define METHODS_MAX 256

int prof_err(pctx *c, const char *pointer, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned col = 0, line = profile_line(c->p, pointer, &col);
	if (line)
		return scm_fail(c->ret_err, SCM_E_INVALID, "%s:%u:%u: %s: %s", c->p->file, line, col,
				pointer[0] ? pointer : "/", msg);
	return scm_fail(c->ret_err, SCM_E_INVALID, "%s: %s: %s", c->p->file, pointer[0] ? pointer : "/",
			msg);
}

const char *prof_type(json_object *j)
{
	return j ? json_type_to_name(json_object_get_type(j)) : "null";
}

/* Refuses keys a schema level does not know, so a typo ("acton") is an
 * error rather than a silently ignored field. */
int prof_keys(pctx *c, json_object *o, const char *pointer, const char *const *known)
{
	const char *k = json_unknown_key(o, known);
	if (k) {
		char sub[600];
		snprintf(sub, sizeof(sub), "%.390s/%.200s", pointer, k);
		return prof_err(c, sub, "unknown key \"%.200s\"", k);
	}
	return 0;
}

int prof_string(pctx *c, json_object *o, const char *key, const char *pointer, bool required,
		      const char **ret)
{
	json_object *v;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/%s", pointer, key);
	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			return prof_err(c, pointer, "missing \"%s\"", key);
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return prof_err(c, sub, "expected a string, got %s", prof_type(v));
	*ret = json_object_get_string(v);
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cons_cmp(const void *a, const void *b)
{
	return strcmp(((const pcons *)a)->param, ((const pcons *)b)->param);
}

static int parse_args(pctx *c, prule *r, json_object *o, const char *pointer)
{
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, pointer, "expected an object {\"PARAM\": CONSTRAINT}, got %s", prof_type(o));
	if (!r->allow)
		return prof_err(c, pointer, "a deny rule cannot carry args: a grant can only narrow what "
					"is allowed (put the args on an allow rule)");
	size_t n = (size_t)json_object_object_length(o);
	if (n > 64)
		return prof_err(c, pointer, "more than 64 constrained parameters");
	r->args = calloc(n ? n : 1, sizeof(pcons));
	if (!r->args)
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	json_object_object_foreach(o, k, v)
	{
		char sub[600];
		snprintf(sub, sizeof(sub), "%s/%.200s", pointer, k);
		if (!name_valid(k, SCM_NAME_MAX, NAME_RULE))
			return prof_err(c, sub, "bad parameter name \"%.80s\"", k);
		pcons *pc = &r->args[r->n_args];
		_cleanup_(scm_error_freep) scm_error *why = NULL;
		if (pcons_from_json(v, pc, &why) < 0) /* said with the file, line and column */
			return prof_err(c, sub, "%s", why && why->message ? why->message : "out of memory");
		r->n_args++;
		pc->param = strdup(k);
		if (!pc->param)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	}
	qsort(r->args, r->n_args, sizeof(pcons), cons_cmp);
	return 0;
}

static int parse_rule(pctx *c, prule *r, json_object *o, size_t index)
{
	static const char *const known[] = { "service", "methods", "action", "args", "settings", NULL };
	char ptr[64], sub[128];
	const char *svc, *action;
	json_object *m, *a;
	int res;
	snprintf(ptr, sizeof(ptr), "/services/%zu", index);
	r->index = index;
	r->profile = c->p;
	if (!(r->pointer = strdup(ptr)))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	if (!json_object_is_type(o, json_type_object))
		return prof_err(c, ptr, "expected a rule object, got %s", prof_type(o));
	if ((res = prof_keys(c, o, ptr, known)) || (res = prof_string(c, o, "service", ptr, true, &svc)) ||
	    (res = prof_string(c, o, "action", ptr, true, &action)))
		return res;
	snprintf(sub, sizeof(sub), "%s/service", ptr);
	if (!name_valid(svc, SCM_NAME_MAX, NAME_RULE | NAME_GLOB))
		return prof_err(c, sub, "bad service name or glob \"%.80s\" (letters, digits, _ - . * ?)",
			    svc);
	r->glob = strpbrk(svc, "*?") != NULL;
	if (!(r->service = strdup(svc)))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	snprintf(sub, sizeof(sub), "%s/action", ptr);
	if (strcmp(action, "allow") && strcmp(action, "deny"))
		return prof_err(c, sub, "expected \"allow\" or \"deny\", got \"%.80s\"", action);
	r->allow = strcmp(action, "allow") == 0;
	snprintf(sub, sizeof(sub), "%s/methods", ptr);
	if (!json_object_object_get_ex(o, "methods", &m))
		return prof_err(c, ptr, "missing \"methods\" (a list of names, or \"*\")");
	if (json_object_is_type(m, json_type_string) && strcmp(json_object_get_string(m), "*") == 0) {
		r->all_methods = true;
	} else if (json_object_is_type(m, json_type_array)) {
		size_t n = json_object_array_length(m);
		if (n == 0 || n > METHODS_MAX)
			return prof_err(c, sub, "expected 1 to %d method names", METHODS_MAX);
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(m, i);
			char el[160];
			snprintf(el, sizeof(el), "%s/%zu", sub, i);
			if (!json_object_is_type(e, json_type_string))
				return prof_err(c, el, "expected a method name, got %s", prof_type(e));
			const char *s = json_object_get_string(e);
			if (strcmp(s, "*") == 0)
				return prof_err(c, el, "use \"methods\": \"*\" for every method");
			if (!name_valid(s, SCM_NAME_MAX, NAME_RULE))
				return prof_err(c, el, "bad method name \"%.80s\"", s);
			for (size_t k = 0; k < r->n_methods; k++)
				if (strcmp(r->methods[k], s) == 0)
					return prof_err(c, el, "method \"%s\" is listed twice", s);
			if (strv_add(&r->methods, &r->n_methods, s) < 0)
				return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		}
		qsort(r->methods, r->n_methods, sizeof(char *), str_cmp);
	} else {
		return prof_err(c, sub, "expected an array of method names or \"*\", got %s", prof_type(m));
	}
	snprintf(sub, sizeof(sub), "%s/args", ptr);
	if (json_object_object_get_ex(o, "args", &a) && (res = parse_args(c, r, a, sub)))
		return res;
	if (json_object_object_get_ex(o, "settings", &a)) {
		char at[400];
		const char *key, *why;
		if ((res = rsettings_from_json(a, r, &key, &why)) == -ENOMEM)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		snprintf(at, sizeof(at), "%s/settings%s%.200s", ptr, key ? "/" : "", key ? key : "");
		if (res)
			return prof_err(c, at, "%s", why);
	}
	return 0;
}

/* "clipboard": [{"from": PATTERN, "to": PATTERN, "action": "allow"|"deny"}]:
 * which clipboard flows between desktop apps (and "@viewer") the
 * container takes part in (docs/policy.md, scm-internal/clipflow.h). */
static int parse_clipboard(pctx *c, json_object *a)
{
	static const char *const known[] = { "from", "to", "action", NULL };
	policy_profile *p = c->p;
	int r;
	if (!json_object_is_type(a, json_type_array))
		return prof_err(c, "/clipboard", "expected an array of rules, got %s", prof_type(a));
	size_t n = json_object_array_length(a);
	if (n > SCM_CLIP_RULES_MAX)
		return prof_err(c, "/clipboard", "%zu rules, more than %d", n, SCM_CLIP_RULES_MAX);
	if (!(p->clips = calloc(n ? n : 1, sizeof(pclip))))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(a, i);
		pclip *cl = &p->clips[p->n_clips++];
		const char *from, *to, *action;
		char ptr[64], sub[96];
		snprintf(ptr, sizeof(ptr), "/clipboard/%zu", i);
		cl->index = i;
		cl->profile = p;
		if (!(cl->pointer = strdup(ptr)))
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		if (!json_object_is_type(o, json_type_object))
			return prof_err(c, ptr, "expected a rule object, got %s", prof_type(o));
		if ((r = prof_keys(c, o, ptr, known)) || (r = prof_string(c, o, "from", ptr, true, &from)) ||
		    (r = prof_string(c, o, "to", ptr, true, &to)) ||
		    (r = prof_string(c, o, "action", ptr, true, &action)))
			return r;
		const char *pats[2] = { from, to }, *keys[2] = { "from", "to" };
		for (int k = 0; k < 2; k++) {
			snprintf(sub, sizeof(sub), "%s/%s", ptr, keys[k]);
			if (!scm_clip_pattern_valid(pats[k]))
				return prof_err(c, sub, "bad endpoint name or glob \"%.80s\" (letters, digits, _ - . * ?, "
					    "or \"@viewer\")", pats[k]);
		}
		snprintf(sub, sizeof(sub), "%s/action", ptr);
		if (strcmp(action, "allow") && strcmp(action, "deny"))
			return prof_err(c, sub, "expected \"allow\" or \"deny\", got \"%.80s\"", action);
		cl->allow = strcmp(action, "allow") == 0;
		if (!(cl->from = strdup(from)) || !(cl->to = strdup(to)))
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_root(pctx *c, json_object *root)
{
	static const char *const known[] = { "name", "priority", "description", "services", "sandbox",
					     "clipboard", "dbus", NULL };
	policy_profile *p = c->p;
	const char *name, *desc;
	json_object *v;
	int r;
	if (!json_object_is_type(root, json_type_object))
		return prof_err(c, "", "expected a profile object, got %s", prof_type(root));
	if ((r = prof_keys(c, root, "", known)) || (r = prof_string(c, root, "name", "", true, &name)) ||
	    (r = prof_string(c, root, "description", "", false, &desc)))
		return r;
	if (!name_valid(name, SCM_NAME_MAX, NAME_RULE))
		return prof_err(c, "/name", "bad profile name \"%.80s\" (letters, digits, _ - .)", name);
	/* Profiles are referenced by name and found as NAME.json: a file that
	 * says otherwise would make a reference silently pick another file. */
	const char *base = strrchr(p->file, '/');
	base = base ? base + 1 : p->file;
	size_t bl = strlen(base);
	if (bl > 5 && strcmp(base + bl - 5, ".json") == 0 &&
	    (strlen(name) != bl - 5 || strncmp(base, name, bl - 5) != 0))
		return prof_err(c, "/name", "profile \"%.80s\" must live in %s.json, not %s", name, name, base);
	if (!(p->name = strdup(name)) || (desc && !(p->description = strdup(desc))))
		return scm_fail(c->ret_err, -ENOMEM, "out of memory");
	if (!json_object_object_get_ex(root, "priority", &v))
		return prof_err(c, "", "missing \"priority\" (an integer; higher wins)");
	if (!json_object_is_type(v, json_type_int))
		return prof_err(c, "/priority", "expected an integer, got %s", prof_type(v));
	int64_t prio = json_object_get_int64(v);
	if (prio < -POLICY_PRIORITY_MAX || prio > POLICY_PRIORITY_MAX)
		return prof_err(c, "/priority", "%lld is out of range [-%d, %d]", (long long)prio,
			    POLICY_PRIORITY_MAX, POLICY_PRIORITY_MAX);
	p->priority = (int)prio;
	if (json_object_object_get_ex(root, "services", &v)) {
		if (!json_object_is_type(v, json_type_array))
			return prof_err(c, "/services", "expected an array of rules, got %s", prof_type(v));
		size_t n = json_object_array_length(v);
		if (n > RULES_MAX)
			return prof_err(c, "/services", "%zu rules, more than %d", n, RULES_MAX);
		p->rules = calloc(n ? n : 1, sizeof(prule));
		if (!p->rules)
			return scm_fail(c->ret_err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			p->n_rules++;
			if ((r = parse_rule(c, &p->rules[i], json_object_array_get_idx(v, i), i)))
				return r;
		}
	}
	if (json_object_object_get_ex(root, "sandbox", &v) && (r = parse_sandbox(c, v)))
		return r;
	if (json_object_object_get_ex(root, "clipboard", &v) && (r = parse_clipboard(c, v)))
		return r;
	if (json_object_object_get_ex(root, "dbus", &v) && (r = parse_dbus(c, v)))
		return r;
	return 0;
}

static int setting_cmp(const void *a, const void *b)
{
	return strcmp(((const psetting *)a)->key, ((const psetting *)b)->key);
}

int policy_profile_parse(const char *file, const char *data, size_t len, policy_profile **ret,
			 scm_error **ret_err)
{
	if (!file)
		file = "<input>";
	if (len > POLICY_FILE_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: %zu bytes, more than the %u a profile may have",
				file, len, POLICY_FILE_MAX);
	policy_profile *p = calloc(1, sizeof(*p));
	if (!p || !(p->file = strdup(file))) {
		free(p);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	int r = jscan_check(data, len, POLICY_DEPTH_MAX, file, &p->pos, ret_err);
	if (r != 0) {
		policy_profile_free(p);
		return r;
	}
	json_tokener *tok = json_tokener_new_ex(POLICY_DEPTH_MAX + 1);
	if (!tok) {
		policy_profile_free(p);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *root = json_tokener_parse_ex(tok, data, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		/* the scanner accepted it, so this is json-c disagreeing */
		json_object_put(root);
		policy_profile_free(p);
		return scm_fail(ret_err, SCM_E_INVALID, "%s: syntax error: %s", file,
				json_tokener_error_desc(jerr));
	}
	pctx c = { p, ret_err };
	r = parse_root(&c, root);
	json_object_put(root);
	if (r) {
		policy_profile_free(p);
		return r;
	}
	if (p->n_settings)
		qsort(p->settings, p->n_settings, sizeof(psetting), setting_cmp);
	*ret = p;
	return 0;
}

int policy_profile_load(const char *path, policy_profile **ret, scm_error **ret_err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0)
		return scm_fail(ret_err, -errno, "%s: cannot open: %m", path);
	if (fstat(fd, &st) < 0)
		return scm_fail(ret_err, -errno, "%s: cannot stat: %m", path);
	if (!S_ISREG(st.st_mode))
		return scm_fail(ret_err, SCM_E_INVALID, "%s: not a regular file", path);
	if (st.st_size > (off_t)POLICY_FILE_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: %lld bytes, more than the %u a profile may have",
				path, (long long)st.st_size, POLICY_FILE_MAX);
	/* read one byte more than allowed: the file may grow after fstat */
	_cleanup_free_ char *buf = malloc(POLICY_FILE_MAX + 1);
	size_t n = 0;
	if (!buf)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t k = read(fd, buf + n, POLICY_FILE_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return scm_fail(ret_err, -errno, "%s: cannot read: %m", path);
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > POLICY_FILE_MAX)
			return scm_fail(ret_err, SCM_E_INVALID, "%s: more than the %u bytes a profile may have",
					path, POLICY_FILE_MAX);
	}
	return policy_profile_parse(path, buf, n, ret, ret_err);
}

policy_profile *policy_profile_free(policy_profile *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++) {
		prule *r = &p->rules[i];
		free(r->service);
		strv_free(r->methods);
		for (size_t k = 0; k < r->n_args; k++)
			pcons_done(&r->args[k]);
		free(r->args);
		rsettings_done(r);
		free(r->pointer);
	}
	free(p->rules);
	for (size_t i = 0; i < p->n_settings; i++) {
		free(p->settings[i].key);
		free(p->settings[i].value);
		free(p->settings[i].pointer);
	}
	free(p->settings);
	for (size_t i = 0; i < p->n_clips; i++) {
		free(p->clips[i].from);
		free(p->clips[i].to);
		free(p->clips[i].pointer);
	}
	free(p->clips);
	dbus_rules_free(p);
	jscan_result_clear(&p->pos);
	free(p->name);
	free(p->file);
	free(p->description);
	free(p);
	return NULL;
}

const char *policy_profile_name(const policy_profile *p)
{
	return p->name;
}

int policy_profile_priority(const policy_profile *p)
{
	return p->priority;
}
