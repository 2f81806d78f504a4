/* test_vdisk_status.c: what the NBD export asks of the engine
 * (vhdx-status.c): vhdx_alloc_extent through a chain (data where any file
 * holds it, zero where none does, a child's ZERO block hiding its parent's
 * data) and vhdx_write_zeroes with and without unmap (ZERO blocks or
 * written zeros, partial blocks written either way). */
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

static char dir[] = "/tmp/vdisk-status-XXXXXX";

/* The runs from 0 to the end: "D" for data, "z" for zero, one letter per
 * 512 KiB (every run in these disks is a multiple of it). */
static void runs(vhdx *h, uint64_t size, char *out)
{
	uint64_t off = 0;
	size_t k = 0;
	while (off < size) {
		uint64_t n;
		bool data;
		assert_int_equal(vhdx_alloc_extent(h, off, size - off, &n, &data), 0);
		assert_true(n > 0 && n % (512 << 10) == 0);
		for (uint64_t i = 0; i < n / (512 << 10); i++)
			out[k++] = data ? 'D' : 'z';
		off += n;
	}
	out[k] = 0;
}

static void test_chain(void **state)
{
	assert_non_null(mkdtemp(dir));
	char base[64], child[64], got[64];
	snprintf(base, sizeof base, "%s/base.vhdx", dir);
	snprintf(child, sizeof child, "%s/child.vhdx", dir);
	scm_error *e = NULL;
	struct vhdx_create_opts o = { .size = 8 * MiB, .block_size = MiB };
	assert_int_equal(vhdx_create(base, &o, &e), 0);
	vhdx *h;
	static uint8_t buf[2 * MiB];
	memset(buf, 0xa5, sizeof buf);
	assert_int_equal(vhdx_open(base, 0, &h, &e), 0);
	assert_int_equal(vhdx_write(h, buf, 2 * MiB, 0), 0);     /* blocks 0, 1 */
	assert_int_equal(vhdx_write(h, buf, MiB, 6 * MiB), 0);   /* block 6 */
	runs(h, 8 * MiB, got);
	assert_string_equal(got, "DDDDzzzzzzzzDDzz");
	vhdx_close(h);
	struct vhdx_create_opts oc = { .parent = base, .block_size = MiB };
	assert_int_equal(vhdx_create(child, &oc, &e), 0);
	assert_int_equal(vhdx_open(child, 0, &h, &e), 0);
	/* the child: half of block 3 (partial, the rest from the base, which
	 * has nothing there), block 1 zeroed (hides the base's data) */
	assert_int_equal(vhdx_write(h, buf, 512 << 10, 3 * MiB), 0);
	assert_int_equal(vhdx_write_zeroes(h, MiB, MiB, true), 0);
	assert_int_equal(vhdx_block_state(h, MiB), VHDX_PB_ZERO);
	runs(h, 8 * MiB, got);
	assert_string_equal(got, "DDzzzzDzzzzzDDzz");
	/* a run never goes past what was asked, and bad ranges are refused */
	uint64_t n;
	bool data;
	assert_int_equal(vhdx_alloc_extent(h, 0, 4096, &n, &data), 0);
	assert_true(n == 4096 && data);
	assert_int_equal(vhdx_alloc_extent(h, 100, 512, &n, &data), -EINVAL);
	assert_int_equal(vhdx_alloc_extent(h, 8 * MiB, 512, &n, &data), -EINVAL);
	assert_int_equal(vhdx_alloc_extent(h, 0, 0, &n, &data), -EINVAL);
	assert_int_equal(vhdx_close_checked(h), 0);
	unlink(child);
	unlink(base);
}

static void test_zeroes(void **state)
{
	char path[64];
	snprintf(path, sizeof path, "%s/z.vhdx", dir);
	scm_error *e = NULL;
	struct vhdx_create_opts o = { .size = 8 * MiB, .block_size = MiB };
	assert_int_equal(vhdx_create(path, &o, &e), 0);
	vhdx *h;
	static uint8_t buf[8 * MiB], back[8 * MiB], zero[8 * MiB];
	memset(buf, 0x3c, sizeof buf);
	assert_int_equal(vhdx_open(path, 0, &h, &e), 0);
	assert_int_equal(vhdx_write(h, buf, 8 * MiB, 0), 0);
	/* unmap: 0.5M..3.5M: blocks 1 and 2 become ZERO, the halves of 0 and 3
	 * are written and stay FULLY_PRESENT */
	assert_int_equal(vhdx_write_zeroes(h, 3 * MiB, 512 << 10, true), 0);
	assert_int_equal(vhdx_block_state(h, 0), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_block_state(h, MiB), VHDX_PB_ZERO);
	assert_int_equal(vhdx_block_state(h, 2 * MiB), VHDX_PB_ZERO);
	assert_int_equal(vhdx_block_state(h, 3 * MiB), VHDX_PB_FULLY_PRESENT);
	/* no unmap: block 5 written with zeros, stays allocated */
	assert_int_equal(vhdx_write_zeroes(h, MiB, 5 * MiB, false), 0);
	assert_int_equal(vhdx_block_state(h, 5 * MiB), VHDX_PB_FULLY_PRESENT);
	/* inside one block: written */
	assert_int_equal(vhdx_write_zeroes(h, 4096, 7 * MiB + 8192, true), 0);
	memset(buf + (512 << 10), 0, 3 * MiB);
	memset(buf + 5 * MiB, 0, MiB);
	memset(buf + 7 * MiB + 8192, 0, 4096);
	assert_int_equal(vhdx_read(h, back, 8 * MiB, 0), 0);
	assert_memory_equal(back, buf, 8 * MiB);
	char got[64];
	runs(h, 8 * MiB, got);
	assert_string_equal(got, "DDzzzzDDDDDDDDDD");
	/* the disk's end counts as a block's end */
	assert_int_equal(vhdx_write_zeroes(h, 2 * MiB, 6 * MiB, true), 0);
	assert_int_equal(vhdx_block_state(h, 7 * MiB), VHDX_PB_ZERO);
	assert_int_equal(vhdx_write_zeroes(h, 512, 100, true), -EINVAL);
	assert_int_equal(vhdx_write_zeroes(h, 1024, 8 * MiB - 512, true), -EINVAL);
	assert_int_equal(vhdx_close_checked(h), 0);
	assert_int_equal(vhdx_open(path, VHDX_O_RDONLY, &h, &e), 0);
	assert_int_equal(vhdx_read(h, back, 2 * MiB, 6 * MiB), 0);
	assert_memory_equal(back, zero, 2 * MiB);
	assert_int_equal(vhdx_write_zeroes(h, MiB, 0, true), -EROFS);
	vhdx_close(h);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_zeroes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
