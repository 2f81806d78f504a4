/* test_vdisk_extents.c: the readv/writev extent list parser, as a table of
 * lists and what must come of them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "extents.h"
#include "scm/macro.h"

#define MiB (1ull << 20)

struct rec {
	uint64_t off, len, boff;
};

static size_t pack(uint8_t *out, const struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v[3] = { r[i].off, r[i].len, r[i].boff };
		for (int k = 0; k < 3; k++)
			for (int b = 0; b < 8; b++)
				out[i * 24 + k * 8 + b] = (uint8_t)(v[k] >> (8 * b));
	}
	return n * 24;
}

static void test_table(void **state)
{
	static const struct {
		const char *name;
		struct rec r[3];
		size_t n;
		int trim; /* bytes cut off the end */
		uint32_t sector;
		int want;
		const char *why; /* a piece of the message */
	} t[] = {
		{ "one good", { { 0, 4096, 0 } }, 1, 0, 512, 0, NULL },
		{ "three good, 4K sectors", { { 0, 4096, 0 }, { 8 * MiB, MiB, 4096 }, { 15 * MiB, MiB, 3 * MiB } }, 3, 0, 4096, 0, NULL },
		{ "last sector of the disk", { { 16 * MiB - 512, 512, 4 * MiB - 512 } }, 1, 0, 512, 0, NULL },
		{ "empty", { { 0 } }, 0, 0, 512, -EINVAL, "0 bytes" },
		{ "cut record", { { 0, 4096, 0 } }, 1, 1, 512, -EINVAL, "23 bytes" },
		{ "unaligned offset", { { 0, 4096, 0 }, { 100, 4096, 0 } }, 2, 0, 512, -EINVAL, "extents[1]: offset 100" },
		{ "512 on a 4K disk", { { 512, 4096, 0 } }, 1, 0, 4096, -EINVAL, "extents[0]" },
		{ "zero length", { { 0, 0, 0 } }, 1, 0, 512, -EINVAL, "length 0" },
		{ "past the disk", { { 16 * MiB - 512, 1024, 0 } }, 1, 0, 512, -EINVAL, "16777216-byte disk" },
		{ "offset wraps", { { UINT64_MAX - 511, 1024, 0 } }, 1, 0, 512, -EINVAL, "extents[0]" },
		{ "past the buffer", { { 0, 4096, 4 * MiB - 512 } }, 1, 0, 512, -EINVAL, "data buffer" },
		{ "buffer offset wraps", { { 0, 4096, UINT64_MAX - 4095 } }, 1, 0, 512, -EINVAL, "data buffer" },
		{ "longer than the buffer", { { 0, 8 * MiB, 0 } }, 1, 0, 512, -EINVAL, "data buffer" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		uint8_t bin[3 * 24];
		static struct vdisk_extent ex[VDISK_EXTENTS_MAX];
		size_t len = pack(bin, t[i].r, t[i].n) - (size_t)t[i].trim, n = 99;
		_cleanup_(scm_error_freep) scm_error *why = NULL;
		int r = vdisk_extents_parse(bin, len, 16 * MiB, t[i].sector, 4 * MiB, ex, &n, &why);
		print_message("%s: %d %s\n", t[i].name, r, why ? why->message : "");
		assert_int_equal(r, t[i].want);
		if (r == 0) {
			assert_int_equal(n, t[i].n);
			for (size_t k = 0; k < n; k++) {
				assert_true(ex[k].off == t[i].r[k].off && ex[k].len == t[i].r[k].len &&
					    ex[k].boff == t[i].r[k].boff);
			}
		} else {
			assert_int_equal(n, 99); /* untouched */
			assert_non_null(why);
			assert_non_null(strstr(why->message, t[i].why));
		}
	}
}

static void test_count_limit(void **state)
{
	static uint8_t bin[(VDISK_EXTENTS_MAX + 1) * 24];
	static struct vdisk_extent ex[VDISK_EXTENTS_MAX];
	struct rec one = { 0, 4096, 0 };
	for (size_t i = 0; i <= VDISK_EXTENTS_MAX; i++)
		pack(bin + i * 24, &one, 1);
	size_t n = 0;
	_cleanup_(scm_error_freep) scm_error *why = NULL;
	assert_int_equal(vdisk_extents_parse(bin, VDISK_EXTENTS_MAX * 24, 16 * MiB, 512, 4 * MiB, ex, &n, &why),
			 0);
	assert_int_equal(n, VDISK_EXTENTS_MAX);
	assert_null(why);
	assert_int_equal(vdisk_extents_parse(bin, sizeof bin, 16 * MiB, 512, 4 * MiB, ex, &n, &why), -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why->message, "1 to 1024 records"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_count_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
