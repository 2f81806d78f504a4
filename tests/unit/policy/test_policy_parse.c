/* test_policy_parse.c: the profile parser against a table of good,
 * malformed and hostile inputs. Every refusal must name where: line and
 * column for syntax, the JSON pointer for schema errors. */
#include "helpers.h"

typedef struct parse_case {
	const char *title;
	const char *json; /* quotes as ' unless raw */
	bool raw;         /* bytes as given (for invalid UTF-8, lone quotes) */
	int code;         /* 0 or SCM_E_INVALID */
	const char *want; /* substring of the error message */
} parse_case;

#define OK(t, j) { t, j, false, 0, NULL }
#define BAD(t, j, w) { t, j, false, SCM_E_INVALID, w }
#define RAWBAD(t, j, w) { t, j, true, SCM_E_INVALID, w }

static const parse_case cases[] = {
	OK("minimal", "{'name':'test','priority':0}"),
	OK("full", "{'name':'test','priority':-5,'description':'d','services':[{'service':'echo',"
		   "'methods':['ping','echo'],'action':'allow','args':{'data':{'eq':'x'}},'settings':{'w':7,'l':'x','b':true}},"
		   "{'service':'v*','methods':'*','action':'deny'}],'sandbox':{'syscalls':{'allow':['read'],"
		   "'deny':['ptrace']},'capabilities':{'allow':['CAP_CHOWN']},'mounts':[{'source':'/a',"
		   "'destination':'/b','readonly':false}],'network':'loopback','limits':{'memory':1048576,"
		   "'pids':3,'cpu':50},'log':{'max_bytes':65536,'files':7}}}"),
	OK("all constraint forms", "{'name':'test','priority':1,'services':[{'service':'vdisk','methods':['open'],"
				   "'action':'allow','args':{'path':{'path_prefix':'/data'},'readonly':{'in':[true]},"
				   "'n':{'range':[0,10.5]},'s':{'prefix':'a'}}}]}"),
	RAWBAD("empty file", "", "1:1: syntax error: empty document"),
	RAWBAD("truncated", "{\"name\": \"test\",\n  \"priority\": 1", "2:16: syntax error: unexpected end"),
	RAWBAD("trailing comma", "{\"name\":\"test\",\"priority\":1,}", "1:29: syntax error: expected a string key"),
	RAWBAD("garbage after", "{\"name\":\"test\",\"priority\":1} x", "1:30: syntax error: unexpected data"),
	RAWBAD("duplicate key", "{\"name\":\"test\",\n\"priority\":1,\n\"priority\":2}",
	       "3:1: syntax error: duplicate key \"priority\" (first at line 2 column 1)"),
	RAWBAD("duplicate key by escape", "{\"name\":\"test\",\"priority\":1,\"n\\u0061me\":\"x\"}",
	       "duplicate key \"name\""),
	RAWBAD("invalid UTF-8", "{\"name\":\"te\xff\",\"priority\":1}", "1:12: syntax error: invalid UTF-8"),
	RAWBAD("overlong UTF-8", "{\"name\":\"\xc0\xaf\",\"priority\":1}", "invalid UTF-8"),
	RAWBAD("UTF-8 surrogate", "{\"name\":\"\xed\xa0\x80\",\"priority\":1}", "invalid UTF-8"),
	RAWBAD("lone surrogate escape", "{\"name\":\"\\ud800\",\"priority\":1}", "lone UTF-16 surrogate"),
	RAWBAD("NUL escape", "{\"name\":\"a\\u0000b\",\"priority\":1}", "NUL character"),
	RAWBAD("control char", "{\"name\":\"a\tb\",\"priority\":1}", "control character 0x09"),
	RAWBAD("huge integer", "{\"name\":\"test\",\"priority\":123456789012345678901234567890}",
	       "1:27: syntax error: integer 123456789012345678901234567890 out of range"),
	RAWBAD("huge double", "{\"name\":\"test\",\"priority\":1e999}", "number 1e999 out of range"),
	RAWBAD("leading zero", "{\"name\":\"test\",\"priority\":01}", "expected ',' or '}'"),
	RAWBAD("single quotes", "{'name':'test'}", "expected a string key"),
	RAWBAD("comment", "{\"name\":\"test\", /* hi */ \"priority\":1}", "expected a string key"),
	BAD("not an object", "[1,2]", "test.json:1:1: /: expected a profile object, got array"),
	BAD("missing name", "{'priority':1}", "missing \"name\""),
	BAD("missing priority", "{'name':'test'}", "missing \"priority\""),
	BAD("priority a string", "{'name':'test','priority':'high'}", "/priority: expected an integer, got string"),
	BAD("priority a double", "{'name':'test','priority':1.5}", "/priority: expected an integer, got double"),
	BAD("priority out of range", "{'name':'test','priority':10000000}", "/priority: 10000000 is out of range"),
	BAD("name differs from file", "{'name':'other','priority':1}", "must live in other.json, not test.json"),
	BAD("bad name", "{'name':'a b','priority':1}", "/name: bad profile name"),
	BAD("unknown top key", "{'name':'test','priority':1,'servces':[]}", "/servces: unknown key \"servces\""),
	BAD("services not array", "{'name':'test','priority':1,'services':{}}", "/services: expected an array"),
	BAD("rule not object", "{'name':'test','priority':1,'services':[3]}", "/services/0: expected a rule object"),
	BAD("rule typo key", "{'name':'test','priority':1,'services':[{'service':'echo','methods':'*',"
			     "'acton':'allow'}]}", "/services/0/acton: unknown key"),
	BAD("bad action", "{'name':'test','priority':1,'services':[{'service':'echo','methods':'*','action':'maybe'}]}",
	    "/services/0/action: expected \"allow\" or \"deny\""),
	BAD("methods empty", "{'name':'test','priority':1,'services':[{'service':'echo','methods':[],'action':'allow'}]}",
	    "/services/0/methods: expected 1 to 256"),
	BAD("methods wrong type", "{'name':'test','priority':1,'services':[{'service':'echo','methods':'ping','action':'allow'}]}",
	    "/services/0/methods: expected an array of method names or \"*\""),
	BAD("method twice", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['a','a'],'action':'allow'}]}",
	    "/services/0/methods/1: method \"a\" is listed twice"),
	BAD("bad service glob", "{'name':'test','priority':1,'services':[{'service':'ec/ho','methods':'*','action':'allow'}]}",
	    "/services/0/service: bad service name"),
	BAD("deny with args", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['greet'],"
			      "'action':'deny','args':{'name':{'eq':'x'}}}]}", "a deny rule cannot carry args"),
	BAD("two constraint kinds", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['greet'],"
				    "'action':'allow','args':{'name':{'eq':'x','prefix':'y'}}}]}",
	    "/services/0/args/name: expected one of"),
	BAD("range reversed", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['sleep'],"
			      "'action':'allow','args':{'ms':{'range':[5,1]}}}]}", "range: lo is greater than hi"),
	BAD("in empty", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['sleep'],"
			"'action':'allow','args':{'ms':{'in':[]}}}]}", "in: expected an array of 1 to 256"),
	BAD("eq object", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['sleep'],"
			 "'action':'allow','args':{'ms':{'eq':{}}}}]}", "eq: expected a bool, number or string"),
	BAD("relative path_prefix", "{'name':'test','priority':1,'services':[{'service':'vdisk','methods':['open'],"
				    "'action':'allow','args':{'path':{'path_prefix':'data'}}}]}", "path_prefix: \"data\" is not an absolute path"),
	BAD("path_prefix dotdot", "{'name':'test','priority':1,'services':[{'service':'vdisk','methods':['open'],"
				  "'action':'allow','args':{'path':{'path_prefix':'/srv/../etc'}}}]}",
	    "/services/0/args/path: path_prefix: \"/srv/../etc\" has a \"..\" component"),
	BAD("range bound above int64", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['sleep'],"
				       "'action':'allow','args':{'ms':{'range':[0,18446744073709551615]}}}]}",
	    "integer 18446744073709551615 out of range (64-bit signed)"),
	BAD("eq above int64", "{'name':'test','priority':1,'services':[{'service':'echo','methods':['sleep'],"
			      "'action':'allow','args':{'ms':{'eq':9223372036854775808}}}]}", "out of range (64-bit signed)"),
	BAD("unknown capability (typo)", "{'name':'test','priority':1,'sandbox':{'capabilities':{'deny':['CAP_SYS_ADMN']}}}",
	    "/sandbox/capabilities/deny/0: unknown capability \"CAP_SYS_ADMN\" (did you mean CAP_SYS_ADMIN?)"),
	BAD("unknown capability", "{'name':'test','priority':1,'sandbox':{'capabilities':{'allow':['CAP_EVERYTHING']}}}",
	    "/sandbox/capabilities/allow/0: unknown capability \"CAP_EVERYTHING\""),
	BAD("unknown syscall", "{'name':'test','priority':1,'sandbox':{'syscalls':{'deny':['ptrac']}}}",
	    "/sandbox/syscalls/deny/0: unknown system call \"ptrac\""),
	BAD("syscall twice", "{'name':'test','priority':1,'sandbox':{'syscalls':{'allow':['read'],'deny':['read']}}}",
	    "/sandbox/syscalls/deny/0: syscall:read is already set at /sandbox/syscalls/allow/0"),
	BAD("bad syscall", "{'name':'test','priority':1,'sandbox':{'syscalls':{'allow':['Read!']}}}", "bad syscall name"),
	BAD("bad capability", "{'name':'test','priority':1,'sandbox':{'capabilities':{'allow':['chown']}}}",
	    "bad capability name"),
	BAD("mount dotdot", "{'name':'test','priority':1,'sandbox':{'mounts':[{'source':'/a/../etc','destination':'/b'}]}}",
	    "/sandbox/mounts/0/source: source \"/a/../etc\" has a \"..\" component"),
	BAD("mount destination dotdot", "{'name':'test','priority':1,'sandbox':{'mounts':[{'source':'/a','destination':'/b/..'}]}}",
	    "/sandbox/mounts/0/destination: destination \"/b/..\" has a \"..\" component"),
	BAD("mount relative", "{'name':'test','priority':1,'sandbox':{'mounts':[{'source':'a','destination':'/b'}]}}",
	    "source \"a\" is not an absolute path"),
	BAD("mount twice by respelling", "{'name':'test','priority':1,'sandbox':{'mounts':[{'source':'/a','destination':'/b'},"
					 "{'source':'/c','destination':'//b/./'}]}}", "mount:/b is already set"),
	BAD("mount twice", "{'name':'test','priority':1,'sandbox':{'mounts':[{'source':'/a','destination':'/b'},"
			   "{'source':'/c','destination':'/b'}]}}", "mount:/b is already set"),
	BAD("bad network", "{'name':'test','priority':1,'sandbox':{'network':'internet'}}", "/sandbox/network: expected"),
	BAD("memory too small", "{'name':'test','priority':1,'sandbox':{'limits':{'memory':1}}}",
	    "/sandbox/limits/memory: 1 is out of range"),
	BAD("negative pids", "{'name':'test','priority':1,'sandbox':{'limits':{'pids':-1}}}", "out of range"),
	BAD("cpu weight", "{'name':'test','priority':1,'sandbox':{'limits':{'cpu':0}}}", "/sandbox/limits/cpu"),
	BAD("log too small", "{'name':'test','priority':1,'sandbox':{'log':{'max_bytes':100}}}",
	    "/sandbox/log/max_bytes: 100 is out of range"),
	BAD("log files", "{'name':'test','priority':1,'sandbox':{'log':{'files':8}}}", "/sandbox/log/files: 8 is out of range"),
	BAD("log unknown key", "{'name':'test','priority':1,'sandbox':{'log':{'size':1}}}", "/sandbox/log/size: unknown key"),
	/* the old place of the graphics weight names the new form */
	BAD("gfx weight moved", "{'name':'test','priority':1,'sandbox':{'gfx':{'weight':7}}}",
	    "/sandbox/gfx: per-service settings moved to the service's allow rule: {\"service\": \"gfx-*\", "
	    "\"methods\": [...], \"action\": \"allow\", \"settings\": {\"weight\": 7}}"),
	BAD("settings on deny", "{'name':'test','priority':1,'services':[{'service':'gfx','methods':'*',"
				"'action':'deny','settings':{'weight':1}}]}", "/services/0/settings: a deny rule cannot carry settings"),
	BAD("settings not object", "{'name':'test','priority':1,'services':[{'service':'gfx','methods':'*',"
				   "'action':'allow','settings':[1]}]}", "/services/0/settings: expected an object"),
	BAD("setting an array", "{'name':'test','priority':1,'services':[{'service':'gfx','methods':'*',"
				"'action':'allow','settings':{'weight':[1]}}]}", "/services/0/settings/weight: expected a bool, number or string"),
	BAD("setting bad name", "{'name':'test','priority':1,'services':[{'service':'gfx','methods':'*',"
				"'action':'allow','settings':{'a b':1}}]}", "bad setting name"),
};

static void run_case(void **state)
{
	const parse_case *c = *state;
	char *text = c->raw ? strdup(c->json) : J(c->json);
	policy_profile *p = NULL;
	scm_error *err = NULL;
	int r = policy_profile_parse("test.json", text, strlen(text), &p, &err);
	if (c->code == 0) {
		if (r != 0)
			scm_error_print(err, stderr);
		assert_int_equal(r, 0);
		assert_non_null(p);
		assert_string_equal(policy_profile_name(p), "test");
	} else {
		assert_int_equal(r, c->code);
		assert_null(p);
		assert_non_null(err);
		if (!strstr(err->message, c->want))
			fail_msg("error \"%s\" does not contain \"%s\"", err->message, c->want);
		assert_non_null(strstr(err->message, "test.json"));
	}
	policy_profile_free(p);
	scm_error_free(err);
	free(text);
}

/* Hostile shapes too big for the table. */
static void test_deep_nesting(void **state)
{
	size_t depth = 100000;
	char *s = malloc(depth * 2 + 64);
	size_t n = (size_t)sprintf(s, "{\"name\":\"test\",\"priority\":1,\"x\":");
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	policy_profile *p = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_profile_parse("test.json", s, n, &p, &err), SCM_E_INVALID);
	assert_non_null(strstr(err->message, "nesting deeper than 16 levels"));
	assert_non_null(strstr(err->message, "1:"));
	scm_error_free(err);
	free(s);
}

static void test_ten_megabytes(void **state)
{
	size_t n = 10u * 1024 * 1024;
	char *dir = tmpdir_new(), path[512];
	char *s = malloc(n);
	memset(s, ' ', n);
	memcpy(s, "{\"name\":\"big\",\"priority\":1}", 27);
	snprintf(path, sizeof(path), "%s/big.json", dir);
	FILE *f = fopen(path, "we");
	assert_int_equal(fwrite(s, 1, n, f), n);
	fclose(f);
	policy_profile *p = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_profile_load(path, &p, &err), SCM_E_INVALID);
	assert_non_null(strstr(err->message, "10485760 bytes, more than the 1048576"));
	scm_error_free(err);
	err = NULL;
	assert_int_equal(policy_profile_parse("big.json", s, n, &p, &err), SCM_E_INVALID);
	scm_error_free(err);
	rm_rf(dir);
	free(dir);
	free(s);
}

static void test_many_keys(void **state)
{
	/* 50,000 distinct keys and one duplicate at the end: found, quickly */
	size_t n = 0, cap = 2u * 1024 * 1024;
	char *s = malloc(cap);
	n += (size_t)sprintf(s + n, "{\"name\":\"test\",\"priority\":1,\"x\":{");
	for (int i = 0; i < 50000; i++)
		n += (size_t)sprintf(s + n, "\"k%d\":0,", i);
	n += (size_t)sprintf(s + n, "\"k7\":1}}");
	policy_profile *p = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_profile_parse("test.json", s, n, &p, &err), SCM_E_INVALID);
	/* the file is over 512 KiB but under the limit: the duplicate is what
	 * the scanner reports */
	assert_non_null(strstr(err->message, "duplicate key \"k7\""));
	scm_error_free(err);
	free(s);
}

static void test_schema_error_has_line(void **state)
{
	const char *text = "{\n  \"name\": \"test\",\n  \"priority\": 1,\n  \"services\": [\n"
			   "    { \"service\": \"echo\", \"methods\": \"*\", \"action\": \"allw\" }\n  ]\n}\n";
	policy_profile *p = NULL;
	scm_error *err = NULL;
	assert_int_equal(policy_profile_parse("test.json", text, strlen(text), &p, &err), SCM_E_INVALID);
	assert_non_null(strstr(err->message, "test.json:5:"));
	assert_non_null(strstr(err->message, "/services/0/action"));
	scm_error_free(err);
}

int main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct CMUnitTest *t = calloc(n + 4, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t[i] = (struct CMUnitTest){ .name = cases[i].title, .test_func = run_case,
					    .initial_state = (void *)&cases[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_deep_nesting);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_ten_megabytes);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_many_keys);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_schema_error_has_line);
	int r = _cmocka_run_group_tests("policy_parse", t, n, NULL, NULL);
	free(t);
	return r;
}
