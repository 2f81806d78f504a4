/* spec-linux.c: the "linux" part of config.json (namespaces, id mappings,
 * resources, seccomp, masked and read-only paths) and the mapping sanity
 * checks that do not depend on who runs the container. */
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "spec-internal.h"

static const struct {
	const char *name;
	unsigned flag;
} ns_names[] = {
	{"mount", CONTAINER_NS_MOUNT}, {"pid", CONTAINER_NS_PID},
	{"ipc", CONTAINER_NS_IPC},     {"uts", CONTAINER_NS_UTS},
	{"network", CONTAINER_NS_NET}, {"cgroup", CONTAINER_NS_CGROUP},
	{"user", CONTAINER_NS_USER},
};

static int parse_namespaces(json_object *arr, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"type", "path", NULL};
	char p[JPATH_MAX], q[JPATH_MAX];
	int r = jexpect_type(arr, json_type_array, path, err);
	if (r)
		return r;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		_cleanup_free_ char *type = NULL;
		jpath_idx(p, path, i);
		if ((r = jexpect_type(o, json_type_object, p, err)) ||
		    (r = jcheck_keys(o, p, keys, err)) ||
		    (r = jget_string(o, "type", p, true, &type, err)))
			return r;
		unsigned flag = 0;
		for (size_t k = 0; k < ELEMENTSOF(ns_names); k++)
			if (strcmp(ns_names[k].name, type) == 0)
				flag = ns_names[k].flag;
		if (!flag)
			return jfail(err, jpath_key(q, p, "type"), "unknown namespace \"%s\"", type);
		if (s->namespaces & flag)
			return jfail(err, jpath_key(q, p, "type"), "namespace \"%s\" listed twice",
				     type);
		s->namespaces |= flag;
		if (!json_object_object_get_ex(o, "path", &v))
			continue;
		/* A pod's namespaces: joined at start, after checking that the
		 * path is a namespace of this type (launch.c). */
		int j = flag == CONTAINER_NS_NET ? CONTAINER_JOIN_NET
			: flag == CONTAINER_NS_IPC ? CONTAINER_JOIN_IPC
			: flag == CONTAINER_NS_UTS ? CONTAINER_JOIN_UTS : -1;
		if (j < 0)
			return jfail(err, jpath_key(q, p, "path"),
				     "joining an existing %s namespace is not supported (network, ipc and uts can be)",
				     type);
		if ((r = jget_string(o, "path", p, true, &s->ns_join[j], err)))
			return r;
		if (s->ns_join[j][0] != '/')
			return jfail(err, jpath_key(q, p, "path"), "must be an absolute path");
		s->ns_join_idx[j] = i;
	}
	return 0;
}

static int parse_mappings(json_object *arr, const char *path, container_idmap **out, size_t *n_out,
			  scm_error **err)
{
	static const char *const keys[] = {"containerID", "hostID", "size", NULL};
	char p[JPATH_MAX];
	int r = jexpect_type(arr, json_type_array, path, err);
	if (r)
		return r;
	size_t n = json_object_array_length(arr);
	/* The kernel takes at most 340 lines per map. */
	if (n == 0 || n > 340)
		return jfail(err, path, "expected 1 to 340 mappings");
	container_idmap *m = calloc(n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*out = m;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		int64_t c = 0, h = 0, sz = 0;
		jpath_idx(p, path, i);
		if ((r = jexpect_type(o, json_type_object, p, err)) ||
		    (r = jcheck_keys(o, p, keys, err)) ||
		    (r = jget_int(o, "containerID", p, true, 0, UINT32_MAX - 1, &c, err)) ||
		    (r = jget_int(o, "hostID", p, true, 0, UINT32_MAX - 1, &h, err)) ||
		    (r = jget_int(o, "size", p, true, 1, UINT32_MAX, &sz, err)))
			return r;
		if (c + sz > (int64_t)UINT32_MAX || h + sz > (int64_t)UINT32_MAX)
			return jfail_code(err, CONTAINER_E_MAPPING, p, "range overflows 32-bit ids");
		m[i] = (container_idmap){(uint32_t)c, (uint32_t)h, (uint32_t)sz};
		*n_out = i + 1;
	}
	return 0;
}

static int parse_resources(json_object *obj, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"memory", "pids", "cpu", "devices", NULL};
	static const char *const mkeys[] = {"limit", NULL}, *const pkeys[] = {"limit", NULL};
	static const char *const ckeys[] = {"shares", "quota", "period", NULL};
	static const char *const dkeys[] = {"allow", "access", "type", "major", "minor", NULL};
	char p[JPATH_MAX], q[JPATH_MAX];
	json_object *v;
	container_resources *res = &s->resources;
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)))
		return r;
	if (json_object_object_get_ex(obj, "memory", &v)) {
		jpath_key(p, path, "memory");
		if ((r = jexpect_type(v, json_type_object, p, err)) ||
		    (r = jcheck_keys(v, p, mkeys, err)) ||
		    (r = jget_int(v, "limit", p, false, 1 << 20, INT64_MAX, &res->memory_limit, err)))
			return r;
	}
	if (json_object_object_get_ex(obj, "pids", &v)) {
		jpath_key(p, path, "pids");
		if ((r = jexpect_type(v, json_type_object, p, err)) ||
		    (r = jcheck_keys(v, p, pkeys, err)) ||
		    (r = jget_int(v, "limit", p, true, 1, 1 << 22, &res->pids_limit, err)))
			return r;
	}
	if (json_object_object_get_ex(obj, "cpu", &v)) {
		jpath_key(p, path, "cpu");
		if ((r = jexpect_type(v, json_type_object, p, err)) ||
		    (r = jcheck_keys(v, p, ckeys, err)) ||
		    (r = jget_int(v, "shares", p, false, 2, 262144, &res->cpu_shares, err)) ||
		    (r = jget_int(v, "quota", p, false, 1000, INT64_MAX / 2, &res->cpu_quota, err)) ||
		    (r = jget_int(v, "period", p, false, 1000, 1000000, &res->cpu_period, err)))
			return r;
	}
	if (json_object_object_get_ex(obj, "devices", &v)) {
		/* Enforced by nodev mounts, and for rules that allow by a
		 * devices cgroup (devices.c). */
		jpath_key(p, path, "devices");
		if ((r = jexpect_type(v, json_type_array, p, err)))
			return r;
		if (json_object_array_length(v) > CONTAINER_MAX_DEVICE_RULES)
			return jfail(err, p, "at most %d rules", CONTAINER_MAX_DEVICE_RULES);
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *d = json_object_array_get_idx(v, i);
			container_device_rule *rule = &s->devices[i];
			_cleanup_free_ char *access = NULL, *type = NULL;
			char e[JPATH_MAX];
			*rule = (container_device_rule){.type = 'a', .major = -1, .minor = -1, .access = "rwm"};
			jpath_idx(q, p, i);
			if ((r = jexpect_type(d, json_type_object, q, err)) ||
			    (r = jcheck_keys(d, q, dkeys, err)) ||
			    (r = jget_bool(d, "allow", q, &rule->allow, err)) ||
			    (r = jget_string(d, "access", q, false, &access, err)) ||
			    (r = jget_string(d, "type", q, false, &type, err)) ||
			    (r = jget_int(d, "major", q, false, -1, INT32_MAX, &rule->major, err)) ||
			    (r = jget_int(d, "minor", q, false, -1, INT32_MAX, &rule->minor, err)))
				return r;
			if (type) {
				if (strlen(type) != 1 || !strchr("acb", type[0]))
					return jfail(err, jpath_key(e, q, "type"), "expected \"a\", \"c\" or \"b\"");
				rule->type = type[0];
			}
			if (access) {
				bool ok = access[0] && strlen(access) <= 3;
				for (const char *c = access; ok && *c; c++)
					ok = strchr("rwm", *c) && !strchr(c + 1, *c);
				if (!ok)
					return jfail(err, jpath_key(e, q, "access"),
						     "expected letters of \"rwm\", each once");
				snprintf(rule->access, sizeof(rule->access), "%s", access);
			}
			s->n_devices = i + 1;
		}
	}
	return 0;
}

static int parse_action(const char *a, int *ret)
{
	static const struct {
		const char *name;
		int action;
	} actions[] = {
		{"SCMP_ACT_ALLOW", CONTAINER_SC_ALLOW}, {"SCMP_ACT_ERRNO", CONTAINER_SC_ERRNO},
		{"SCMP_ACT_KILL", CONTAINER_SC_KILL}, {"SCMP_ACT_KILL_PROCESS", CONTAINER_SC_KILL},
		{"SCMP_ACT_KILL_THREAD", CONTAINER_SC_KILL}, {"SCMP_ACT_TRAP", CONTAINER_SC_TRAP},
		{"SCMP_ACT_LOG", CONTAINER_SC_LOG},
	};
	for (size_t i = 0; i < ELEMENTSOF(actions); i++)
		if (strcmp(actions[i].name, a) == 0) {
			*ret = actions[i].action;
			return 0;
		}
	return -EINVAL;
}

static int parse_seccomp(json_object *obj, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"defaultAction", "defaultErrnoRet", "architectures",
					   "syscalls", NULL};
	static const char *const rkeys[] = {"names", "action", "errnoRet", NULL};
	char p[JPATH_MAX], q[JPATH_MAX], e[JPATH_MAX];
	json_object *v;
	_cleanup_free_ char *def = NULL;
	_cleanup_(strv_freep) char **arches = NULL;
	int64_t x = EPERM;
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)) ||
	    (r = jget_string(obj, "defaultAction", path, true, &def, err)) ||
	    (r = jget_int(obj, "defaultErrnoRet", path, false, 1, 4095, &x, err)) ||
	    (r = jget_strv(obj, "architectures", path, &arches, err)))
		return r;
	s->has_seccomp = true;
	s->seccomp_default_errno = (int)x;
	if (parse_action(def, &s->seccomp_default) < 0)
		return jfail(err, jpath_key(p, path, "defaultAction"), "unknown action \"%s\"", def);
	for (size_t i = 0; arches && arches[i]; i++)
		if (strncmp(arches[i], "SCMP_ARCH_", 10) != 0 ||
		    seccomp_arch_resolve_name(arches[i] + 10) == 0) {
			/* libseccomp spells them in lower case. */
			char low[32] = {0};
			for (size_t k = 0; arches[i][k] && k < sizeof(low) - 1; k++)
				low[k] = (char)tolower((unsigned char)arches[i][k]);
			if (strncmp(low, "scmp_arch_", 10) != 0 || seccomp_arch_resolve_name(low + 10) == 0)
				return jfail(err, jpath_idx(q, jpath_key(p, path, "architectures"), i),
					     "unknown architecture \"%s\"", arches[i]);
		}
	if (!json_object_object_get_ex(obj, "syscalls", &v))
		return 0;
	jpath_key(p, path, "syscalls");
	if ((r = jexpect_type(v, json_type_array, p, err)))
		return r;
	size_t total = 0, n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(v, i), *names;
		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "names", &names) &&
		    json_object_is_type(names, json_type_array))
			total += json_object_array_length(names);
	}
	if (total > 4096)
		return jfail(err, p, "too many syscall rules");
	s->seccomp_rules = calloc(total ? total : 1, sizeof(container_sc_rule));
	if (!s->seccomp_rules)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(v, i), *names;
		_cleanup_free_ char *action = NULL;
		int act;
		x = EPERM;
		jpath_idx(q, p, i);
		if ((r = jexpect_type(o, json_type_object, q, err)) ||
		    (r = jcheck_keys(o, q, rkeys, err)) ||
		    (r = jget_string(o, "action", q, true, &action, err)) ||
		    (r = jget_int(o, "errnoRet", q, false, 1, 4095, &x, err)))
			return r;
		if (parse_action(action, &act) < 0)
			return jfail(err, jpath_key(e, q, "action"), "unknown action \"%s\"", action);
		if (!json_object_object_get_ex(o, "names", &names))
			return jfail(err, jpath_key(e, q, "names"), "required field is missing");
		jpath_key(e, q, "names");
		if ((r = jexpect_type(names, json_type_array, e, err)))
			return r;
		for (size_t k = 0; k < json_object_array_length(names); k++) {
			char f[JPATH_MAX];
			char *name = NULL;
			jpath_idx(f, e, k);
			if ((r = jstring_value(json_object_array_get_idx(names, k), f, &name, err)))
				return r;
			s->seccomp_rules[s->n_seccomp_rules++] =
				(container_sc_rule){name, act, (int)x};
			if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
				return jfail(err, f, "unknown system call \"%s\"", name);
		}
	}
	return 0;
}

static int parse_paths(json_object *obj, const char *key, const char *path, char ***out, scm_error **err)
{
	char p[JPATH_MAX], q[JPATH_MAX];
	int r = jget_strv(obj, key, path, out, err);
	if (r)
		return r;
	for (size_t i = 0; *out && (*out)[i]; i++) {
		const char *s = (*out)[i];
		if (s[0] != '/' || strstr(s, "/..") || strlen(s) >= 4096)
			return jfail(err, jpath_idx(q, jpath_key(p, path, key), i),
				     "\"%s\" is not a clean absolute path", s);
	}
	return 0;
}

int spec_parse_linux(json_object *obj, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"namespaces", "uidMappings", "gidMappings", "resources",
					   "seccomp", "maskedPaths", "readonlyPaths", NULL};
	char p[JPATH_MAX];
	json_object *v;
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)))
		return r;
	if (json_object_object_get_ex(obj, "namespaces", &v) &&
	    (r = parse_namespaces(v, jpath_key(p, path, "namespaces"), s, err)))
		return r;
	if (json_object_object_get_ex(obj, "uidMappings", &v) &&
	    (r = parse_mappings(v, jpath_key(p, path, "uidMappings"), &s->uid_mappings,
				&s->n_uid_mappings, err)))
		return r;
	if (json_object_object_get_ex(obj, "gidMappings", &v) &&
	    (r = parse_mappings(v, jpath_key(p, path, "gidMappings"), &s->gid_mappings,
				&s->n_gid_mappings, err)))
		return r;
	if (json_object_object_get_ex(obj, "resources", &v) &&
	    (r = parse_resources(v, jpath_key(p, path, "resources"), s, err)))
		return r;
	if (json_object_object_get_ex(obj, "seccomp", &v) &&
	    (r = parse_seccomp(v, jpath_key(p, path, "seccomp"), s, err)))
		return r;
	if ((r = parse_paths(obj, "maskedPaths", path, &s->masked_paths, err)) ||
	    (r = parse_paths(obj, "readonlyPaths", path, &s->readonly_paths, err)))
		return r;
	return 0;
}

static bool id_mapped(const container_idmap *m, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= m[i].container_id && id - m[i].container_id < m[i].size)
			return true;
	return false;
}

static int check_overlaps(const container_idmap *m, size_t n, const char *path, scm_error **err)
{
	char p[JPATH_MAX];
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < i; k++) {
			bool c = m[i].container_id < m[k].container_id + m[k].size &&
				 m[k].container_id < m[i].container_id + m[i].size;
			bool h = m[i].host_id < m[k].host_id + m[k].size &&
				 m[k].host_id < m[i].host_id + m[i].size;
			if (c || h)
				return jfail_code(err, CONTAINER_E_MAPPING, jpath_idx(p, path, i),
						  "overlaps mapping %zu", k);
		}
	return 0;
}

/* Mappings that can never work, whoever runs the container. Which ranges
 * the caller may map is checked at start (container_start). */
int spec_check_mappings(const container_spec *s, scm_error **err)
{
	bool userns = s->namespaces & CONTAINER_NS_USER;
	int r;
	if (s->hostname && s->ns_join[CONTAINER_JOIN_UTS])
		return jfail(err, "/hostname", "needs the container's own uts namespace, but /linux/namespaces/%zu "
			     "joins %s", s->ns_join_idx[CONTAINER_JOIN_UTS], s->ns_join[CONTAINER_JOIN_UTS]);
	if (!userns && (s->n_uid_mappings || s->n_gid_mappings))
		return jfail_code(err, CONTAINER_E_MAPPING,
				  s->n_uid_mappings ? "/linux/uidMappings" : "/linux/gidMappings",
				  "mappings need a \"user\" namespace in /linux/namespaces");
	if (userns && (!s->n_uid_mappings) != (!s->n_gid_mappings))
		return jfail_code(err, CONTAINER_E_MAPPING,
				  s->n_uid_mappings ? "/linux/gidMappings" : "/linux/uidMappings",
				  "uid and gid mappings go together");
	if ((r = check_overlaps(s->uid_mappings, s->n_uid_mappings, "/linux/uidMappings", err)) ||
	    (r = check_overlaps(s->gid_mappings, s->n_gid_mappings, "/linux/gidMappings", err)))
		return r;
	if (s->n_uid_mappings && !id_mapped(s->uid_mappings, s->n_uid_mappings, s->uid))
		return jfail_code(err, CONTAINER_E_MAPPING, "/process/user/uid",
				  "%u is not mapped by /linux/uidMappings", (unsigned)s->uid);
	if (s->n_gid_mappings && !id_mapped(s->gid_mappings, s->n_gid_mappings, s->gid))
		return jfail_code(err, CONTAINER_E_MAPPING, "/process/user/gid",
				  "%u is not mapped by /linux/gidMappings", (unsigned)s->gid);
	return 0;
}
