/* Unit tests of the sandbox check: a table of (spec, sandbox) pairs and
 * the refusal each must produce, naming the spec field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"

#define NS "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"network\"}]"
#define PROC "\"process\":{\"args\":[\"a\"],\"noNewPrivileges\":true"
#define SPEC(proc_extra, linux_extra, top_extra) \
	"{" PROC proc_extra "},\"root\":{\"path\":\"/\"}," NS linux_extra "}" top_extra "}"

static const struct {
	const char *spec, *sandbox;
	int code;
	const char *error;
} cases[] = {
	{SPEC("", "", ""), "{}", 0, NULL},
	{SPEC(",\"capabilities\":{\"bounding\":[\"CAP_NET_ADMIN\"]}", "", ""), "{}",
	 CONTAINER_E_DENIED, "/process/capabilities/bounding: CAP_NET_ADMIN is not allowed by the sandbox"},
	{SPEC(",\"capabilities\":{\"ambient\":[\"CAP_KILL\"]}", "", ""), "{\"capabilities\":[\"CAP_CHOWN\"]}",
	 CONTAINER_E_DENIED, "/process/capabilities/ambient: CAP_KILL"},
	{SPEC(",\"capabilities\":{\"bounding\":[\"CAP_KILL\"],\"effective\":[\"CAP_KILL\"]}", "", ""),
	 "{\"capabilities\":[\"CAP_KILL\"]}", 0, NULL},
	{"{\"process\":{\"args\":[\"a\"]},\"root\":{\"path\":\"/\"}," NS "}}", "{}",
	 CONTAINER_E_DENIED, "/process/noNewPrivileges: must be true in a sandbox"},
	{"{" PROC "},\"root\":{\"path\":\"/\"},\"linux\":{\"namespaces\":[{\"type\":\"ipc\"},{\"type\":\"uts\"}]}}",
	 "{}", CONTAINER_E_DENIED, "/linux/namespaces: the sandbox allows no network"},
	{"{" PROC "},\"root\":{\"path\":\"/\"},\"linux\":{\"namespaces\":[{\"type\":\"ipc\"},{\"type\":\"uts\"}]}}",
	 "{\"network\":true}", 0, NULL},
	{"{" PROC "},\"root\":{\"path\":\"/\"},\"linux\":{\"namespaces\":[{\"type\":\"network\"},{\"type\":\"uts\"}]}}",
	 "{}", CONTAINER_E_DENIED, "/linux/namespaces: \"ipc\" is required"},
	{SPEC("", ",\"resources\":{\"memory\":{\"limit\":2097152}}", ""), "{\"memory\":1048576}",
	 CONTAINER_E_DENIED, "/linux/resources/memory/limit: 2097152 exceeds the sandbox's 1048576"},
	{SPEC("", "", ""), "{\"pids\":10}", CONTAINER_E_DENIED,
	 "/linux/resources/pids/limit: missing, the sandbox sets 10"},
	{SPEC("", ",\"resources\":{\"pids\":{\"limit\":5}}", ""), "{\"pids\":10}", 0, NULL},
	{SPEC("", ",\"resources\":{\"cpu\":{\"quota\":90000}}", ""), "{\"cpu\":{\"quota\":50000}}",
	 CONTAINER_E_DENIED, "/linux/resources/cpu/quota: 90000 exceeds"},
	{SPEC("", ",\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\"}]}", ""),
	 "{}", CONTAINER_E_DENIED, "/linux/seccomp/syscalls: allowing \"mount\" is not allowed by the sandbox"},
	{SPEC("", ",\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\"}]}", ""),
	 "{\"syscalls\":{\"allow\":[\"mount\"]}}", 0, NULL},
	{SPEC("", ",\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ALLOW\"}]}", ""),
	 "{\"syscalls\":{\"deny\":[\"getpid\"]}}", CONTAINER_E_DENIED, "allowing \"getpid\""},
	{SPEC("", ",\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"}]}", ""),
	 "{}", 0, NULL},
	{SPEC("", "", ",\"mounts\":[{\"destination\":\"/d\",\"source\":\"/srv\",\"options\":[\"bind\",\"ro\"]}]"),
	 "{}", CONTAINER_E_DENIED, "/mounts/0/source: binding /srv at /d is not allowed"},
	{SPEC("", "", ",\"mounts\":[{\"destination\":\"/d\",\"source\":\"/srv\",\"options\":[\"bind\",\"ro\"]}]"),
	 "{\"mounts\":[{\"source\":\"/srv\",\"destination\":\"/d\"}]}", 0, NULL},
	{SPEC("", "", ",\"mounts\":[{\"destination\":\"/d\",\"source\":\"/srv\",\"options\":[\"bind\"]}]"),
	 "{\"mounts\":[{\"source\":\"/srv\",\"destination\":\"/d\"}]}", CONTAINER_E_DENIED,
	 "/mounts/0/source: binding (writable) /srv"},
	{SPEC("", "", ",\"mounts\":[{\"destination\":\"/d\",\"source\":\"/srv\",\"options\":[\"bind\"]}]"),
	 "{\"mounts\":[{\"source\":\"/srv\",\"destination\":\"/d\",\"writable\":true}]}", 0, NULL},
	{SPEC("", "", ",\"mounts\":[{\"destination\":\"/sys\",\"type\":\"sysfs\"}]"), "{}",
	 CONTAINER_E_DENIED, "/mounts/0/options: sysfs must be read-only"},
};

static const struct {
	const char *json, *error;
} bad_sandboxes[] = {
	{"[]", "/: expected an object"},
	{"{\"nope\":1}", "/nope: unknown field"},
	{"{\"capabilities\":[\"CAP_X\"]}", "/capabilities/0: unknown capability"},
	{"{\"syscalls\":{\"allow\":[\"mount\",\"zzz\"]}}", "/syscalls/allow/1: unknown system call"},
	{"{\"mounts\":[{\"source\":\"rel\"}]}", "/mounts/0/source: expected clean absolute paths"},
	{"{\"mounts\":[{\"destination\":\"/x\"}]}", "/mounts/0/source: required field is missing"},
	{"{\"memory\":-5}", "/memory: -5 out of range"},
	{"{\"cpu\":{\"quota\":\"x\"}}", "/cpu/quota: expected an integer"},
	{"{\"network\":1}", "/network: expected a boolean"},
	{"{\"log\":{\"max_bytes\":1000}}", "/log/max_bytes: 1000 out of range"},
	{"{\"log\":{\"files\":8}}", "/log/files: 8 out of range"},
	{"{\"log\":{\"size\":1}}", "/log/size: unknown field"},
	{"{\"log\":[]}", "/log: expected an object"},
	{"{", "invalid JSON"},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		container_spec *s = NULL;
		container_sandbox *sb = NULL;
		scm_error *err = NULL;
		int r = container_spec_parse(cases[i].spec, strlen(cases[i].spec), NULL, &s, &err);
		if (r)
			fail_msg("case %zu: spec does not parse: %s", i, err ? err->message : "");
		r = container_sandbox_parse(cases[i].sandbox, strlen(cases[i].sandbox), &sb, &err);
		if (r)
			fail_msg("case %zu: sandbox does not parse: %s", i, err ? err->message : "");
		r = container_sandbox_check(s, sb, &err);
		if (r != cases[i].code || (cases[i].error && (!err || !strstr(err->message, cases[i].error))))
			fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, r, err ? err->message : "",
				 cases[i].code, cases[i].error ? cases[i].error : "");
		scm_error_free(err);
		container_sandbox_free(sb);
		container_spec_free(s);
	}
}

static void test_bad_sandboxes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_sandboxes) / sizeof(bad_sandboxes[0]); i++) {
		container_sandbox *sb = NULL;
		scm_error *err = NULL;
		int r = container_sandbox_parse(bad_sandboxes[i].json, strlen(bad_sandboxes[i].json), &sb, &err);
		if (r != CONTAINER_E_SPEC || !err || !strstr(err->message, bad_sandboxes[i].error))
			fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, r, err ? err->message : "",
				 bad_sandboxes[i].error);
		assert_null(sb);
		scm_error_free(err);
	}
}

/* apply fills the limits a spec leaves open and adds binds on the quick path. */
static void test_apply_quick(void **state)
{
	(void)state;
	char *argv[] = {"true", NULL};
	container_spec *s = NULL;
	container_sandbox *sb = NULL;
	scm_error *err = NULL;
	const char *j = "{\"pids\":64,\"memory\":67108864,\"network\":true,"
			"\"mounts\":[{\"source\":\"/srv\",\"destination\":\"/mnt\",\"writable\":true}]}";
	assert_int_equal(container_spec_quick(argv, &s), 0);
	assert_int_equal(container_sandbox_parse(j, strlen(j), &sb, &err), 0);
	size_t before = s->n_mounts;
	assert_int_equal(container_sandbox_apply(s, sb), 0);
	assert_int_equal(s->resources.pids_limit, 64);
	assert_int_equal(s->resources.memory_limit, 67108864);
	assert_false(s->namespaces & CONTAINER_NS_NET);
	assert_int_equal(s->n_mounts, before + 1);
	assert_string_equal(s->mounts[before].destination, "/mnt");
	assert_false(s->mounts[before].readonly);
	assert_int_equal(container_sandbox_check(s, sb, &err), 0);
	container_sandbox_free(sb);
	container_spec_free(s);
}

/* The default sandbox fills only what nothing else set, and says which. */
static void test_apply_defaults(void **state)
{
	(void)state;
	static const struct {
		const char *sandbox; /* NULL: no profile */
		int64_t spec_pids;   /* -1: the spec sets none */
		int64_t memory, pids;
		unsigned defaulted;
	} t[] = {
		{NULL, -1, CONTAINER_DEFAULT_MEMORY, CONTAINER_DEFAULT_PIDS,
		 CONTAINER_LIMIT_MEMORY | CONTAINER_LIMIT_PIDS},
		{NULL, 4096, CONTAINER_DEFAULT_MEMORY, 4096, CONTAINER_LIMIT_MEMORY},
		{"{\"memory\":67108864}", -1, 67108864, CONTAINER_DEFAULT_PIDS, CONTAINER_LIMIT_PIDS},
		{"{\"memory\":8589934592,\"pids\":10000}", -1, 8589934592, 10000, 0},
		{"{\"log\":{\"max_bytes\":65536,\"files\":7}}", 20, CONTAINER_DEFAULT_MEMORY, 20,
		 CONTAINER_LIMIT_MEMORY},
	};
	char *argv[] = {"true", NULL};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		container_spec *s = NULL;
		container_sandbox *sb = NULL;
		scm_error *err = NULL;
		assert_int_equal(container_spec_quick(argv, &s), 0);
		s->resources.pids_limit = t[i].spec_pids;
		if (t[i].sandbox && container_sandbox_parse(t[i].sandbox, strlen(t[i].sandbox), &sb, &err))
			fail_msg("case %zu: %s", i, err ? err->message : "");
		assert_int_equal(container_sandbox_apply(s, sb), 0);
		if (s->resources.memory_limit != t[i].memory || s->resources.pids_limit != t[i].pids ||
		    s->resources.defaulted != t[i].defaulted)
			fail_msg("case %zu: memory %lld pids %lld defaulted %u", i,
				 (long long)s->resources.memory_limit, (long long)s->resources.pids_limit,
				 s->resources.defaulted);
		if (sb)
			assert_int_equal(container_sandbox_check(s, sb, &err), 0);
		container_sandbox_free(sb);
		container_spec_free(s);
	}
}

static const char *mount_data(const container_spec *s, const char *dest)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (strcmp(s->mounts[i].destination, dest) == 0)
			return s->mounts[i].data;
	return NULL;
}

/* The quick path's tmpfs follow the memory limit, default or profile's. */
static void test_tmpfs_sizes(void **state)
{
	(void)state;
	char *argv[] = {"true", NULL};
	container_spec *s = NULL;
	container_sandbox *sb = NULL;
	scm_error *err = NULL;
	assert_int_equal(container_spec_quick(argv, &s), 0);
	assert_int_equal(container_sandbox_apply(s, NULL), 0);
	assert_string_equal(mount_data(s, "/tmp"), "mode=1777,size=268435456,nr_inodes=65536");
	assert_string_equal(mount_data(s, "/dev/shm"), "mode=1777,size=67108864,nr_inodes=16384");
	assert_string_equal(mount_data(s, "/run"), "mode=755,size=33554432,nr_inodes=8192");
	assert_string_equal(mount_data(s, "/dev"), "mode=755,size=64k");
	container_spec_free(s);
	const char *j = "{\"memory\":67108864}";
	assert_int_equal(container_spec_quick(argv, &s), 0);
	assert_int_equal(container_sandbox_parse(j, strlen(j), &sb, &err), 0);
	assert_int_equal(container_sandbox_apply(s, sb), 0);
	assert_string_equal(mount_data(s, "/tmp"), "mode=1777,size=33554432,nr_inodes=8192");
	assert_string_equal(mount_data(s, "/run"), "mode=755,size=4194304,nr_inodes=1024");
	container_sandbox_free(sb);
	container_spec_free(s);
}

/* scm-oci's engines ask for more than a profile grants by default (11
 * capabilities, 2048 pids, no no_new_privs, no uts): clip narrows that to
 * the sandbox, and the check then passes; a bind is not narrowed. */
static void test_clip(void **state)
{
	(void)state;
	const char *spec = "{\"process\":{\"args\":[\"a\"],\"capabilities\":{\"bounding\":[\"CAP_CHOWN\",\"CAP_KILL\"],"
			   "\"effective\":[\"CAP_CHOWN\",\"CAP_KILL\"],\"permitted\":[\"CAP_CHOWN\",\"CAP_KILL\"]}},"
			   "\"root\":{\"path\":\"/\"},\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},"
			   "{\"type\":\"network\"}],\"resources\":{\"pids\":{\"limit\":2048},\"memory\":{\"limit\":2097152}}}}";
	const char *sbj = "{\"capabilities\":[\"CAP_KILL\"],\"pids\":64,\"memory\":4194304}";
	container_spec *s = NULL;
	container_sandbox *sb = NULL;
	scm_error *e = NULL;
	assert_int_equal(container_spec_parse(spec, strlen(spec), NULL, &s, &e), 0);
	assert_int_equal(container_sandbox_parse(sbj, strlen(sbj), &sb, &e), 0);
	assert_int_equal(container_sandbox_check(s, sb, &e), CONTAINER_E_DENIED);
	scm_error_free(e);
	e = NULL;
	container_sandbox_clip(s, sb);
	int r = container_sandbox_check(s, sb, &e);
	if (r)
		scm_error_print(e, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(s->caps.bounding, 1ull << 5); /* CAP_KILL only */
	assert_int_equal(s->caps.effective, 1ull << 5);
	assert_int_equal(s->resources.pids_limit, 64);
	assert_int_equal(s->resources.memory_limit, 2097152); /* already below: kept */
	assert_true(s->no_new_privileges);
	container_sandbox_free(sb);
	container_spec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bad_sandboxes),
		cmocka_unit_test(test_apply_quick),
		cmocka_unit_test(test_apply_defaults),
		cmocka_unit_test(test_tmpfs_sizes),
		cmocka_unit_test(test_clip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
