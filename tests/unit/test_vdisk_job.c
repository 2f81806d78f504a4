/* test_vdisk_job.c: the vdisk job state machine (every state x event) and
 * the job journal: a round trip, and a table of damaged journals, each
 * refused with the line at fault. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scm/macro.h"
#include "vjob.h"

#define R VJOB_RUNNING
#define P VJOB_PAUSED
#define W VJOB_WAITING
#define X (-1) /* refused */

static void test_machine(void **state)
{
	/* rows: running, paused, waiting; columns: the events in enum order
	 * (pause, resume, cancel, switch, done, fail) */
	static const int want[3][VJOB_EV_MAX] = {
		{ P, R, VJOB_CANCELLED, W, VJOB_DONE, VJOB_FAILED },
		{ P, R, VJOB_CANCELLED, X, X, VJOB_FAILED },
		{ P, W, VJOB_CANCELLED, X, VJOB_DONE, VJOB_FAILED },
	};
	for (int s = 0; s < 3; s++)
		for (int ev = 0; ev < VJOB_EV_MAX; ev++) {
			enum vjob_state n = 99;
			_cleanup_(scm_error_freep) scm_error *e = NULL;
			int r = vjob_transition(s, ev, &n, &e);
			print_message("%s + %d: %d %s\n", vjob_state_name(s), ev, r, e ? e->message : "");
			if (want[s][ev] == X) {
				assert_int_equal(r, -EINVAL);
				assert_non_null(e);
				assert_int_equal(n, 99);
			} else {
				assert_int_equal(r, 0);
				assert_int_equal(n, want[s][ev]);
			}
		}
	/* nothing moves a finished job */
	for (int s = VJOB_DONE; s < VJOB_STATE_MAX; s++)
		for (int ev = 0; ev < VJOB_EV_MAX; ev++) {
			enum vjob_state n;
			_cleanup_(scm_error_freep) scm_error *e = NULL;
			assert_int_equal(vjob_transition(s, ev, &n, &e), -EINVAL);
			assert_non_null(strstr(e->message, "already"));
		}
	for (int k = 0; k < VJOB_KIND_MAX; k++)
		assert_int_equal(vjob_kind_parse(vjob_kind_name(k)), k);
	assert_int_equal(vjob_kind_parse("mirror"), -EINVAL);
}

static const struct vjob_journal sample = { .version = 1, .id = 7, .kind = VJOB_COMMIT, .state = VJOB_PAUSED,
					    .disk = "/srv/d/child.vhdx", .target = "/srv/d/base.vhdx",
					    .done = 1048576, .total = 8388608 };

static void test_roundtrip(void **state)
{
	char buf[VJOB_JOURNAL_MAX];
	int n = vjob_journal_format(&sample, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	struct vjob_journal j;
	_cleanup_(scm_error_freep) scm_error *e = NULL;
	assert_int_equal(vjob_journal_parse(buf, (size_t)n, &j, &e), 0);
	assert_memory_equal(&j, &sample, sizeof j);
	/* through a directory */
	char dir[] = "/tmp/vjob-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(vjob_journal_read(dfd, "a.vhdx", &j, &e), -ENOENT);
	assert_int_equal(vjob_journal_write(dfd, "a.vhdx", &sample, &e), 0);
	assert_int_equal(vjob_journal_read(dfd, "a.vhdx", &j, &e), 0);
	assert_memory_equal(&j, &sample, sizeof j);
	/* writable by others: not believed */
	char jp[64];
	snprintf(jp, sizeof jp, "%s/a.vhdx.job", dir);
	assert_int_equal(chmod(jp, 0666), 0);
	_cleanup_(scm_error_freep) scm_error *e3 = NULL;
	assert_int_equal(vjob_journal_read(dfd, "a.vhdx", &j, &e3), -EPERM);
	assert_non_null(strstr(e3->message, "not the provider's own"));
	assert_int_equal(vjob_journal_remove(dfd, "a.vhdx", &e), 0);
	assert_int_equal(vjob_journal_read(dfd, "a.vhdx", &j, &e), -ENOENT);
	close(dfd);
	rmdir(dir);
	/* a path with a newline cannot be journalled */
	struct vjob_journal bad = sample;
	strcpy(bad.target, "/a\nstate done");
	assert_int_equal(vjob_journal_format(&bad, buf, sizeof buf), -EINVAL);
}

static void test_damaged(void **state)
{
	char good[VJOB_JOURNAL_MAX];
	int n = vjob_journal_format(&sample, good, sizeof good);
	static const struct {
		const char *name, *from, *to; /* replace the first "from" by "to" */
		int want;
		const char *why;
	} t[] = {
		{ "newer version", "scm-vdisk-job 1", "scm-vdisk-job 2", -EPROTONOSUPPORT, "version 2" },
		{ "not a journal", "scm-vdisk-job 1", "hello", -EINVAL, "line 1" },
		{ "bad kind", "kind commit", "kind mirror", -EINVAL, "no job kind \"mirror\"" },
		{ "bad state", "state paused", "state sleepy", -EINVAL, "no job state" },
		{ "bad number", "done 1048576", "done 1e6", -EINVAL, "not a decimal" },
		{ "negative", "done 1048576", "done -1", -EINVAL, "not a decimal" },
		{ "space", "done 1048576", "done  1048576", -EINVAL, "not a decimal" },
		{ "leading zero", "id 7", "id 07", -EINVAL, "not a decimal" },
		{ "upper-case sum", "end ", "end X", -EINVAL, "checksum" },
		{ "edited", "done 1048576", "done 2097152", -EINVAL, "checksum" },
		{ "past total", "done 1048576", "done 9999999999", -EINVAL, "past total" },
		{ "missing line", "target /srv/d/base.vhdx\n", "", -EINVAL, "line 6" },
		{ "truncated", "total 8388608\nend", "total 8388608\n", -EINVAL, "line 9" },
		{ "empty disk", "disk /srv/d/child.vhdx", "disk ", -EINVAL, "disk is empty" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char buf[VJOB_JOURNAL_MAX * 2];
		const char *at = strstr(good, t[i].from);
		assert_non_null(at);
		size_t pre = (size_t)(at - good);
		memcpy(buf, good, pre);
		strcpy(buf + pre, t[i].to);
		strcat(buf, at + strlen(t[i].from));
		struct vjob_journal j;
		_cleanup_(scm_error_freep) scm_error *e = NULL;
		int r = vjob_journal_parse(buf, strlen(buf), &j, &e);
		print_message("%s: %d %s\n", t[i].name, r, e ? e->message : "");
		assert_int_equal(r, t[i].want);
		assert_non_null(e);
		assert_non_null(strstr(e->message, t[i].why));
	}
	/* trailing bytes, and a file too large to be a journal */
	char buf[VJOB_JOURNAL_MAX * 2];
	memcpy(buf, good, (size_t)n);
	memcpy(buf + n, "x\n", 3);
	struct vjob_journal j;
	_cleanup_(scm_error_freep) scm_error *e = NULL;
	assert_int_equal(vjob_journal_parse(buf, (size_t)n + 2, &j, &e), -EINVAL);
	assert_non_null(strstr(e->message, "after the end line"));
	_cleanup_(scm_error_freep) scm_error *e2 = NULL;
	memset(buf, 'a', sizeof buf);
	assert_int_equal(vjob_journal_parse(buf, sizeof buf, &j, &e2), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_machine),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_damaged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
