/* sandbox.c: the sandbox a profile grants (container_sandbox), read from
 * JSON for scm-run's --profile-sandbox and tests (the policy part fills the
 * struct directly), and the check that a spec stays inside it. Every
 * refusal names the spec field that asked for too much. */
#include <errno.h>
#include <stdarg.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "launch-internal.h"
#include "spec-internal.h"
#include "scm-internal/error.h"

container_sandbox *container_sandbox_new(void)
{
	container_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return NULL;
	sb->memory_limit = sb->pids_limit = sb->cpu_shares = sb->cpu_quota = sb->cpu_period = -1;
	sb->log_max_bytes = sb->log_files = -1;
	return sb;
}

container_sandbox *container_sandbox_free(container_sandbox *sb)
{
	if (!sb)
		return NULL;
	strv_free(sb->syscalls_denied);
	strv_free(sb->syscalls_allowed);
	for (size_t i = 0; i < sb->n_mounts; i++) {
		free(sb->mounts[i].source);
		free(sb->mounts[i].destination);
	}
	free(sb->mounts);
	free(sb);
	return NULL;
}

static int parse_syscall_list(json_object *o, const char *key, const char *path, char ***out,
			      scm_error **err)
{
	char p[JPATH_MAX], q[JPATH_MAX];
	int r = jget_strv(o, key, path, out, err);
	if (r)
		return r;
	for (size_t i = 0; *out && (*out)[i]; i++)
		if (seccomp_syscall_resolve_name((*out)[i]) == __NR_SCMP_ERROR)
			return jfail(err, jpath_idx(q, jpath_key(p, path, key), i),
				     "unknown system call \"%s\"", (*out)[i]);
	return 0;
}

static int parse_sb(json_object *root, container_sandbox *sb, scm_error **err)
{
	static const char *const keys[] = {"syscalls", "capabilities", "mounts", "network",
					   "memory", "pids", "cpu", "log", NULL};
	static const char *const skeys[] = {"deny", "allow", NULL};
	static const char *const lkeys[] = {"max_bytes", "files", NULL};
	static const char *const mkeys[] = {"source", "destination", "writable", NULL};
	static const char *const ckeys[] = {"shares", "quota", "period", NULL};
	char p[JPATH_MAX], q[JPATH_MAX];
	json_object *v;
	int r = jexpect_type(root, json_type_object, "", err);
	if (r || (r = jcheck_keys(root, "", keys, err)) ||
	    (r = jget_bool(root, "network", "", &sb->network, err)) ||
	    (r = jget_int(root, "memory", "", false, 1 << 20, INT64_MAX, &sb->memory_limit, err)) ||
	    (r = jget_int(root, "pids", "", false, 1, 1 << 22, &sb->pids_limit, err)))
		return r;
	if (json_object_object_get_ex(root, "syscalls", &v) &&
	    ((r = jexpect_type(v, json_type_object, "/syscalls", err)) ||
	     (r = jcheck_keys(v, "/syscalls", skeys, err)) ||
	     (r = parse_syscall_list(v, "deny", "/syscalls", &sb->syscalls_denied, err)) ||
	     (r = parse_syscall_list(v, "allow", "/syscalls", &sb->syscalls_allowed, err))))
		return r;
	_cleanup_(strv_freep) char **caps = NULL;
	if ((r = jget_strv(root, "capabilities", "", &caps, err)))
		return r;
	for (size_t i = 0; caps && caps[i]; i++) {
		int cap = cap_number_from_name(caps[i]);
		if (cap < 0)
			return jfail(err, jpath_idx(p, "/capabilities", i), "unknown capability \"%s\"",
				     caps[i]);
		sb->caps_keep |= 1ull << cap;
	}
	if (json_object_object_get_ex(root, "cpu", &v) &&
	    ((r = jexpect_type(v, json_type_object, "/cpu", err)) ||
	     (r = jcheck_keys(v, "/cpu", ckeys, err)) ||
	     (r = jget_int(v, "shares", "/cpu", false, 2, 262144, &sb->cpu_shares, err)) ||
	     (r = jget_int(v, "quota", "/cpu", false, 1000, INT64_MAX / 2, &sb->cpu_quota, err)) ||
	     (r = jget_int(v, "period", "/cpu", false, 1000, 1000000, &sb->cpu_period, err))))
		return r;
	if (json_object_object_get_ex(root, "log", &v) &&
	    ((r = jexpect_type(v, json_type_object, "/log", err)) ||
	     (r = jcheck_keys(v, "/log", lkeys, err)) ||
	     (r = jget_int(v, "max_bytes", "/log", false, 64 << 10, INT64_C(1) << 40,
			   &sb->log_max_bytes, err)) ||
	     (r = jget_int(v, "files", "/log", false, 1, 7, &sb->log_files, err))))
		return r;
	if (!json_object_object_get_ex(root, "mounts", &v))
		return 0;
	if ((r = jexpect_type(v, json_type_array, "/mounts", err)))
		return r;
	size_t n = json_object_array_length(v);
	if (n > 64)
		return jfail(err, "/mounts", "too many mounts (at most 64)");
	sb->mounts = calloc(n ? n : 1, sizeof(*sb->mounts));
	if (!sb->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(v, i);
		container_sandbox_mount *sm = &sb->mounts[sb->n_mounts++];
		jpath_idx(p, "/mounts", i);
		if ((r = jexpect_type(m, json_type_object, p, err)) ||
		    (r = jcheck_keys(m, p, mkeys, err)) ||
		    (r = jget_string(m, "source", p, true, &sm->source, err)) ||
		    (r = jget_string(m, "destination", p, false, &sm->destination, err)) ||
		    (r = jget_bool(m, "writable", p, &sm->writable, err)))
			return r;
		if (!sm->destination && !(sm->destination = strdup(sm->source)))
			return -ENOMEM;
		if (sm->source[0] != '/' || strstr(sm->source, "/..") || sm->destination[0] != '/' ||
		    strstr(sm->destination, "/.."))
			return jfail(err, jpath_key(q, p, "source"), "expected clean absolute paths");
	}
	return 0;
}

int container_sandbox_parse(const char *json, size_t len, container_sandbox **ret, scm_error **ret_err)
{
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	_cleanup_(container_sandbox_freep) container_sandbox *sb = container_sandbox_new();
	if (!sb)
		return -ENOMEM;
	json_tokener *tok = json_tokener_new_ex(16);
	if (!tok)
		return -ENOMEM;
	json_object *root = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t off = tok->char_offset;
	json_tokener_free(tok);
	int r;
	if (!root || je != json_tokener_success || off != len)
		r = jfail(&err, "", "invalid JSON near offset %zu", off);
	else
		r = parse_sb(root, sb, &err);
	json_object_put(root);
	if (r) {
		scm_error_push(ret_err, TAKE_PTR(err));
		return r;
	}
	*ret = TAKE_PTR(sb);
	return 0;
}

static void fill(int64_t *spec, int64_t sb)
{
	if (*spec <= 0 && sb > 0)
		*spec = sb;
}

/* The default sandbox: without it a quick-path container forks without
 * bound and its tmpfs pages are charged to nobody. Only what is still
 * unset, so a spec or a profile can raise or lower either. */
static void fill_defaults(container_resources *res)
{
	if (res->memory_limit <= 0) {
		res->memory_limit = CONTAINER_DEFAULT_MEMORY;
		res->defaulted |= CONTAINER_LIMIT_MEMORY;
	}
	if (res->pids_limit <= 0) {
		res->pids_limit = CONTAINER_DEFAULT_PIDS;
		res->defaulted |= CONTAINER_LIMIT_PIDS;
	}
}

/* The quick path's tmpfs take their size from the container's memory:
 * /tmp half of it, /dev/shm an eighth, /run a sixteenth (256, 64 and 32
 * MiB at the default 512 MiB), one inode per 4 KiB. Their pages are
 * charged to the writer's memory cgroup; sized so, all three full leave
 * room for the processes, so a writer gets ENOSPC rather than the cgroup's
 * OOM killer (which picks by RSS, not by who filled a tmpfs, and could pick
 * PID 1). */
static int size_quick_tmpfs(container_spec *s)
{
	static const struct {
		const char *dest;
		int shift;
	} sizes[] = {{"/tmp", 1}, {"/dev/shm", 3}, {"/run", 4}};
	int64_t mem = s->resources.memory_limit;
	if (mem <= 0)
		return 0;
	for (size_t i = 0; i < s->n_mounts; i++) {
		container_mount *m = &s->mounts[i];
		for (size_t k = 0; k < ELEMENTSOF(sizes); k++) {
			if (strcmp(m->type, "tmpfs") != 0 || strcmp(m->destination, sizes[k].dest) != 0)
				continue;
			/* Keep the options that are not about size (mode=). */
			char data[256];
			size_t n = 0;
			long long bytes = (long long)(mem >> sizes[k].shift) & ~4095ll;
			if (bytes < 1 << 20)
				bytes = 1 << 20;
			for (const char *c = m->data ? m->data : ""; *c;) {
				size_t l = strcspn(c, ",");
				if (strncmp(c, "size=", 5) != 0 && strncmp(c, "nr_inodes=", 10) != 0 &&
				    n + l + 2 < sizeof(data))
					n += (size_t)snprintf(data + n, sizeof(data) - n, "%.*s,", (int)l, c);
				c += l + (c[l] == ',');
			}
			snprintf(data + n, sizeof(data) - n, "size=%lld,nr_inodes=%lld", bytes, bytes / 4096);
			char *d = strdup(data);
			if (!d)
				return -ENOMEM;
			free(m->data);
			m->data = d;
		}
	}
	return 0;
}

int container_sandbox_apply(container_spec *s, const container_sandbox *sb)
{
	if (!sb) {
		fill_defaults(&s->resources);
		return s->quick ? size_quick_tmpfs(s) : 0;
	}
	fill(&s->resources.memory_limit, sb->memory_limit);
	fill(&s->resources.pids_limit, sb->pids_limit);
	fill(&s->resources.cpu_shares, sb->cpu_shares);
	fill(&s->resources.cpu_quota, sb->cpu_quota);
	fill(&s->resources.cpu_period, sb->cpu_period);
	fill_defaults(&s->resources);
	if (!s->quick)
		return 0;
	int r = size_quick_tmpfs(s);
	if (r < 0)
		return r;
	if (sb->network)
		s->namespaces &= ~(unsigned)CONTAINER_NS_NET;
	for (size_t i = 0; i < sb->n_mounts && i < 64; i++) {
		container_mount *m = &s->mounts[s->n_mounts];
		*m = (container_mount){.flags = MS_BIND | MS_NOSUID | MS_NODEV |
						(sb->mounts[i].writable ? 0 : MS_RDONLY),
				       .readonly = !sb->mounts[i].writable};
		if (!(m->destination = strdup(sb->mounts[i].destination)) ||
		    !(m->source = strdup(sb->mounts[i].source)) || !(m->type = strdup("bind"))) {
			free(m->destination);
			free(m->source);
			return -ENOMEM;
		}
		s->n_mounts++;
	}
	return 0;
}

static void clip(int64_t *spec, int64_t sb)
{
	if (sb > 0 && (*spec <= 0 || *spec > sb))
		*spec = sb;
}

void container_sandbox_clip(container_spec *s, const container_sandbox *sb)
{
	uint64_t *sets[] = {&s->caps.bounding, &s->caps.effective, &s->caps.permitted,
			    &s->caps.inheritable, &s->caps.ambient};
	for (size_t k = 0; k < ELEMENTSOF(sets); k++)
		*sets[k] &= sb->caps_keep;
	s->no_new_privileges = true;
	s->namespaces |= CONTAINER_NS_IPC | CONTAINER_NS_UTS;
	clip(&s->resources.memory_limit, sb->memory_limit);
	clip(&s->resources.pids_limit, sb->pids_limit);
	clip(&s->resources.cpu_quota, sb->cpu_quota);
	clip(&s->resources.cpu_shares, sb->cpu_shares);
}

#define deny(err, ...) ctr_fail((err), CONTAINER_E_DENIED, __VA_ARGS__)

static int check_limit(int64_t spec, int64_t sb, const char *field, scm_error **err)
{
	if (sb <= 0)
		return 0;
	if (spec <= 0)
		return deny(err, "%s: missing, the sandbox sets %lld", field, (long long)sb);
	if (spec > sb)
		return deny(err, "%s: %lld exceeds the sandbox's %lld", field, (long long)spec,
			    (long long)sb);
	return 0;
}

int container_sandbox_check(const container_spec *s, const container_sandbox *sb, scm_error **err)
{
	static const char *const set_names[] = {"bounding", "effective", "permitted",
						"inheritable", "ambient"};
	const uint64_t sets[] = {s->caps.bounding, s->caps.effective, s->caps.permitted,
				 s->caps.inheritable, s->caps.ambient};
	int r;
	for (size_t k = 0; k < ELEMENTSOF(sets); k++) {
		uint64_t extra = sets[k] & ~sb->caps_keep;
		if (extra)
			return deny(err, "/process/capabilities/%s: %s is not allowed by the sandbox",
				    set_names[k], cap_name_from_number(__builtin_ctzll(extra)));
	}
	if (!s->no_new_privileges)
		return deny(err, "/process/noNewPrivileges: must be true in a sandbox");
	if (!sb->network && s->ns_join[CONTAINER_JOIN_NET])
		return deny(err, "/linux/namespaces/%zu/path: the sandbox allows no network, so the container "
			    "cannot join network namespace %s: add \"network\"", s->ns_join_idx[CONTAINER_JOIN_NET],
			    s->ns_join[CONTAINER_JOIN_NET]);
	if (!sb->network && !(s->namespaces & CONTAINER_NS_NET))
		return deny(err, "/linux/namespaces: the sandbox allows no network: add \"network\"");
	if (!(s->namespaces & CONTAINER_NS_IPC) || !(s->namespaces & CONTAINER_NS_UTS))
		return deny(err, "/linux/namespaces: \"%s\" is required in a sandbox",
			    s->namespaces & CONTAINER_NS_IPC ? "uts" : "ipc");
	if ((r = check_limit(s->resources.memory_limit, sb->memory_limit,
			     "/linux/resources/memory/limit", err)) ||
	    (r = check_limit(s->resources.pids_limit, sb->pids_limit, "/linux/resources/pids/limit",
			     err)) ||
	    (r = check_limit(s->resources.cpu_quota, sb->cpu_quota, "/linux/resources/cpu/quota",
			     err)) ||
	    (r = check_limit(s->resources.cpu_shares, sb->cpu_shares, "/linux/resources/cpu/shares",
			     err)))
		return r;
	for (size_t i = 0; i < s->n_seccomp_rules; i++) {
		const container_sc_rule *rule = &s->seccomp_rules[i];
		if (rule->action != CONTAINER_SC_ALLOW)
			continue;
		bool by_default = false;
		for (const char *const *d = container_default_denied_syscalls(); *d; d++)
			by_default |= strcmp(*d, rule->name) == 0;
		if ((by_default && !strv_contains(sb->syscalls_allowed, rule->name)) ||
		    strv_contains(sb->syscalls_denied, rule->name))
			return deny(err, "/linux/seccomp/syscalls: allowing \"%s\" is not allowed by the sandbox",
				    rule->name);
	}
	for (size_t i = 0; i < s->n_mounts; i++) {
		const container_mount *m = &s->mounts[i];
		if (strcmp(m->type, "bind") != 0) {
			if ((strcmp(m->type, "sysfs") == 0 || strncmp(m->type, "cgroup", 6) == 0) &&
			    !m->readonly)
				return deny(err, "/mounts/%zu/options: %s must be read-only in a sandbox",
					    i, m->type);
			continue;
		}
		bool ok = false;
		for (size_t k = 0; k < sb->n_mounts && !ok; k++)
			ok = strcmp(sb->mounts[k].source, m->source) == 0 &&
			     strcmp(sb->mounts[k].destination, m->destination) == 0 &&
			     (m->readonly || sb->mounts[k].writable);
		if (!ok)
			return deny(err, "/mounts/%zu/source: binding %s%s at %s is not allowed by the sandbox",
				    i, m->readonly ? "" : "(writable) ", m->source, m->destination);
	}
	return 0;
}
