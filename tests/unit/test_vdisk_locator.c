/* test_vdisk_locator.c: the parent locator writer (vhdx-locator.c). The
 * merge table says which recorded entries a rewrite keeps and which it
 * renews (a Hyper-V child's Windows entries are never replaced by host
 * paths); the round trip writes entries as MS-VHDX lays them out and reads
 * them back through the parser the engine uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vhdx-internal.h"

#define HV_ABS "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual hard disks\\p.avhdx"
#define HV_VOL "\\\\?\\Volume{0eba351e-5634-46d6-a8cf-4ddc2d6ac0b9}\\Users\\p.avhdx"
#define LINK "{ff34003b-11ed-4cf8-a166-b2be05e20b80}"
#define ZERO "{00000000-0000-0000-0000-000000000000}"

static void test_win_path(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		bool win;
	} t[] = {
		{ HV_ABS, true },
		{ "c:\\x.vhdx", true },
		{ "D:", true },
		{ HV_VOL, true },
		{ "\\\\server\\share\\p.vhdx", true },
		{ "\\srv\\disks\\p.vhdx", false }, /* a host path we wrote */
		{ ".\\p.vhdx", false },
		{ "..\\p.vhdx", false },
		{ "p.vhdx", false },
		{ "1:\\x", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (vhdx_locator_win_path(t[i].v) != t[i].win)
			fail_msg("%s: want %s", t[i].v, t[i].win ? "windows" : "not windows");
	}
	assert_false(vhdx_locator_win_path(NULL));
}

#define E(k, v) { (char *)(k), (char *)(v) }
#define MAXE 8

static void test_merge_table(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		struct vhdx_locator_entry old[MAXE];
		size_t n;
		const char *rel, *abs;
		struct vhdx_locator_entry want[MAXE];
		size_t n_want;
	} t[] = {
		{ "hyper-v child: only relative_path renewed, the rest as Windows wrote it",
		  { E("parent_linkage", LINK), E("absolute_win32_path", HV_ABS), E("relative_path", ".\\old.avhdx"),
		    E("volume_path", HV_VOL), E("parent_linkage2", ZERO) },
		  5, ".\\p.avhdx", "\\srv\\p.avhdx",
		  { E("parent_linkage", LINK), E("absolute_win32_path", HV_ABS), E("relative_path", ".\\p.avhdx"),
		    E("volume_path", HV_VOL), E("parent_linkage2", ZERO) },
		  5 },
		{ "our own locator: both paths renewed, order kept",
		  { E("parent_linkage", LINK), E("absolute_win32_path", "\\old\\p.vhdx"), E("relative_path", ".\\p.vhdx") },
		  3, "..\\b\\p.vhdx", "\\new\\b\\p.vhdx",
		  { E("parent_linkage", LINK), E("absolute_win32_path", "\\new\\b\\p.vhdx"),
		    E("relative_path", "..\\b\\p.vhdx") },
		  3 },
		{ "no relative_path recorded: added after the others",
		  { E("parent_linkage", LINK), E("absolute_win32_path", HV_ABS) },
		  2, ".\\p.vhdx", "\\srv\\p.vhdx",
		  { E("parent_linkage", LINK), E("absolute_win32_path", HV_ABS), E("relative_path", ".\\p.vhdx") },
		  3 },
		{ "no absolute path at all: ours added",
		  { E("parent_linkage", LINK), E("relative_path", "x.vhdx") },
		  2, ".\\p.vhdx", "\\srv\\p.vhdx",
		  { E("parent_linkage", LINK), E("relative_path", ".\\p.vhdx"), E("absolute_win32_path", "\\srv\\p.vhdx") },
		  3 },
		{ "unknown keys stay; a duplicate path key is dropped",
		  { E("parent_linkage", LINK), E("vendor_hint", "keep me"), E("relative_path", "a.vhdx"),
		    E("relative_path", "b.vhdx") },
		  4, ".\\p.vhdx", NULL,
		  { E("parent_linkage", LINK), E("vendor_hint", "keep me"), E("relative_path", ".\\p.vhdx") },
		  3 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct vhdx_locator_entry got[MAXE + 2];
		size_t n = vhdx_locator_merge(t[i].old, t[i].n, t[i].rel, t[i].abs, got);
		if (n != t[i].n_want)
			fail_msg("%s: %zu entries, want %zu", t[i].name, n, t[i].n_want);
		for (size_t k = 0; k < n; k++)
			if (strcmp(got[k].key, t[i].want[k].key) || strcmp(got[k].value, t[i].want[k].value))
				fail_msg("%s: entry %zu is %s=%s, want %s=%s", t[i].name, k, got[k].key, got[k].value,
					 t[i].want[k].key, t[i].want[k].value);
	}
}

/* What we write, the engine's own parser reads back entry for entry (keys
 * and values UTF-16LE, offsets inside the item, count at byte 18). */
static void test_round_trip(void **state)
{
	(void)state;
	const struct vhdx_locator_entry kv[] = {
		E("parent_linkage", LINK), E("absolute_win32_path", HV_ABS), E("relative_path", ".\\p\xc3\xa9.avhdx"),
		E("volume_path", HV_VOL), E("parent_linkage2", "{6b1b7a3e-2c1f-4d7e-9a55-0123456789ab}"),
	};
	size_t n = sizeof kv / sizeof kv[0];
	uint8_t buf[4096];
	size_t len = vhdx_locator_build_kv(buf, sizeof buf, kv, n);
	assert_true(len > 20);
	assert_int_equal(buf[18] | buf[19] << 8, n);
	/* too small a buffer is refused, not overrun */
	assert_int_equal(vhdx_locator_build_kv(buf, 100, kv, n), 0);
	len = vhdx_locator_build_kv(buf, sizeof buf, kv, n);

	vhdx *h = calloc(1, sizeof *h);
	assert_non_null(h);
	h->path = (char *)"t.vhdx";
	assert_int_equal(vhdx_locator_parse(h, buf, (uint32_t)len), 0);
	assert_int_equal(h->n_loc_kv, n);
	for (size_t k = 0; k < n; k++) {
		assert_string_equal(h->loc_kv[k].key, kv[k].key);
		assert_string_equal(h->loc_kv[k].value, kv[k].value);
	}
	assert_string_equal(h->loc_absolute, HV_ABS);
	assert_string_equal(h->loc_volume, HV_VOL);
	assert_string_equal(h->parent_linkage, "{FF34003B-11ED-4CF8-A166-B2BE05E20B80}");
	assert_string_equal(h->parent_linkage2, "{6B1B7A3E-2C1F-4D7E-9A55-0123456789AB}");
	/* parsing again (a rewrite reparses) does not pile up entries */
	assert_int_equal(vhdx_locator_parse(h, buf, (uint32_t)len), 0);
	assert_int_equal(h->n_loc_kv, n);
	for (size_t k = 0; k < h->n_loc_kv; k++) {
		free(h->loc_kv[k].key);
		free(h->loc_kv[k].value);
	}
	free(h->loc_kv);
	free(h->loc_relative);
	free(h->loc_absolute);
	free(h->loc_volume);
	free(h);
}

/* A zero parent_linkage2 (what Hyper-V writes) is kept but accepts nothing. */
static void test_zero_linkage2(void **state)
{
	(void)state;
	const struct vhdx_locator_entry kv[] = { E("parent_linkage", LINK), E("relative_path", "p.vhdx"),
						 E("parent_linkage2", ZERO) };
	uint8_t buf[1024];
	size_t len = vhdx_locator_build_kv(buf, sizeof buf, kv, 3);
	vhdx *h = calloc(1, sizeof *h);
	assert_non_null(h);
	h->path = (char *)"t.vhdx";
	assert_int_equal(vhdx_locator_parse(h, buf, (uint32_t)len), 0);
	assert_string_equal(h->parent_linkage2, "");
	assert_int_equal(h->n_loc_kv, 3);
	for (size_t k = 0; k < h->n_loc_kv; k++) {
		free(h->loc_kv[k].key);
		free(h->loc_kv[k].value);
	}
	free(h->loc_kv);
	free(h->loc_relative);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_win_path),
		cmocka_unit_test(test_merge_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_zero_linkage2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
