/* test_vdisk_scope.c: files of a chain beneath a grant (vhdx-scope.c):
 * the locator path table (what each recorded form resolves to, or why it
 * is refused), then real opens beneath a directory fd: a link, a FIFO, a
 * parent outside, the O_NOFOLLOW walk that stands in for openat2. */
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

#include "vhdx-internal.h"

/* The last failure's chain on one line (err is reset before each call). */
#define FRESH(e) (scm_error_free(e), (e) = NULL, &(e))
static const char *msg_of(const scm_error *e)
{
	static char *t;
	free(t);
	t = scm_error_text(e);
	return t ? t : "";
}

static void test_rel_table(void **state)
{
	(void)state;
	static const struct {
		const char *child, *loc, *want; /* want NULL: refused */
	} t[] = {
		{ "c.vhdx", ".\\base.vhdx", "base.vhdx" },
		{ "c.vhdx", "base.vhdx", "base.vhdx" },
		{ "a/c.vhdx", "..\\base.vhdx", "base.vhdx" },
		{ "a/b/c.vhdx", "..\\..\\x\\p.vhdx", "x/p.vhdx" },
		{ "a/c.vhdx", ".\\d\\.\\p.vhdx", "a/d/p.vhdx" },
		{ "c.vhdx", "..\\base.vhdx", NULL },            /* climbs out */
		{ "a/c.vhdx", "..\\..\\disks\\base.vhdx", NULL }, /* out and back in: still out */
		{ "c.vhdx", "C:\\disks\\base.vhdx", NULL },
		{ "c.vhdx", "\\\\?\\Volume{1}\\base.vhdx", NULL },
		{ "c.vhdx", "..", NULL },
		{ "c.vhdx", ".", NULL },
		{ "c.vhdx", "", NULL },
		{ NULL, "\\srv\\disks\\a\\p.vhdx", "a/p.vhdx" },
		{ NULL, "\\data\\disks\\p.vhdx", "p.vhdx" }, /* the canonical form */
		{ NULL, "\\srv\\disksX\\p.vhdx", NULL },
		{ NULL, "\\srv\\p.vhdx", NULL },
		{ NULL, "\\srv\\disks\\..\\p.vhdx", NULL },
		{ NULL, "\\srv\\disks", NULL },
		{ NULL, "p.vhdx", NULL }, /* absolute_win32_path that is not absolute */
		{ NULL, "/srv/disks/a//b/../p.vhdx", "a/p.vhdx" },
	};
	struct vhdx_scope s = { .dirfd = -1, .dir = "/srv/disks/", .dir_real = "/data/disks" };
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char *rel = NULL;
		int r = vhdx_scope_rel(&s, t[i].child, t[i].loc, &rel);
		if (t[i].want) {
			if (r < 0 || strcmp(rel, t[i].want))
				fail_msg("%zu: %s + %s: want %s, got %d %s", i, t[i].child ? t[i].child : "-", t[i].loc,
					 t[i].want, r, r < 0 ? "" : rel);
		} else if (r >= 0) {
			fail_msg("%zu: %s + %s: want refused, got %s", i, t[i].child ? t[i].child : "-", t[i].loc, rel);
		}
		free(rel);
	}
	/* a grant of "/" takes any absolute path */
	struct vhdx_scope root = { .dirfd = -1, .dir = "/" };
	char *rel = NULL;
	assert_int_equal(vhdx_scope_rel(&root, NULL, "\\etc\\p.vhdx", &rel), 0);
	assert_string_equal(rel, "etc/p.vhdx");
	free(rel);
}

static char base[] = "/tmp/vdisk-scope-XXXXXX";

static char *at(const char *name)
{
	static char p[4][160];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", base, name);
	return p[k];
}

static bool allow_all(const char *path, void *ud)
{
	(void)path;
	(void)ud;
	return true;
}

static void opens(bool walk)
{
	if (walk)
		setenv("SCM_VDISK_NO_OPENAT2", "1", 1);
	else
		unsetenv("SCM_VDISK_NO_OPENAT2");
	int dfd = open(at("g"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	char gdir[200];
	snprintf(gdir, sizeof gdir, "%s", at("g"));
	struct vhdx_scope s = { .dirfd = dfd, .dir = gdir, .allow = allow_all };
	vhdx *h = NULL;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(vhdx_open_scoped(&s, at("g/sub/in.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), 0);
	vhdx_close(h);
	/* a link, inside or out, is never followed */
	assert_int_equal(vhdx_open_scoped(&s, at("g/link.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), -EACCES);
	assert_non_null(strstr(msg_of(err), "symbolic link"));
	assert_int_equal(vhdx_open_scoped(&s, at("g/linkdir/in.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), -EACCES);
	/* a FIFO fails at once, never opened for reading */
	assert_int_equal(vhdx_open_scoped(&s, at("g/fifo.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), -EINVAL);
	assert_non_null(strstr(msg_of(err), "a FIFO"));
	/* a child whose parent is outside: one message, nothing about it */
	assert_int_equal(vhdx_open_scoped(&s, at("g/child.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), -ENOENT);
	assert_non_null(strstr(msg_of(err), "parent not available under the grant"));
	assert_null(strstr(msg_of(err), "out"));
	/* the block-table cap */
	s.bat_max = 1024;
	assert_int_equal(vhdx_open_scoped(&s, at("g/sub/in.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), -EFBIG);
	close(dfd);
}

static void test_opens_openat2(void **state)
{
	(void)state;
	opens(false);
}

static void test_opens_walk(void **state)
{
	(void)state;
	opens(true);
}

/* A read-write open renews stale locator paths with what it found beneath
 * the grant (canonical strings, no lookup by name). */
static void test_locator_rewrite(void **state)
{
	(void)state;
	unsetenv("SCM_VDISK_NO_OPENAT2");
	struct vhdx_create_opts o = { .size = 8 << 20, .block_size = 1 << 20 };
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(mkdir(at("g/m"), 0755), 0);
	assert_int_equal(vhdx_create(at("g/m/base.vhdx"), &o, FRESH(err)), 0);
	struct vhdx_create_opts c = { .parent = at("g/m/base.vhdx") };
	assert_int_equal(vhdx_create(at("g/m/child.vhdx"), &c, FRESH(err)), 0);
	assert_int_equal(rename(at("g/m"), at("g/n")), 0);
	int dfd = open(at("g"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	char gdir[200];
	snprintf(gdir, sizeof gdir, "%s", at("g"));
	struct vhdx_scope s = { .dirfd = dfd, .dir = gdir, .allow = allow_all };
	vhdx *h = NULL;
	assert_int_equal(vhdx_open_scoped(&s, at("g/n/child.vhdx"), 0, &h, FRESH(err)), 0);
	struct vhdx_info in;
	assert_int_equal(vhdx_get_info(h, &in), 0);
	char want[200];
	snprintf(want, sizeof want, "%s", at("g/n/base.vhdx"));
	for (char *p = want; *p; p++)
		if (*p == '/')
			*p = '\\';
	assert_string_equal(in.parent_absolute_path, want);
	assert_string_equal(in.parent_relative_path, ".\\base.vhdx");
	vhdx_close(h);
	close(dfd);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(base))
		return -1;
	struct vhdx_create_opts o = { .size = 8 << 20, .block_size = 1 << 20 };
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	if (mkdir(at("g"), 0755) || mkdir(at("g/sub"), 0755) || mkdir(at("out"), 0755) ||
	    vhdx_create(at("g/sub/in.vhdx"), &o, FRESH(err)) || vhdx_create(at("out/p.vhdx"), &o, FRESH(err)))
		return -1;
	struct vhdx_create_opts c = { .parent = at("out/p.vhdx") };
	if (vhdx_create(at("g/child.vhdx"), &c, FRESH(err)) || symlink(at("g/sub/in.vhdx"), at("g/link.vhdx")) ||
	    symlink("sub", at("g/linkdir")) || mkfifo(at("g/fifo.vhdx"), 0644))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rel_table),
		cmocka_unit_test(test_opens_openat2),
		cmocka_unit_test(test_opens_walk),
		cmocka_unit_test(test_locator_rewrite),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
