/* spec-parse.c: OCI runtime-spec config.json -> container_spec, the
 * process, root, mounts, hostname and annotations parts (spec-linux.c does
 * "linux"). The accepted subset is in docs/containers.md; anything else is
 * refused with the JSON pointer of the field, because a runtime that
 * silently ignores a security setting is worse than one that refuses it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "spec-internal.h"
#include "scm-internal/error.h"

static const char *const rlimit_names[] = {
	[RLIMIT_CPU] = "RLIMIT_CPU", [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
	[RLIMIT_DATA] = "RLIMIT_DATA", [RLIMIT_STACK] = "RLIMIT_STACK",
	[RLIMIT_CORE] = "RLIMIT_CORE", [RLIMIT_RSS] = "RLIMIT_RSS",
	[RLIMIT_NPROC] = "RLIMIT_NPROC", [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
	[RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK", [RLIMIT_AS] = "RLIMIT_AS",
	[RLIMIT_LOCKS] = "RLIMIT_LOCKS", [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
	[RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
	[RLIMIT_RTPRIO] = "RLIMIT_RTPRIO", [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

/* An absolute path without "." or ".." components: destinations are joined
 * onto the new root, and ".." would walk out of it. */
static int check_abs_path(const char *s, const char *path, scm_error **err)
{
	if (s[0] != '/')
		return jfail(err, path, "\"%s\" is not an absolute path", s);
	for (const char *c = s; *c;) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return jfail(err, path, "\"%s\" has a \".\" or \"..\" component", s);
		c += n;
	}
	if (strlen(s) >= 4096)
		return jfail(err, path, "path too long");
	return 0;
}

static int parse_caps(json_object *obj, const char *path, container_caps *caps, scm_error **err)
{
	static const char *const keys[] = {"bounding", "effective", "permitted", "inheritable",
					   "ambient", NULL};
	uint64_t *sets[] = {&caps->bounding, &caps->effective, &caps->permitted,
			    &caps->inheritable, &caps->ambient};
	char p[JPATH_MAX];
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)))
		return r;
	for (size_t k = 0; keys[k]; k++) {
		_cleanup_(strv_freep) char **names = NULL;
		if ((r = jget_strv(obj, keys[k], path, &names, err)))
			return r;
		*sets[k] = 0;
		for (size_t i = 0; names && names[i]; i++) {
			char q[JPATH_MAX];
			int cap = cap_number_from_name(names[i]);
			if (cap < 0)
				return jfail(err, jpath_idx(q, jpath_key(p, path, keys[k]), i),
					     "unknown capability \"%s\"", names[i]);
			*sets[k] |= 1ull << cap;
		}
	}
	return 0;
}

static int parse_rlimits(json_object *arr, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"type", "hard", "soft", NULL};
	char p[JPATH_MAX];
	int r = jexpect_type(arr, json_type_array, path, err);
	if (r)
		return r;
	size_t n = json_object_array_length(arr);
	s->rlimits = calloc(n ? n : 1, sizeof(*s->rlimits));
	if (!s->rlimits)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		_cleanup_free_ char *type = NULL;
		int64_t hard = 0, soft = 0;
		jpath_idx(p, path, i);
		if ((r = jexpect_type(o, json_type_object, p, err)) ||
		    (r = jcheck_keys(o, p, keys, err)) ||
		    (r = jget_string(o, "type", p, true, &type, err)) ||
		    (r = jget_int(o, "hard", p, true, 0, INT64_MAX, &hard, err)) ||
		    (r = jget_int(o, "soft", p, true, 0, INT64_MAX, &soft, err)))
			return r;
		int res = -1;
		for (size_t k = 0; k < ELEMENTSOF(rlimit_names); k++)
			if (rlimit_names[k] && strcmp(rlimit_names[k], type) == 0)
				res = (int)k;
		char q[JPATH_MAX];
		if (res < 0)
			return jfail(err, jpath_key(q, p, "type"), "unknown rlimit \"%s\"", type);
		if (soft > hard)
			return jfail(err, jpath_key(q, p, "soft"), "soft limit above the hard limit");
		s->rlimits[s->n_rlimits++] = (container_rlimit){res, (uint64_t)soft, (uint64_t)hard};
	}
	return 0;
}

static int parse_process(json_object *obj, const char *path, container_spec *s, scm_error **err)
{
	static const char *const keys[] = {"terminal", "user", "args", "env", "cwd",
					   "capabilities", "rlimits", "noNewPrivileges", NULL};
	static const char *const ukeys[] = {"uid", "gid", "additionalGids", NULL};
	char p[JPATH_MAX], q[JPATH_MAX];
	json_object *v;
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)) ||
	    (r = jget_bool(obj, "terminal", path, &s->terminal, err)) ||
	    (r = jget_bool(obj, "noNewPrivileges", path, &s->no_new_privileges, err)))
		return r;

	if (!json_object_object_get_ex(obj, "args", &v))
		return jfail(err, jpath_key(p, path, "args"), "required field is missing");
	if ((r = jget_strv(obj, "args", path, &s->args, err)))
		return r;
	if (!s->args[0])
		return jfail(err, jpath_key(p, path, "args"), "must not be empty");
	if (!s->args[0][0])
		return jfail(err, jpath_idx(q, jpath_key(p, path, "args"), 0), "must not be empty");

	if ((r = jget_strv(obj, "env", path, &s->env, err)))
		return r;
	for (size_t i = 0; s->env && s->env[i]; i++)
		if (!strchr(s->env[i], '=') || s->env[i][0] == '=')
			return jfail(err, jpath_idx(q, jpath_key(p, path, "env"), i),
				     "expected NAME=VALUE");

	if ((r = jget_string(obj, "cwd", path, false, &s->cwd, err)))
		return r;
	if (s->cwd && (r = check_abs_path(s->cwd, jpath_key(p, path, "cwd"), err)))
		return r;

	if (json_object_object_get_ex(obj, "user", &v)) {
		int64_t uid = 0, gid = 0;
		jpath_key(p, path, "user");
		if ((r = jexpect_type(v, json_type_object, p, err)) ||
		    (r = jcheck_keys(v, p, ukeys, err)) ||
		    (r = jget_int(v, "uid", p, true, 0, UINT32_MAX - 1, &uid, err)) ||
		    (r = jget_int(v, "gid", p, true, 0, UINT32_MAX - 1, &gid, err)))
			return r;
		s->uid = (uid_t)uid;
		s->gid = (gid_t)gid;
		json_object *g;
		if (json_object_object_get_ex(v, "additionalGids", &g)) {
			jpath_key(q, p, "additionalGids");
			if ((r = jexpect_type(g, json_type_array, q, err)))
				return r;
			size_t n = json_object_array_length(g);
			s->additional_gids = calloc(n ? n : 1, sizeof(gid_t));
			if (!s->additional_gids)
				return -ENOMEM;
			for (size_t i = 0; i < n; i++) {
				char e[JPATH_MAX];
				json_object *x = json_object_array_get_idx(g, i);
				jpath_idx(e, q, i);
				if ((r = jexpect_type(x, json_type_int, e, err)))
					return r;
				int64_t id = json_object_get_int64(x);
				if (id < 0 || id > (int64_t)UINT32_MAX - 1)
					return jfail(err, e, "out of range");
				s->additional_gids[s->n_additional_gids++] = (gid_t)id;
			}
		}
	}
	if (json_object_object_get_ex(obj, "capabilities", &v) &&
	    (r = parse_caps(v, jpath_key(p, path, "capabilities"), &s->caps, err)))
		return r;
	if (json_object_object_get_ex(obj, "rlimits", &v) &&
	    (r = parse_rlimits(v, jpath_key(p, path, "rlimits"), s, err)))
		return r;
	return 0;
}

/* Mount options: flags for mount(2), or data the filesystem parses. */
static const struct {
	const char *name;
	unsigned long set, clear;
} mount_flags[] = {
	{"ro", MS_RDONLY, 0}, {"rw", 0, MS_RDONLY}, {"nosuid", MS_NOSUID, 0},
	{"suid", 0, MS_NOSUID}, {"nodev", MS_NODEV, 0}, {"dev", 0, MS_NODEV},
	{"noexec", MS_NOEXEC, 0}, {"exec", 0, MS_NOEXEC}, {"relatime", MS_RELATIME, 0},
	{"norelatime", 0, MS_RELATIME}, {"strictatime", MS_STRICTATIME, 0},
	{"noatime", MS_NOATIME, 0}, {"nodiratime", MS_NODIRATIME, 0},
	{"bind", MS_BIND, 0}, {"rbind", MS_BIND | MS_REC, 0},
	/* Propagation: every container mount is private anyway. */
	{"private", 0, 0}, {"rprivate", 0, 0}, {"slave", 0, 0}, {"rslave", 0, 0},
};
static const char *const data_options[] = {"mode=", "size=", "nr_inodes=", "newinstance",
					   "ptmxmode=", "gid=", "uid=", NULL};
static const char *const mount_types[] = {"bind", "proc", "tmpfs", "devpts", "mqueue",
					  "sysfs", "cgroup", "cgroup2", NULL};

static int parse_mount_options(char **opts, const char *path, container_mount *m, scm_error **err)
{
	char p[JPATH_MAX];
	size_t datalen = 0;
	for (size_t i = 0; opts && opts[i]; i++) {
		const char *o = opts[i];
		bool known = false;
		for (size_t k = 0; k < ELEMENTSOF(mount_flags); k++)
			if (strcmp(o, mount_flags[k].name) == 0) {
				m->flags = (m->flags | mount_flags[k].set) & ~mount_flags[k].clear;
				known = true;
			}
		for (size_t k = 0; !known && data_options[k]; k++) {
			size_t n = strlen(data_options[k]);
			if (strncmp(o, data_options[k], n) != 0 || (data_options[k][n - 1] != '=' && o[n]))
				continue;
			/* Values are plain words: no ',' smuggling more options. */
			if (strchr(o, ',') || strlen(o) > 64)
				return jfail(err, jpath_idx(p, path, i), "bad value in \"%s\"", o);
			char *d = realloc(m->data, datalen + strlen(o) + 2);
			if (!d)
				return -ENOMEM;
			m->data = d;
			datalen += (size_t)sprintf(d + datalen, "%s%s", datalen ? "," : "", o);
			known = true;
		}
		if (!known)
			return jfail(err, jpath_idx(p, path, i), "unsupported mount option \"%s\"", o);
	}
	m->readonly = m->flags & MS_RDONLY;
	m->recursive = (m->flags & MS_REC) != 0;
	return 0;
}

static int parse_mounts(json_object *arr, const char *path, const char *bundle, container_spec *s,
			scm_error **err)
{
	static const char *const keys[] = {"destination", "type", "source", "options", NULL};
	char p[JPATH_MAX], q[JPATH_MAX];
	int r = jexpect_type(arr, json_type_array, path, err);
	if (r)
		return r;
	size_t n = json_object_array_length(arr);
	if (n > 256)
		return jfail(err, path, "too many mounts (at most 256)");
	s->mounts = calloc(n ? n : 1, sizeof(container_mount));
	if (!s->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		container_mount *m = &s->mounts[s->n_mounts++];
		_cleanup_(strv_freep) char **opts = NULL;
		jpath_idx(p, path, i);
		if ((r = jexpect_type(o, json_type_object, p, err)) ||
		    (r = jcheck_keys(o, p, keys, err)) ||
		    (r = jget_string(o, "destination", p, true, &m->destination, err)) ||
		    (r = check_abs_path(m->destination, jpath_key(q, p, "destination"), err)) ||
		    (r = jget_string(o, "type", p, false, &m->type, err)) ||
		    (r = jget_string(o, "source", p, false, &m->source, err)) ||
		    (r = jget_strv(o, "options", p, &opts, err)) ||
		    (r = parse_mount_options(opts, jpath_key(q, p, "options"), m, err)))
			return r;
		if (!m->type || strcmp(m->type, "none") == 0 || (m->flags & MS_BIND)) {
			free(m->type);
			if (!(m->type = strdup("bind")))
				return -ENOMEM;
		}
		bool ok = false;
		for (const char *const *t = mount_types; *t; t++)
			ok |= strcmp(*t, m->type) == 0;
		if (!ok)
			return jfail(err, jpath_key(q, p, "type"), "unsupported mount type \"%s\"",
				     m->type);
		if (strcmp(m->type, "bind") == 0) {
			m->flags |= MS_BIND;
			if (!m->source || !m->source[0])
				return jfail(err, jpath_key(q, p, "source"), "a bind mount needs a source");
			if (m->source[0] != '/') {
				/* OCI: relative to the bundle. */
				char *abs = NULL;
				if (asprintf(&abs, "%s/%s", bundle ? bundle : ".", m->source) < 0)
					return -ENOMEM;
				free(m->source);
				m->source = abs;
			}
		} else if (m->flags & MS_BIND)
			return jfail(err, jpath_key(q, p, "options"), "bind option on a %s mount",
				     m->type);
	}
	return 0;
}

/* "a, b,c" -> {"a","b","c"}; empty items are an error. */
static int parse_comma_list(json_object *v, const char *path, char ***out, scm_error **err)
{
	_cleanup_free_ char *s = NULL;
	int r = jstring_value(v, path, &s, err);
	if (r)
		return r;
	size_t n = 1;
	for (char *c = s; *c; c++)
		n += *c == ',';
	_cleanup_(strv_freep) char **vec = calloc(n + 1, sizeof(char *));
	if (!vec)
		return -ENOMEM;
	size_t k = 0;
	if (!*s) {
		*out = TAKE_PTR(vec);
		return 0;
	}
	char *c = s;
	for (;;) {
		char *end = strchr(c, ',');
		if (end)
			*end = 0;
		while (*c == ' ')
			c++;
		size_t len = strlen(c);
		while (len && c[len - 1] == ' ')
			c[--len] = 0;
		if (!len)
			return jfail(err, path, "empty item in the list");
		for (char *x = c; *x; x++)
			if (!(isalnum((unsigned char)*x) || strchr("._-:@", *x)))
				return jfail(err, path, "bad character in \"%s\"", c);
		if (!(vec[k++] = strdup(c)))
			return -ENOMEM;
		if (!end)
			break;
		c = end + 1;
	}
	*out = TAKE_PTR(vec);
	return 0;
}

static int parse_annotations(json_object *obj, const char *path, container_spec *s, scm_error **err)
{
	char p[JPATH_MAX];
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r)
		return r;
	json_object_object_foreach(obj, key, val) {
		jpath_key(p, path, key);
		if (strcmp(key, "org.scm.profiles") == 0)
			r = parse_comma_list(val, p, &s->profiles, err);
		else if (strcmp(key, "org.scm.provides") == 0)
			r = parse_comma_list(val, p, &s->provides, err);
		else if (strncmp(key, "org.scm.", 8) == 0)
			r = jfail(err, p, "unknown scm annotation");
		else
			r = jexpect_type(val, json_type_string, p, err);
		if (r)
			return r;
	}
	return 0;
}

static int parse_root(json_object *obj, const char *path, const char *bundle, container_spec *s,
		      scm_error **err)
{
	static const char *const keys[] = {"path", "readonly", NULL};
	char p[JPATH_MAX];
	int r = jexpect_type(obj, json_type_object, path, err);
	if (r || (r = jcheck_keys(obj, path, keys, err)) ||
	    (r = jget_string(obj, "path", path, true, &s->root_path, err)) ||
	    (r = jget_bool(obj, "readonly", path, &s->root_readonly, err)))
		return r;
	jpath_key(p, path, "path");
	if (!s->root_path[0])
		return jfail(err, p, "must not be empty");
	if (s->root_path[0] != '/') {
		char *abs = NULL;
		if (asprintf(&abs, "%s/%s", bundle ? bundle : ".", s->root_path) < 0)
			return -ENOMEM;
		free(s->root_path);
		s->root_path = abs;
	}
	if (bundle) {
		struct stat st;
		if (stat(s->root_path, &st) < 0)
			return jfail_code(err, CONTAINER_E_ROOTFS, p, "%s: %m", s->root_path);
		if (!S_ISDIR(st.st_mode))
			return jfail_code(err, CONTAINER_E_ROOTFS, p, "%s is not a directory",
					  s->root_path);
	}
	return 0;
}

int container_spec_parse(const char *json, size_t len, const char *bundle, container_spec **ret,
			 scm_error **ret_err)
{
	static const char *const keys[] = {"ociVersion", "process", "root", "hostname",
					   "mounts", "linux", "annotations", NULL};
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	_cleanup_(container_spec_freep) container_spec *s = calloc(1, sizeof(*s));
	json_object *v;
	int r;
	if (!s)
		return -ENOMEM;
	s->resources = (container_resources){-1, -1, -1, -1, -1, 0};
	s->cwd = strdup("/");
	if (!s->cwd)
		return -ENOMEM;

	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	json_object *root = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t off = tok->char_offset;
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success || off != len) {
		json_object_put(root);
		r = jfail(&err, "", "invalid JSON near offset %zu: %s", off,
			  jerr != json_tokener_success ? json_tokener_error_desc(jerr)
						       : "trailing data");
		goto fail;
	}
	if ((r = jexpect_type(root, json_type_object, "", &err)) ||
	    (r = jcheck_keys(root, "", keys, &err)))
		goto fail_put;
	{
		_cleanup_free_ char *ver = NULL;
		if ((r = jget_string(root, "ociVersion", "", false, &ver, &err)))
			goto fail_put;
		if (ver && strncmp(ver, "1.", 2) != 0) {
			r = jfail(&err, "/ociVersion", "unsupported version \"%s\"", ver);
			goto fail_put;
		}
	}
	if (!json_object_object_get_ex(root, "process", &v)) {
		r = jfail(&err, "/process", "required field is missing");
		goto fail_put;
	}
	if ((r = parse_process(v, "/process", s, &err)))
		goto fail_put;
	if (!json_object_object_get_ex(root, "root", &v)) {
		r = jfail_code(&err, CONTAINER_E_ROOTFS, "/root", "required field is missing");
		goto fail_put;
	}
	if ((r = parse_root(v, "/root", bundle, s, &err)) ||
	    (r = jget_string(root, "hostname", "", false, &s->hostname, &err)))
		goto fail_put;
	if (s->hostname && (strlen(s->hostname) > 64 || strchr(s->hostname, '/'))) {
		r = jfail(&err, "/hostname", "not a valid host name");
		goto fail_put;
	}
	if (json_object_object_get_ex(root, "mounts", &v) &&
	    (r = parse_mounts(v, "/mounts", bundle, s, &err)))
		goto fail_put;
	if (json_object_object_get_ex(root, "linux", &v) &&
	    (r = spec_parse_linux(v, "/linux", s, &err)))
		goto fail_put;
	if (json_object_object_get_ex(root, "annotations", &v) &&
	    (r = parse_annotations(v, "/annotations", s, &err)))
		goto fail_put;
	if ((r = spec_check_mappings(s, &err)))
		goto fail_put;
	if (!s->profiles && !(s->profiles = calloc(1, sizeof(char *))))
		r = -ENOMEM;
	if (!r && !s->provides && !(s->provides = calloc(1, sizeof(char *))))
		r = -ENOMEM;
	json_object_put(root);
	if (r)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
fail_put:
	json_object_put(root);
fail:
	if (r < 0)
		ctr_fail(&err, r, "config.json: %s", strerror(-r));
	scm_error_push(ret_err, TAKE_PTR(err));
	return r;
}
