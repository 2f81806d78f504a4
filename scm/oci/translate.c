/* translate.c: an engine's config.json to the subset scm's runtime takes.
 *
 * Engines write complete runtime specs for runc: a seccomp profile with
 * argument filters, cgroup paths of their own, sysctls, LSM labels, 11
 * capabilities. scm decides those itself (its seccomp filter, cgroups
 * under scmd's instance, the profiles' sandbox), so they are dropped here,
 * each by name in the table below; what cannot be honoured without giving
 * up isolation (hooks run on the host, joining a pid, mount, user or
 * cgroup namespace by path, device nodes) is refused with the JSON pointer, and anything else unknown is
 * left for scm's strict parser to refuse. The engine's bind mounts become
 * the admin binds of container.run: the engine is root on scmd's control
 * socket, the same as `scmctl container run --bind`. */
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "oci.h"
#include "scmutil.h"

/* What scm decides itself: dropped from the engine's spec. */
static const char *const drop_top[] = {"domainname", NULL};
static const char *const drop_process[] = {"apparmorProfile", "selinuxLabel", "oomScoreAdj", "consoleSize",
					   "ioPriority", "scheduler", "execCPUAffinity", "commandLine", NULL};
static const char *const drop_user[] = {"umask", "username", NULL};
static const char *const drop_linux[] = {"seccomp", "sysctl", "cgroupsPath", "mountLabel", "rootfsPropagation",
					 "intelRdt", "personality", "timeOffsets", NULL};
static const char *const drop_resources[] = {"blockIO", "hugepageLimits", "network", "rdma", "unified", NULL};
static const char *const drop_memory[] = {"reservation", "swap", "kernel", "kernelTCP", "swappiness",
					  "disableOOMKiller", "useHierarchy", "checkBeforeUpdate", NULL};
static const char *const drop_cpu[] = {"cpus", "mems", "realtimeRuntime", "realtimePeriod", "idle", "burst", NULL};
/* Mount options that mean something to an engine only. */
static const char *const drop_mount_opts[] = {"tmpcopyup", "notmpcopyup", "copy-symlink", "z", "Z", "U", NULL};

static void drop_keys(json_object *o, const char *const *keys)
{
	for (; o && json_object_is_type(o, json_type_object) && *keys; keys++)
		json_object_object_del(o, *keys);
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static int bad(scm_error **ret_err, const char *ptr, const char *why)
{
	return scm_fail(ret_err, SCM_E_INVALID, "config.json %s: %s", ptr, why);
}

/* A pod's network, ipc and uts namespaces are joined by path (scm's
 * runtime checks each is a namespace of its type); the rest are scm's. */
static int fix_namespaces(json_object *lin, scm_error **ret_err)
{
	json_object *ns = get(lin, "namespaces");
	if (!ns || !json_object_is_type(ns, json_type_array))
		return 0; /* scm's parser says what is wrong with it */
	for (size_t i = 0; i < json_object_array_length(ns); i++) {
		json_object *n = json_object_array_get_idx(ns, i), *p = get(n, "path");
		const char *type = json_object_get_string(get(n, "type"));
		if (p && json_object_get_string_len(p) == 0) {
			json_object_object_del(n, "path");
			continue;
		}
		if (!p || (type && (strcmp(type, "network") == 0 || strcmp(type, "ipc") == 0 ||
				    strcmp(type, "uts") == 0)))
			continue;
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/linux/namespaces/%zu/path", i);
		char why[256];
		snprintf(why, sizeof(why),
			 "joining an existing %s namespace is not supported: scm makes it (network, ipc and uts "
			 "can be joined, as a pod's)", type ? type : "?");
		return bad(ret_err, ptr, why);
	}
	return 0;
}

/* containerd's and CRI-O's default device rules allow the nodes every
 * container gets (null, zero, full, random, urandom, tty, console, ptmx,
 * the ptys), /dev/net/tun, and mknod of anything. scm gives those nodes
 * itself (its own rules follow the spec's), gives no tun, and a container
 * in scm's user namespace cannot mknod: such rules are dropped, so only an
 * engine's rule that asks for more (a --device-cgroup-rule) stays, for the
 * sandbox to decide. */
static bool default_device_rule(json_object *d)
{
	json_object *allow = get(d, "allow"), *maj = get(d, "major"), *min = get(d, "minor");
	const char *type = json_object_get_string(get(d, "type")), *acc = json_object_get_string(get(d, "access"));
	if (!allow || !json_object_get_boolean(allow))
		return false;
	if (acc && strcmp(acc, "m") == 0)
		return true;
	if (!type || strcmp(type, "c") != 0 || !maj || !json_object_is_type(maj, json_type_int))
		return false;
	int64_t M = json_object_get_int64(maj), m = min && json_object_is_type(min, json_type_int)
							? json_object_get_int64(min) : -1;
	static const int64_t nodes[][2] = { { 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 },
					    { 5, 0 }, { 5, 1 }, { 5, 2 }, { 10, 200 } };
	if (M == 136 && (!min || m >= 0))
		return true;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		if (M == nodes[i][0] && m == nodes[i][1])
			return true;
	return false;
}

static void drop_default_device_rules(json_object *res)
{
	json_object *devs = get(res, "devices");
	if (!devs || !json_object_is_type(devs, json_type_array))
		return;
	json_object *keep = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		json_object *d = json_object_array_get_idx(devs, i);
		if (!json_object_is_type(d, json_type_object) || !default_device_rule(d))
			json_object_array_add(keep, json_object_get(d));
	}
	json_object_object_add(res, "devices", keep);
}

static bool has_opt(json_object *opts, const char *w)
{
	for (size_t i = 0; opts && i < json_object_array_length(opts); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(opts, i)) ?: "", w) == 0)
			return true;
	return false;
}

/* Bind mounts move to binds; engine-only options go; the rest stays. */
static int fix_mounts(json_object *cfg, const char *bundle, json_object *binds, scm_error **ret_err)
{
	json_object *ms = get(cfg, "mounts");
	if (!ms || !json_object_is_type(ms, json_type_array))
		return 0;
	json_object *keep = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ms); i++) {
		json_object *m = json_object_array_get_idx(ms, i), *opts = get(m, "options");
		const char *type = json_object_get_string(get(m, "type")), *src = json_object_get_string(get(m, "source")),
			   *dst = json_object_get_string(get(m, "destination"));
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/mounts/%zu", i);
		if (opts && !json_object_is_type(opts, json_type_array)) {
			json_object_put(keep);
			return bad(ret_err, ptr, "options must be a list of strings");
		}
		if (has_opt(opts, "idmap") || has_opt(opts, "ridmap")) {
			json_object_put(keep);
			return bad(ret_err, ptr, "idmapped mounts are not supported");
		}
		bool is_bind = (type && strcmp(type, "bind") == 0) || has_opt(opts, "bind") || has_opt(opts, "rbind");
		if (is_bind) {
			if (!src || !dst || dst[0] != '/') {
				json_object_put(keep);
				return bad(ret_err, ptr, "a bind needs a source and an absolute destination");
			}
			char abs[PATH_MAX];
			if (src[0] != '/')
				snprintf(abs, sizeof(abs), "%s/%s", bundle, src);
			json_object *b = json_object_new_object();
			json_object_object_add(b, "source", json_object_new_string(src[0] == '/' ? src : abs));
			json_object_object_add(b, "destination", json_object_new_string(dst));
			json_object_object_add(b, "writable", json_object_new_boolean(!has_opt(opts, "ro")));
			json_object_array_add(binds, b);
			continue;
		}
		if (opts) {
			json_object *o2 = json_object_new_array();
			for (size_t k = 0; k < json_object_array_length(opts); k++) {
				const char *w = json_object_get_string(json_object_array_get_idx(opts, k));
				bool drop = false;
				for (const char *const *d = drop_mount_opts; *d && w; d++)
					drop |= strcmp(*d, w) == 0;
				if (!drop)
					json_object_array_add(o2, json_object_get(json_object_array_get_idx(opts, k)));
			}
			json_object_object_add(m, "options", o2);
		}
		json_object_array_add(keep, json_object_get(m));
	}
	json_object_object_add(cfg, "mounts", keep);
	return 0;
}

static int fix_annotations(json_object *cfg, scm_error **ret_err)
{
	json_object *a = get(cfg, "annotations"), *one;
	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_object))
		return bad(ret_err, "/annotations", "expected an object of strings");
	if ((one = get(a, "org.scm.profile"))) {
		if (get(a, OCI_PROFILES_ANNOTATION))
			return bad(ret_err, "/annotations/org.scm.profile",
				   "give org.scm.profile or org.scm.profiles, not both");
		json_object_object_add(a, OCI_PROFILES_ANNOTATION, json_object_get(one));
		json_object_object_del(a, "org.scm.profile");
	}
	return 0;
}

int oci_translate(const char *json, size_t len, const char *bundle, json_object **ret_config,
		  json_object **ret_binds, scm_error **ret_err)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_object *cfg = json_tokener_parse_ex(tok, json, (int)(len > INT_MAX ? INT_MAX : len));
	enum json_tokener_error je = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (je != json_tokener_success || len > INT_MAX) {
		json_object_put(cfg);
		return scm_fail(ret_err, SCM_E_INVALID, "config.json: not JSON: %s",
				je != json_tokener_success ? json_tokener_error_desc(je) : "too large");
	}
	if (!json_object_is_type(cfg, json_type_object)) {
		json_object_put(cfg);
		return bad(ret_err, "/", "expected an object");
	}
	json_object *binds = json_object_new_array(), *process = get(cfg, "process"), *lin = get(cfg, "linux"),
		    *hooks = get(cfg, "hooks"), *root = get(cfg, "root"), *v;
	int r = 0;
	if (hooks && json_object_is_type(hooks, json_type_object) && json_object_object_length(hooks) > 0) {
		r = bad(ret_err, "/hooks", "hooks are not supported: they would run engine commands as host root, "
					    "outside scm's sandbox");
		goto out;
	}
	json_object_object_del(cfg, "hooks");
	drop_keys(cfg, drop_top);
	if (!process || !json_object_is_type(process, json_type_object)) {
		r = bad(ret_err, "/process", process ? "expected an object" : "required field is missing");
		goto out;
	}
	drop_keys(process, drop_process);
	drop_keys(get(process, "user"), drop_user);
	/* scm's rule in a sandbox; the engine's default is off */
	json_object_object_add(process, "noNewPrivileges", json_object_new_boolean(true));
	if (!root || !(v = get(root, "path")) || !json_object_is_type(v, json_type_string)) {
		r = bad(ret_err, "/root/path", "required: the container's root directory");
		goto out;
	}
	const char *rp = json_object_get_string(v);
	if (rp[0] != '/') {
		char abs[PATH_MAX];
		if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", bundle, rp) >= sizeof(abs)) {
			r = bad(ret_err, "/root/path", "too long");
			goto out;
		}
		json_object_object_add(root, "path", json_object_new_string(abs));
	}
	if (lin && !json_object_is_type(lin, json_type_object)) {
		r = bad(ret_err, "/linux", "expected an object");
		goto out;
	}
	if (lin) {
		json_object *dev = get(lin, "devices");
		if (dev && json_object_is_type(dev, json_type_array) && json_object_array_length(dev) > 0) {
			r = bad(ret_err, "/linux/devices", "device nodes are not supported (scm gives a container "
							   "null, zero, full, random, urandom and tty only)");
			goto out;
		}
		json_object_object_del(lin, "devices");
		drop_keys(lin, drop_linux);
		json_object *res = get(lin, "resources");
		drop_keys(res, drop_resources);
		drop_keys(get(res, "memory"), drop_memory);
		drop_keys(get(res, "cpu"), drop_cpu);
		if (res && json_object_is_type(res, json_type_object))
			drop_default_device_rules(res);
		if ((r = fix_namespaces(lin, ret_err)) != 0)
			goto out;
	}
	if ((r = fix_mounts(cfg, bundle, binds, ret_err)) != 0 || (r = fix_annotations(cfg, ret_err)) != 0)
		goto out;
	*ret_config = cfg;
	*ret_binds = binds;
	return 0;
out:
	json_object_put(cfg);
	json_object_put(binds);
	return r;
}

bool oci_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_+.-", *p)))
			return false;
	return true;
}

void oci_scm_name(const char *id, char ret[49])
{
	if (strlen(id) <= 48 && name_valid(id, 48, NAME_FILE)) {
		snprintf(ret, 49, "%s", id);
		return;
	}
	size_t k = 0;
	k += (size_t)snprintf(ret, 49, "oci-");
	for (const char *p = id; *p && k < 48; p++)
		ret[k++] = *p == '+' ? '_' : *p;
	ret[k] = 0;
}
