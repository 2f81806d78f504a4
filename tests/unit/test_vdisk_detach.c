/* test_vdisk_detach.c: vhdx_detach_parent, the end of a stream: refused
 * while a range still reads from the parent; after the parent's ranges
 * are copied in, the child stands alone, reads the same with the parent
 * gone, and checks clean; a base disk cannot be detached. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx.h"

#define MiB (1u << 20)

static char dir[] = "/tmp/vdisk-detach-XXXXXX";
static char base[64], child[64];

static void report(const char *sev, const char *msg, void *ud)
{
	print_message("%s: %s\n", sev, msg);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 9));
}

static void test_detach(void **state)
{
	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof base, "%s/base.vhdx", dir);
	snprintf(child, sizeof child, "%s/child.vhdx", dir);
	scm_error *e = NULL;
	struct vhdx_create_opts o = { .size = 8 * MiB, .block_size = MiB };
	assert_int_equal(vhdx_create(base, &o, &e), 0);
	vhdx *h;
	static uint8_t want[8 * MiB], got[8 * MiB];
	assert_int_equal(vhdx_open(base, 0, &h, &e), 0);
	fill(want, 3 * MiB, 1);
	assert_int_equal(vhdx_write(h, want, 3 * MiB, 0), 0);
	vhdx_close(h);
	struct vhdx_create_opts oc = { .parent = base, .block_size = MiB };
	assert_int_equal(vhdx_create(child, &oc, &e), 0);
	assert_int_equal(vhdx_open(child, 0, &h, &e), 0);
	/* some sectors of block 1 here (a partially present block), all of
	 * block 4 */
	fill(want + MiB + 4096, 8192, 7);
	assert_int_equal(vhdx_write(h, want + MiB + 4096, 8192, MiB + 4096), 0);
	fill(want + 4 * MiB, MiB, 9);
	assert_int_equal(vhdx_write(h, want + 4 * MiB, MiB, 4 * MiB), 0);
	/* not yet: block 0 reads from the parent */
	assert_int_equal(vhdx_detach_parent(h), -EBUSY);
	assert_non_null(strstr(vhdx_errmsg(h), "block 0 still reads from the parent"));
	/* the stream: every parent range into the child */
	for (uint64_t off = 0; off < 8 * MiB;) {
		uint64_t n;
		int kind;
		assert_int_equal(vhdx_extent(h, off, 8 * MiB - off, &n, &kind), 0);
		if (kind == VHDX_EXT_PARENT) {
			assert_int_equal(vhdx_read(h, got, n, off), 0);
			assert_int_equal(vhdx_write(h, got, n, off), 0);
		}
		off += n;
	}
	assert_int_equal(vhdx_detach_parent(h), 0);
	assert_null(vhdx_parent(h));
	assert_int_equal(vhdx_read(h, got, 8 * MiB, 0), 0);
	assert_memory_equal(got, want, 8 * MiB);
	assert_int_equal(vhdx_close_checked(h), 0);
	/* alone: the parent gone, it opens, reads the same, checks clean */
	assert_int_equal(unlink(base), 0);
	assert_int_equal(vhdx_open(child, VHDX_O_RDONLY, &h, &e), 0);
	struct vhdx_info in;
	assert_int_equal(vhdx_get_info(h, &in), 0);
	assert_false(in.differencing);
	assert_int_equal(in.blocks[VHDX_PB_PARTIALLY_PRESENT], 0);
	memset(got, 0xee, sizeof got);
	assert_int_equal(vhdx_read(h, got, 8 * MiB, 0), 0);
	assert_memory_equal(got, want, 8 * MiB);
	assert_int_equal(vhdx_check(h, report, NULL), 0);
	/* a base cannot be detached */
	vhdx_close(h);
	assert_int_equal(vhdx_open(child, 0, &h, &e), 0);
	assert_int_equal(vhdx_detach_parent(h), -EINVAL);
	vhdx_close(h);
	unlink(child);
	rmdir(dir);
	scm_error_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
