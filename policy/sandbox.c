/* sandbox.c: the merge of sandbox settings and the typed result the
 * container runtime reads (policy_effective_sandbox()).
 *
 * Each setting is a key ("syscall:openat", "cap:CAP_CHOWN", "mount:/data",
 * "network", "limit:memory") with a canonical value, so one
 * rule serves all: the highest priority wins, equal priorities must agree,
 * and a conflict takes the fail-closed value of its kind (deny; no mount;
 * no network; the smallest limit). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

typedef struct sbmem {
	const char **sys_allow, **sys_deny, **caps;
	policy_sandbox_mount *mounts;
} sbmem;

typedef struct ranked {
	const psetting *s;
	size_t rank; /* position of its profile in merge order */
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	int c = strcmp(x->s->key, y->s->key);
	if (c)
		return c;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static bool starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static char *fail_closed_value(const esetting *es)
{
	const char *k = es->winner->key;
	if (starts(k, "syscall:") || starts(k, "cap:"))
		return strdup("deny");
	if (starts(k, "mount:"))
		return strdup("");
	if (strcmp(k, "network") == 0)
		return strdup("none");
	/* numeric limits: the tightest of the contenders */
	uint64_t min = strtoull(es->winner->value, NULL, 10);
	for (size_t i = 0; i < es->n_ties; i++) {
		uint64_t v = strtoull(es->ties[i]->value, NULL, 10);
		min = v < min ? v : min;
	}
	char *s = NULL;
	return asprintf(&s, "%" PRIu64, min) < 0 ? NULL : s;
}

static int add_ptr(const psetting ***list, size_t *n, const psetting *s)
{
	const psetting **nl = realloc(*list, (*n + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl[(*n)++] = s;
	*list = nl;
	return 0;
}

static int build_typed(policy_effective *e)
{
	sbmem *m = calloc(1, sizeof(*m));
	policy_sandbox *sb = &e->sandbox;
	size_t n = e->n_settings + 1;
	if (!m)
		return -ENOMEM;
	e->sandbox_mem = m;
	m->sys_allow = calloc(n, sizeof(char *));
	m->sys_deny = calloc(n, sizeof(char *));
	m->caps = calloc(n, sizeof(char *));
	m->mounts = calloc(n, sizeof(policy_sandbox_mount));
	if (!m->sys_allow || !m->sys_deny || !m->caps || !m->mounts)
		return -ENOMEM;
	sb->syscalls_allow = m->sys_allow;
	sb->syscalls_deny = m->sys_deny;
	sb->caps_allow = m->caps;
	sb->mounts = m->mounts;
	for (size_t i = 0; i < e->n_settings; i++) {
		const esetting *es = &e->settings[i];
		const char *k = es->winner->key, *v = es->value;
		bool allow = strcmp(v, "allow") == 0;
		if (starts(k, "syscall:")) {
			if (allow)
				m->sys_allow[sb->n_syscalls_allow++] = k + 8;
			else
				m->sys_deny[sb->n_syscalls_deny++] = k + 8;
		} else if (starts(k, "cap:")) {
			if (allow)
				m->caps[sb->n_caps_allow++] = k + 4;
		} else if (starts(k, "mount:")) {
			if (*v)
				m->mounts[sb->n_mounts++] = (policy_sandbox_mount){
					.source = es->winner->value + 3, .destination = k + 6,
					.readonly = starts(v, "ro:") };
		} else if (strcmp(k, "network") == 0) {
			sb->network = strcmp(v, "host") == 0 ? POLICY_NET_HOST
				    : strcmp(v, "loopback") == 0 ? POLICY_NET_LOOPBACK : POLICY_NET_NONE;
		} else {
			uint64_t u = strtoull(v, NULL, 10);
			if (strcmp(k, "limit:memory") == 0)
				sb->memory_max = u;
			else if (strcmp(k, "limit:pids") == 0)
				sb->pids_max = u;
			else if (strcmp(k, "limit:cpu") == 0)
				sb->cpu_weight = u;
			else if (strcmp(k, "log:max_bytes") == 0)
				sb->log_max_bytes = u;
			else if (strcmp(k, "log:files") == 0)
				sb->log_files = u;
		}
	}
	return 0;
}

int sandbox_merge(policy_effective *e)
{
	size_t total = 0, n = 0;
	for (size_t i = 0; i < e->n_profiles; i++)
		total += e->profiles[i]->n_settings;
	ranked *all = calloc(total + 1, sizeof(ranked));
	e->settings = calloc(total + 1, sizeof(esetting));
	if (!all || !e->settings) {
		free(all);
		return -ENOMEM;
	}
	for (size_t i = 0; i < e->n_profiles; i++)
		for (size_t k = 0; k < e->profiles[i]->n_settings; k++)
			all[n++] = (ranked){ &e->profiles[i]->settings[k], i };
	qsort(all, n, sizeof(ranked), ranked_cmp);
	int r = 0;
	for (size_t i = 0; i < n && r == 0;) {
		esetting *es = &e->settings[e->n_settings++];
		es->winner = all[i].s;
		size_t j = i + 1;
		for (; j < n && strcmp(all[j].s->key, es->winner->key) == 0 && r == 0; j++) {
			const psetting *s = all[j].s;
			if (s->profile->priority == es->winner->profile->priority) {
				es->conflict = es->conflict || strcmp(s->value, es->winner->value) != 0;
				r = add_ptr(&es->ties, &es->n_ties, s);
			} else {
				r = add_ptr(&es->overrode, &es->n_overrode, s);
			}
		}
		i = j;
		if (r == 0) {
			es->value = es->conflict ? fail_closed_value(es) : strdup(es->winner->value);
			if (!es->value)
				r = -ENOMEM;
		}
	}
	free(all);
	return r < 0 ? r : build_typed(e);
}

void sandbox_done(policy_effective *e)
{
	for (size_t i = 0; i < e->n_settings; i++) {
		free(e->settings[i].ties);
		free(e->settings[i].overrode);
		free(e->settings[i].value);
	}
	free(e->settings);
	sbmem *m = e->sandbox_mem;
	if (m) {
		free(m->sys_allow);
		free(m->sys_deny);
		free(m->caps);
		free(m->mounts);
		free(m);
	}
}

const policy_sandbox *policy_effective_sandbox(const policy_effective *e)
{
	return &e->sandbox;
}

static json_object *strv_json(const char *const *v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* The container runtime's sandbox document (container_sandbox_parse(),
 * containers/sandbox.c), so scmd hands the effective sandbox over without
 * policy/ knowing the runtime's structs. cpu weight (cgroup v2, 1..10000)
 * becomes v1-style shares (2..262144), which the runtime maps back. */
int policy_sandbox_to_json(const policy_effective *e, char **ret, scm_error **ret_err)
{
	const policy_sandbox *sb = &e->sandbox;
	json_object *o = json_object_new_object(), *sys = json_object_new_object(),
		    *mounts = json_object_new_array();
	if (!o || !sys || !mounts) {
		json_object_put(o);
		json_object_put(sys);
		json_object_put(mounts);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	json_object_object_add(sys, "deny", strv_json(sb->syscalls_deny, sb->n_syscalls_deny));
	json_object_object_add(sys, "allow", strv_json(sb->syscalls_allow, sb->n_syscalls_allow));
	json_object_object_add(o, "syscalls", sys);
	json_object_object_add(o, "capabilities", strv_json(sb->caps_allow, sb->n_caps_allow));
	for (size_t i = 0; i < sb->n_mounts; i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "source", json_object_new_string(sb->mounts[i].source));
		json_object_object_add(m, "destination", json_object_new_string(sb->mounts[i].destination));
		json_object_object_add(m, "writable", json_object_new_boolean(!sb->mounts[i].readonly));
		json_object_array_add(mounts, m);
	}
	json_object_object_add(o, "mounts", mounts);
	json_object_object_add(o, "network", json_object_new_boolean(sb->network == POLICY_NET_HOST));
	if (sb->memory_max)
		json_object_object_add(o, "memory", json_object_new_int64((int64_t)sb->memory_max));
	if (sb->pids_max)
		json_object_object_add(o, "pids", json_object_new_int64((int64_t)sb->pids_max));
	if (sb->cpu_weight) {
		json_object *cpu = json_object_new_object();
		json_object_object_add(cpu, "shares",
				       json_object_new_int64(2 + (int64_t)(sb->cpu_weight - 1) * 262142 / 9999));
		json_object_object_add(o, "cpu", cpu);
	}
	if (sb->log_max_bytes || sb->log_files) {
		json_object *log = json_object_new_object();
		if (sb->log_max_bytes)
			json_object_object_add(log, "max_bytes", json_object_new_int64((int64_t)sb->log_max_bytes));
		if (sb->log_files)
			json_object_object_add(log, "files", json_object_new_int64((int64_t)sb->log_files));
		json_object_object_add(o, "log", log);
	}
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (!s)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	*ret = s;
	return 0;
}
