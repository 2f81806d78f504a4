/* Unit tests of scmd's audit trail and log lines: the journal fields a
 * record becomes (scm/scmd/audit-record.c; checked here because the journal
 * cannot be pointed elsewhere), the file sink's cap and rotation
 * (scm/scmd/audit-file.c), folding of repeated connects, allowed ones too
 * (scm/scmd/audit.c, with a clock the test moves), and the sd-daemon prefix of
 * log lines (scm/scmd/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scmd.h"

static const char *field(char **f, const char *key)
{
	size_t n = strlen(key);
	for (; f && *f; f++)
		if (strncmp(*f, key, n) == 0 && (*f)[n] == '=')
			return *f + n + 1;
	return NULL;
}

static void connect_record_fields(void **state)
{
	char **f = NULL;
	scm_error *e = NULL;
	const char *rec = "{\"ts\":\"2026-01-01T00:00:00.000000Z\",\"event\":\"connect\",\"endpoint\":\"app\","
			  "\"uid\":1000,\"pid\":42,\"service\":\"echo\",\"profiles\":[\"a\",\"b\"],"
			  "\"decision\":\"deny\",\"code\":\"denied\",\"reason\":\"no rule\",\"origin\":\"x.json#/r\","
			  "\"folded\":3}";
	assert_int_equal(audit_record_fields(rec, &f, &e), 0);
	assert_string_equal(field(f, "MESSAGE_ID"), "b225e8c17d00433da8a99ba2cad0cfe1");
	assert_string_equal(field(f, "SYSLOG_IDENTIFIER"), "scmd");
	assert_string_equal(field(f, "PRIORITY"), "5"); /* a denial is a notice */
	assert_string_equal(field(f, "SCM_EVENT"), "connect");
	assert_string_equal(field(f, "SCM_CALLER"), "app"); /* the endpoint is the caller's identity */
	assert_null(field(f, "SCM_ENDPOINT"));
	assert_string_equal(field(f, "SCM_SERVICE"), "echo");
	assert_string_equal(field(f, "SCM_DECISION"), "deny");
	assert_string_equal(field(f, "SCM_UID"), "1000");
	assert_string_equal(field(f, "SCM_PROFILES"), "[\"a\",\"b\"]");
	assert_string_equal(field(f, "SCM_FOLDED"), "3");
	assert_null(field(f, "SCM_TS")); /* the journal stamps entries itself */
	const char *msg = field(f, "MESSAGE");
	assert_non_null(strstr(msg, "connect endpoint=app uid=1000 pid=42 service=echo"));
	assert_non_null(strstr(msg, "decision=deny"));
	audit_fields_free(f);
}

static void other_records_and_ids(void **state)
{
	char **f = NULL;
	scm_error *e = NULL;
	assert_int_equal(audit_record_fields("{\"event\":\"endpoint-create\",\"endpoint\":\"app\",\"owner\":0}", &f, &e), 0);
	assert_string_equal(field(f, "SCM_ENDPOINT"), "app"); /* not a caller here */
	assert_null(field(f, "SCM_CALLER"));
	assert_string_equal(field(f, "PRIORITY"), "6");
	assert_string_equal(field(f, "MESSAGE_ID"), audit_message_id("endpoint-create"));
	audit_fields_free(f);
	assert_int_equal(audit_record_fields("{\"event\":\"policy-reload\",\"result\":\"ok\",\"endpoints_denied\":[]}", &f, &e), 0);
	assert_string_equal(field(f, "SCM_ENDPOINTS_DENIED"), "[]");
	assert_string_equal(field(f, "SCM_RESULT"), "ok");
	audit_fields_free(f);
	/* every kind has its own id; unknown kinds share one */
	const char *kinds[] = { "connect", "revoke", "protocol-error", "endpoint-refused", "endpoint-create",
				"endpoint-remove", "service-register", "service-unregister", "container-start",
				"container-exit", "container-failed", "container-pause", "container-resume",
				"container-update", "container-stop", "container-remove", "policy-reload", "something-new" };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		assert_int_equal(strlen(audit_message_id(kinds[i])), 32);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(audit_message_id(kinds[i]), audit_message_id(kinds[j]));
	}
	assert_string_equal(audit_message_id("else"), audit_message_id("something-new"));
	/* not a record: a clear error */
	assert_int_not_equal(audit_record_fields("[1]", &f, &e), 0);
	assert_non_null(e);
	assert_non_null(strstr(e->message, "\"event\""));
	scm_error_free(e);
}

static char dir[] = "/tmp/test-scmd-audit-XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-scmd-audit-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static off_t size_of(const char *name)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void file_is_capped_and_rotated(void **state)
{
	char path[512], line[100];
	struct audit_file *af = NULL;
	scm_error *e = NULL;

	snprintf(path, sizeof(path), "%s/audit.log", dir);
	assert_int_equal(audit_file_open(path, 1000, 2, &af, &e), 0);
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (int i = 0; i < 100; i++) /* 10000 bytes through a 3 x 1000-byte trail */
		assert_int_equal(audit_file_write(af, line, sizeof(line)), 0);
	audit_file_close(af);
	assert_true(size_of("audit.log") > 0 && size_of("audit.log") <= 1000);
	assert_int_equal(size_of("audit.log.1"), 1000);
	assert_int_equal(size_of("audit.log.2"), 1000);
	assert_int_equal(size_of("audit.log.3"), -1);
	/* reopened, it goes on from the size on disk */
	assert_int_equal(audit_file_open(path, 1000, 0, &af, &e), 0);
	for (int i = 0; i < 30; i++)
		assert_int_equal(audit_file_write(af, line, sizeof(line)), 0);
	audit_file_close(af);
	assert_true(size_of("audit.log") <= 1000); /* keep 0: truncated in place */
	/* a line longer than the cap still gets written, alone */
	char big[3000];
	memset(big, 'y', sizeof(big));
	assert_int_equal(audit_file_open(path, 1000, 1, &af, &e), 0);
	assert_int_equal(audit_file_write(af, big, sizeof(big)), 0);
	audit_file_close(af);
	assert_int_equal(size_of("audit.log"), 3000);
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static size_t count_lines(const char *name, const char *needle)
{
	char p[512], buf[4096];
	size_t n = 0;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "re");
	while (f && fgets(buf, sizeof(buf), f))
		n += strstr(buf, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static void connects_in_a_loop_are_folded(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	struct audit_opts o = { .sink = AUDIT_FILE, .path = path, .max_bytes = 1 << 20, .clock = fake_clock };
	scm_error *e = NULL;
	char *profiles[] = { "app", NULL };
	struct endpoint ep = { .name = "app", .profiles = profiles };
	struct ucred cred = { .pid = 1, .uid = 2, .gid = 3 };

	fake_now = 1000;
	struct audit *a = audit_open(&o, &e);
	assert_non_null(a);
	assert_string_equal(audit_sink_name(a), "file");
	for (int i = 0; i < 500; i++) {
		audit_connect(a, &ep, &cred, "echo", true, 0, "", "p.json#/rules/0", 10 + i);
		audit_connect(a, &ep, &cred, "other", false, SCM_E_DENIED, "no rule", "p.json", 0);
		fake_now += 1000; /* 500 ms in all: inside one fold window */
	}
	assert_int_equal(count_lines("audit.log", "\"decision\":\"allow\""), 1);
	assert_int_equal(count_lines("audit.log", "\"decision\":\"deny\""), 1);
	/* the window over, the next one written says how many it stands for */
	fake_now += AUDIT_FOLD_USEC;
	audit_connect(a, &ep, &cred, "echo", true, 0, "", "p.json#/rules/0", 9999);
	audit_connect(a, &ep, &cred, "other", false, SCM_E_DENIED, "no rule", "p.json", 0);
	audit_close(a);
	assert_int_equal(count_lines("audit.log", "\"channel\":9999,\"folded\":499}"), 1);
	assert_int_equal(count_lines("audit.log", "\"reason\":\"no rule\",\"origin\":\"p.json\",\"folded\":499}"), 1);
	/* the format of a line is what it was: tools read these files */
	assert_int_equal(count_lines("audit.log", "\"event\":\"connect\",\"endpoint\":\"app\",\"uid\":2,\"pid\":1,"
						  "\"service\":\"echo\",\"profiles\":[\"app\"],\"decision\":\"allow\","
						  "\"origin\":\"p.json#/rules/0\",\"channel\":10}"), 1);
}

static void journal_asked_for_but_absent(void **state)
{
	struct audit_opts o = { .sink = AUDIT_JOURNAL, .path = "/nonexistent/audit.log" };
	scm_error *e = NULL;
	if (audit_journal_present())
		skip(); /* a machine with journald: nothing to check here */
	assert_null(audit_open(&o, &e));
	assert_non_null(e);
	assert_non_null(strstr(e->message, "journal"));
	scm_error_free(e);
	/* auto on a machine without the journal: the file */
	o.sink = AUDIT_AUTO;
	char path[512];
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	o.path = path;
	struct audit *a = audit_open(&o, &e);
	assert_non_null(a);
	assert_string_equal(audit_sink_name(a), "file");
	audit_close(a);
}

static void log_lines_carry_the_priority(void **state)
{
	char buf[64];
	assert_int_equal(log_format(buf, sizeof(buf), LOG_ERR, true, "boom"), strlen("<3>scmd: boom\n"));
	assert_string_equal(buf, "<3>scmd: boom\n");
	log_format(buf, sizeof(buf), LOG_WARNING, false, "hm");
	assert_string_equal(buf, "<4>hm\n"); /* on a journal stream: no tag */
	log_format(buf, sizeof(buf), LOG_INFO, true, "ok");
	assert_string_equal(buf, "<6>scmd: ok\n");
	/* too long: cut, still one line */
	char lng[200];
	memset(lng, 'z', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = 0;
	size_t n = log_format(buf, sizeof(buf), LOG_NOTICE, true, lng);
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(strncmp(buf, "<5>scmd: zzz", 12), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connect_record_fields),
		cmocka_unit_test(other_records_and_ids),
		cmocka_unit_test_setup_teardown(file_is_capped_and_rotated, setup, teardown),
		cmocka_unit_test_setup_teardown(connects_in_a_loop_are_folded, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_asked_for_but_absent, setup, teardown),
		cmocka_unit_test(log_lines_carry_the_priority),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
