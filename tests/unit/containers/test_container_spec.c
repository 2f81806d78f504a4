/* Unit tests of the config.json parser: a table of documents with the
 * code and the error (a JSON pointer) each must produce, and the typed
 * values a good document turns into. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "container.h"

#define BASE_PROCESS "\"process\":{\"args\":[\"/bin/true\"]}"
#define BASE_ROOT "\"root\":{\"path\":\"/\"}"
#define DOC0 "{" BASE_PROCESS "," BASE_ROOT "}"
#define DOC(extra) "{" BASE_PROCESS "," BASE_ROOT "," extra "}"

static const struct {
	const char *json;
	int code;
	const char *error; /* substring of the message; NULL = success */
} cases[] = {
	{DOC0, 0, NULL},
	{"{" BASE_ROOT "}", CONTAINER_E_SPEC, "/process: required field is missing"},
	{"{" BASE_PROCESS "}", CONTAINER_E_ROOTFS, "/root: required field is missing"},
	{"[1]", CONTAINER_E_SPEC, "/: expected an object, got an array"},
	{"{\"process\":", CONTAINER_E_SPEC, "invalid JSON"},
	{DOC0 " trailing", CONTAINER_E_SPEC, "invalid JSON"},
	{DOC("\"bogus\":1"), CONTAINER_E_SPEC, "/bogus: unknown field"},
	{DOC("\"ociVersion\":\"2.0\""), CONTAINER_E_SPEC, "/ociVersion: unsupported version"},
	{"{\"process\":{\"args\":[]}," BASE_ROOT "}", CONTAINER_E_SPEC, "/process/args: must not be empty"},
	{"{\"process\":{\"args\":[\"a\",\"b\",3]}," BASE_ROOT "}", CONTAINER_E_SPEC,
	 "/process/args/2: expected a string, got an integer"},
	{"{\"process\":{\"args\":[\"a\\u0000b\"]}," BASE_ROOT "}", CONTAINER_E_SPEC,
	 "/process/args/0: string contains a NUL byte"},
	{"{\"process\":{\"args\":[\"a\"],\"env\":[\"NOEQUALS\"]}," BASE_ROOT "}", CONTAINER_E_SPEC,
	 "/process/env/0: expected NAME=VALUE"},
	{"{\"process\":{\"args\":[\"a\"],\"cwd\":\"rel\"}," BASE_ROOT "}", CONTAINER_E_SPEC,
	 "/process/cwd: \"rel\" is not an absolute path"},
	{"{\"process\":{\"args\":[\"a\"],\"user\":{\"uid\":0}}," BASE_ROOT "}", CONTAINER_E_SPEC,
	 "/process/user/gid: required field is missing"},
	{"{\"process\":{\"args\":[\"a\"],\"user\":{\"uid\":1.5,\"gid\":0}}," BASE_ROOT "}",
	 CONTAINER_E_SPEC, "/process/user/uid: expected an integer, got a number"},
	{"{\"process\":{\"args\":[\"a\"],\"user\":{\"uid\":4294967296,\"gid\":0}}," BASE_ROOT "}",
	 CONTAINER_E_SPEC, "/process/user/uid: 4294967296 out of range"},
	{"{\"process\":{\"args\":[\"a\"],\"capabilities\":{\"effective\":[\"CAP_NOPE\"]}}," BASE_ROOT "}",
	 CONTAINER_E_SPEC, "/process/capabilities/effective/0: unknown capability \"CAP_NOPE\""},
	{"{\"process\":{\"args\":[\"a\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1,\"soft\":2}]}," BASE_ROOT "}",
	 CONTAINER_E_SPEC, "/process/rlimits/0/soft: soft limit above the hard limit"},
	{"{\"process\":{\"args\":[\"a\"],\"rlimits\":[{\"type\":\"RLIMIT_X\",\"hard\":1,\"soft\":1}]}," BASE_ROOT "}",
	 CONTAINER_E_SPEC, "/process/rlimits/0/type: unknown rlimit \"RLIMIT_X\""},
	{"{" BASE_PROCESS ",\"root\":{\"path\":\"\"}}", CONTAINER_E_SPEC, "/root/path: must not be empty"},
	{"{" BASE_PROCESS ",\"root\":{\"path\":\"/\",\"ro\":true}}", CONTAINER_E_SPEC, "/root/ro: unknown field"},
	{DOC("\"hostname\":\"a/b\""), CONTAINER_E_SPEC, "/hostname: not a valid host name"},
	{DOC("\"mounts\":[{\"type\":\"tmpfs\"}]"), CONTAINER_E_SPEC,
	 "/mounts/0/destination: required field is missing"},
	{DOC("\"mounts\":[{\"destination\":\"/a/../b\",\"type\":\"tmpfs\"}]"), CONTAINER_E_SPEC,
	 "/mounts/0/destination: \"/a/../b\" has a \".\" or \"..\" component"},
	{DOC("\"mounts\":[{\"destination\":\"/a\",\"type\":\"nfs\"}]"), CONTAINER_E_SPEC,
	 "/mounts/0/type: unsupported mount type \"nfs\""},
	{DOC("\"mounts\":[{\"destination\":\"/a\",\"type\":\"tmpfs\",\"options\":[\"size=1,uid=0\"]}]"),
	 CONTAINER_E_SPEC, "/mounts/0/options/0: bad value"},
	{DOC("\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\"}]"), CONTAINER_E_SPEC,
	 "/mounts/0/source: a bind mount needs a source"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"time\"}]}"), CONTAINER_E_SPEC,
	 "/linux/namespaces/0/type: unknown namespace \"time\""},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]}"), CONTAINER_E_SPEC,
	 "/linux/namespaces/1/type: namespace \"pid\" listed twice"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/1/ns/pid\"}]}"), CONTAINER_E_SPEC,
	 "/linux/namespaces/0/path: joining an existing pid namespace is not supported"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"net\"}]}"), CONTAINER_E_SPEC,
	 "/linux/namespaces/0/path: must be an absolute path"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"ipc\",\"path\":7}]}"), CONTAINER_E_SPEC,
	 "/linux/namespaces/0/path: expected a string"},
	{DOC("\"hostname\":\"h\",\"linux\":{\"namespaces\":[{\"type\":\"uts\",\"path\":\"/run/u\"}]}"),
	 CONTAINER_E_SPEC, "/hostname: needs the container's own uts namespace"},
	{DOC("\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":1}]}"),
	 CONTAINER_E_MAPPING, "/linux/uidMappings: mappings need a \"user\" namespace"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"user\"}],\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":1}]}"),
	 CONTAINER_E_MAPPING, "/linux/gidMappings: uid and gid mappings go together"},
	{DOC("\"linux\":{\"namespaces\":[{\"type\":\"user\"}],\"uidMappings\":[],\"gidMappings\":[]}"),
	 CONTAINER_E_SPEC, "/linux/uidMappings: expected 1 to 340 mappings"},
	{DOC("\"linux\":{\"resources\":{\"memory\":{\"limit\":1}}}"), CONTAINER_E_SPEC,
	 "/linux/resources/memory/limit: 1 out of range"},
	{DOC("\"linux\":{\"resources\":{\"pids\":{}}}"), CONTAINER_E_SPEC,
	 "/linux/resources/pids/limit: required field is missing"},
	{DOC("\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rwm\"}]}}"), 0, NULL},
	{DOC("\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}}"),
	 CONTAINER_E_SPEC, "/linux/resources/devices/0/access: expected letters of \"rwm\", each once"},
	{DOC("\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rr\"}]}}"),
	 CONTAINER_E_SPEC, "/linux/resources/devices/0/access: expected letters of \"rwm\", each once"},
	{DOC("\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"type\":\"p\"}]}}"),
	 CONTAINER_E_SPEC, "/linux/resources/devices/0/type: expected \"a\", \"c\" or \"b\""},
	{DOC("\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"major\":-2}]}}"),
	 CONTAINER_E_SPEC, "/linux/resources/devices/0/major: -2 out of range"},
	{DOC("\"linux\":{\"resources\":{\"blockIO\":{}}}"), CONTAINER_E_SPEC,
	 "/linux/resources/blockIO: unknown field"},
	{DOC("\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_MAYBE\"}}"), CONTAINER_E_SPEC,
	 "/linux/seccomp/defaultAction: unknown action \"SCMP_ACT_MAYBE\""},
	{DOC("\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_Z80\"]}}"),
	 CONTAINER_E_SPEC, "/linux/seccomp/architectures/0: unknown architecture"},
	{DOC("\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[]}]}}"),
	 CONTAINER_E_SPEC, "/linux/seccomp/syscalls/0/args: unknown field"},
	{DOC("\"linux\":{\"maskedPaths\":[\"relative\"]}"), CONTAINER_E_SPEC,
	 "/linux/maskedPaths/0: \"relative\" is not a clean absolute path"},
	{DOC("\"annotations\":{\"org.scm.profiles\":\"a,,b\"}"), CONTAINER_E_SPEC,
	 "/annotations/org.scm.profiles: empty item in the list"},
	{DOC("\"annotations\":{\"org.scm.profiles\":3}"), CONTAINER_E_SPEC,
	 "/annotations/org.scm.profiles: expected a string"},
	{DOC("\"annotations\":{\"a/b\":1}"), CONTAINER_E_SPEC, "/annotations/a~1b: expected a string"},
	{DOC("\"annotations\":{\"vendor.x\":\"free text, allowed\"}"), 0, NULL},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		container_spec *s = NULL;
		scm_error *err = NULL;
		int r = container_spec_parse(cases[i].json, strlen(cases[i].json), NULL, &s, &err);
		if (r != cases[i].code || (cases[i].error && (!err || !strstr(err->message, cases[i].error)))) {
			fail_msg("case %zu: %s\n  got %d \"%s\", want %d \"%s\"", i, cases[i].json, r,
				 err ? err->message : "", cases[i].code, cases[i].error ? cases[i].error : "");
		}
		if (r == 0)
			assert_non_null(s);
		else
			assert_null(s); /* ret untouched on failure */
		container_spec_free(s);
		scm_error_free(err);
	}
}

static const char good[] =
	"{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,\"user\":{\"uid\":5,\"gid\":6,"
	"\"additionalGids\":[7]},\"args\":[\"sh\",\"-c\",\"true\"],\"env\":[\"A=1\"],\"cwd\":\"/w\","
	"\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_KILL\"]},"
	"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":100,\"soft\":50}],\"noNewPrivileges\":true},"
	"\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"box\","
	"\"mounts\":[{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	"\"options\":[\"nosuid\",\"mode=1777\",\"size=1m\"]},{\"destination\":\"/data\",\"source\":\"d\","
	"\"options\":[\"rbind\",\"ro\"]}],"
	"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"user\"},{\"type\":\"network\"}],"
	"\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":10}],"
	"\"gidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":10}],"
	"\"resources\":{\"memory\":{\"limit\":67108864},\"pids\":{\"limit\":32},"
	"\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000}},"
	"\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\",\"getppid\"],"
	"\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}]},"
	"\"maskedPaths\":[\"/proc/foo\"],\"readonlyPaths\":[\"/proc/bar\"]},"
	"\"annotations\":{\"org.scm.profiles\":\"base, desktop\",\"org.scm.provides\":\"vdisk\"}}";

static void test_good_values(void **state)
{
	(void)state;
	container_spec *s = NULL;
	scm_error *err = NULL;
	int r = container_spec_parse(good, strlen(good), NULL, &s, &err);
	if (r)
		fail_msg("%s", err ? err->message : "");
	assert_int_equal(s->uid, 5);
	assert_int_equal(s->gid, 6);
	assert_int_equal(s->n_additional_gids, 1);
	assert_string_equal(s->args[2], "true");
	assert_null(s->args[3]);
	assert_string_equal(s->env[0], "A=1");
	assert_string_equal(s->cwd, "/w");
	assert_true(s->no_new_privileges);
	assert_int_equal(s->caps.bounding, (1ull << 5) | (1ull << 0));
	assert_int_equal(s->caps.effective, 1ull << 5);
	assert_int_equal(s->n_rlimits, 1);
	assert_int_equal(s->rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(s->rlimits[0].soft, 50);
	assert_string_equal(s->root_path, "./rootfs");
	assert_true(s->root_readonly);
	assert_string_equal(s->hostname, "box");
	assert_int_equal(s->n_mounts, 2);
	assert_string_equal(s->mounts[0].data, "mode=1777,size=1m");
	assert_true(s->mounts[0].flags & MS_NOSUID);
	assert_string_equal(s->mounts[1].type, "bind");
	assert_string_equal(s->mounts[1].source, "./d");
	assert_true(s->mounts[1].recursive);
	assert_true(s->mounts[1].readonly);
	assert_int_equal(s->namespaces, CONTAINER_NS_PID | CONTAINER_NS_USER | CONTAINER_NS_NET);
	assert_int_equal(s->uid_mappings[0].host_id, 1000);
	assert_int_equal(s->resources.memory_limit, 67108864);
	assert_int_equal(s->resources.pids_limit, 32);
	assert_int_equal(s->resources.cpu_shares, 512);
	assert_int_equal(s->resources.cpu_quota, 50000);
	assert_int_equal(s->n_seccomp_rules, 2);
	assert_string_equal(s->seccomp_rules[1].name, "getppid");
	assert_int_equal(s->seccomp_rules[1].errno_ret, 38);
	assert_string_equal(s->masked_paths[0], "/proc/foo");
	assert_string_equal(s->profiles[0], "base");
	assert_string_equal(s->profiles[1], "desktop");
	assert_null(s->profiles[2]);
	assert_string_equal(s->provides[0], "vdisk");
	container_spec_free(s);
}

static void test_quick(void **state)
{
	(void)state;
	char *argv[] = {"/bin/echo", "hi", NULL};
	container_spec *s = NULL;
	assert_int_equal(container_spec_quick(argv, &s), 0);
	assert_null(s->root_path);
	assert_true(s->quick && s->no_new_privileges && s->root_readonly);
	assert_int_equal(s->caps.bounding | s->caps.effective | s->caps.permitted, 0);
	assert_true(s->namespaces & CONTAINER_NS_NET);
	assert_string_equal(s->args[1], "hi");
	bool proc = false, tmp = false, run = false;
	for (size_t i = 0; i < s->n_mounts; i++) {
		proc |= !strcmp(s->mounts[i].destination, "/proc");
		tmp |= !strcmp(s->mounts[i].destination, "/tmp");
		run |= !strcmp(s->mounts[i].destination, "/run");
	}
	assert_true(proc && tmp && run);
	container_spec_free(s);
	char *empty[] = {NULL};
	assert_int_equal(container_spec_quick(empty, &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_quick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
