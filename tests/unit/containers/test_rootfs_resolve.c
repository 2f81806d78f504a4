/* Unit tests of rootfs-resolve.c: a small hostile tree (links out of the
 * root, absolute and relative, dangling, "..", loops) and what each path
 * must resolve to, through openat2 and through the fallback walk alike;
 * and that creating never goes through a link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch-internal.h"

/* Sized for what they hold: a mkdtemp name under /tmp and one component. */
static char top[32], root[48], outside[48];

/* top/root is the root; top/outside stands for the host. */
static void make_tree(void)
{
	char p[PATH_MAX + 64];
	snprintf(top, sizeof(top), "/tmp/scm-resolve.XXXXXX");
	assert_non_null(mkdtemp(top));
	snprintf(root, sizeof(root), "%s/root", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
#define IN(rel) (snprintf(p, sizeof(p), "%s/%s", root, rel), p)
	assert_int_equal(mkdir(IN("inside"), 0755), 0);
	assert_int_equal(mkdir(IN("inside/deeper"), 0755), 0);
	assert_int_equal(close(open(IN("inside/file"), O_CREAT | O_WRONLY, 0644)), 0);
	assert_int_equal(symlink(outside, IN("abs-out")), 0);          /* -> host path */
	assert_int_equal(symlink("/inside", IN("abs-in")), 0);          /* in the root */
	assert_int_equal(symlink("../../../..", IN("dotdot")), 0);      /* above the root */
	assert_int_equal(symlink("deeper/..", IN("inside/rel")), 0);
	assert_int_equal(symlink("/nowhere", IN("dangling")), 0);
	assert_int_equal(symlink("loop2", IN("loop1")), 0);
	assert_int_equal(symlink("loop1", IN("loop2")), 0);
	assert_int_equal(symlink("/inside/file", IN("to-file")), 0);
#undef IN
}

static void remove_tree(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	assert_int_equal(system(cmd), 0);
}

static const struct {
	const char *path;
	int err;            /* 0: resolves */
	const char *expect; /* then: that path under the root ("" = the root) */
} cases[] = {
	{"/inside", 0, "inside"},
	{"inside/deeper", 0, "inside/deeper"},
	{"/abs-in/deeper", 0, "inside/deeper"},
	{"/abs-out", -ENOENT, NULL}, /* /top/outside inside the root: absent */
	{"/dotdot", 0, ""},          /* ".." stops at the root */
	{"/dotdot/inside", 0, "inside"},
	{"/../../inside", 0, "inside"},
	{"/inside/rel/file", 0, "inside/file"},
	{"/dangling", -ENOENT, NULL},
	{"/loop1", -ELOOP, NULL},
	{"/to-file", 0, "inside/file"},
	{"/inside/file/x", -ENOTDIR, NULL},
};

static bool same_as(int fd, const char *rel)
{
	char p[PATH_MAX + 64];
	struct stat a, b;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return fstat(fd, &a) == 0 && stat(p, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void run_cases(int (*resolve)(int, const char *, int *))
{
	make_tree();
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = -1, r = resolve(rootfd, cases[i].path, &fd);
		if (r != cases[i].err || (r == 0 && !same_as(fd, cases[i].expect)))
			fail_msg("%s: got %d (%s), want %d", cases[i].path, r, strerror(-r), cases[i].err);
		if (fd >= 0)
			close(fd);
	}
	close(rootfd);
	remove_tree();
}

static void test_open(void **state)
{
	run_cases(rootfs_open);
}

static void test_walk(void **state)
{
	run_cases(rootfs_open_walk);
}

/* Creating: missing components are made inside; a link that leads
 * nowhere inside is refused, and nothing appears outside. */
static void test_create(void **state)
{
	char p[PATH_MAX + 64];
	struct stat st;
	make_tree();
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1;
	assert_true(rootfd >= 0);
	assert_int_equal(rootfs_mkdirs(rootfd, "/new/a/b", &fd), 0);
	snprintf(p, sizeof(p), "%s/new/a/b", root);
	assert_int_equal(stat(p, &st), 0);
	close(fd);
	assert_int_equal(rootfs_mkdirs(rootfd, "/abs-in/made", &fd), 0);
	snprintf(p, sizeof(p), "%s/inside/made", root);
	assert_int_equal(stat(p, &st), 0);
	close(fd);
	assert_int_equal(rootfs_mkdirs(rootfd, "/abs-out/x/y", &fd), -ELOOP);
	assert_int_equal(rootfs_mkdirs(rootfd, "/dangling/x", &fd), -ELOOP);
	assert_int_equal(rootfs_mkfile(rootfd, "/abs-out/x/file", &fd), -ELOOP);
	assert_int_equal(rootfs_mkfile(rootfd, "/dangling", &fd), -ELOOP);
	assert_int_equal(rootfs_mkfile(rootfd, "/inside/file/x", &fd), -ENOTDIR);
	assert_int_equal(rootfs_mkfile(rootfd, "/new/f", &fd), 0);
	close(fd);
	assert_int_equal(rootfs_mkfile(rootfd, "/to-file", &fd), 0); /* exists, inside */
	assert_true(same_as(fd, "inside/file"));
	close(fd);
	/* The host side is as it was: empty. */
	int n = 0;
	snprintf(p, sizeof(p), "ls -A '%s' | wc -l", outside);
	FILE *f = popen(p, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &n), 1);
	pclose(f);
	assert_int_equal(n, 0);
	close(rootfd);
	remove_tree();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
