/* test_gfx_region.c: damage rectangles are clipped safely, whatever a
 * client sends, and regions stay bounded while covering all damage. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gfx.h"

static const struct {
	const char *name;
	gfx_rect in;
	bool meets;
	gfx_rect want;
} clip_cases[] = {
	{ "inside", { 10, 10, 20, 20 }, true, { 10, 10, 20, 20 } },
	{ "whole", { 0, 0, 100, 50 }, true, { 0, 0, 100, 50 } },
	{ "over right edge", { 90, 0, 20, 10 }, true, { 90, 0, 10, 10 } },
	{ "over bottom edge", { 0, 45, 10, 20 }, true, { 0, 45, 10, 5 } },
	{ "negative origin", { -5, -5, 10, 10 }, true, { 0, 0, 5, 5 } },
	{ "left of surface", { -50, 0, 50, 10 }, false, { 0, 0, 0, 0 } },
	{ "below surface", { 0, 50, 10, 10 }, false, { 0, 0, 0, 0 } },
	{ "empty width", { 10, 10, 0, 10 }, false, { 0, 0, 0, 0 } },
	{ "negative width", { 10, 10, -10, 10 }, false, { 0, 0, 0, 0 } },
	{ "int32 overflow x+w", { INT32_MAX - 5, 0, INT32_MAX, 10 }, false, { 0, 0, 0, 0 } },
	{ "huge from far left", { INT32_MIN, INT32_MIN, INT32_MAX, INT32_MAX }, false, { 0, 0, 0, 0 } },
	{ "huge covering", { -1000000, -1000000, INT32_MAX, INT32_MAX }, true, { 0, 0, 100, 50 } },
};

static void test_clip_table(void **state)
{
	gfx_rect bounds = { 0, 0, 100, 50 };
	for (size_t i = 0; i < sizeof(clip_cases) / sizeof(clip_cases[0]); i++) {
		gfx_rect got;
		bool meets = gfx_rect_intersect(&clip_cases[i].in, &bounds, &got);
		if (meets != clip_cases[i].meets)
			fail_msg("%s: meets %d, want %d", clip_cases[i].name, meets, clip_cases[i].meets);
		assert_memory_equal(&got, &clip_cases[i].want, sizeof(got));
	}
}

static bool covered(const gfx_region *rg, int32_t x, int32_t y)
{
	for (uint32_t i = 0; i < rg->n; i++) {
		const gfx_rect *r = &rg->r[i];
		if (x >= r->x && y >= r->y && x < r->x + r->w && y < r->y + r->h)
			return true;
	}
	return false;
}

static void test_region_bounded_and_covering(void **state)
{
	gfx_rect bounds = { 0, 0, 640, 480 };
	gfx_region rg;
	gfx_rect added[200];
	gfx_region_clear(&rg);
	for (int i = 0; i < 200; i++) {
		added[i] = (gfx_rect){ (i * 37) % 700 - 30, (i * 53) % 500 - 10, 5 + i % 40, 3 + i % 20 };
		gfx_region_add(&rg, &added[i], &bounds);
		assert_true(rg.n <= GFX_REGION_MAX);
	}
	/* Every damaged pixel inside the bounds is still covered, and
	 * nothing outside the bounds is. */
	for (int i = 0; i < 200; i++) {
		gfx_rect c;
		if (!gfx_rect_intersect(&added[i], &bounds, &c))
			continue;
		for (int32_t y = c.y; y < c.y + c.h; y++)
			for (int32_t x = c.x; x < c.x + c.w; x++)
				assert_true(covered(&rg, x, y));
	}
	for (uint32_t i = 0; i < rg.n; i++) {
		gfx_rect c;
		assert_true(gfx_rect_intersect(&rg.r[i], &bounds, &c));
		assert_memory_equal(&c, &rg.r[i], sizeof(c));
	}
}

static void test_region_containment(void **state)
{
	gfx_rect bounds = { 0, 0, 100, 100 };
	gfx_region rg;
	gfx_region_clear(&rg);
	gfx_region_add(&rg, &(gfx_rect){ 10, 10, 5, 5 }, &bounds);
	gfx_region_add(&rg, &(gfx_rect){ 50, 50, 5, 5 }, &bounds);
	gfx_region_add(&rg, &(gfx_rect){ 11, 11, 2, 2 }, &bounds); /* inside the first */
	assert_int_equal(rg.n, 2);
	gfx_region_add(&rg, &(gfx_rect){ 0, 0, 100, 100 }, &bounds); /* swallows both */
	assert_int_equal(rg.n, 1);
	assert_int_equal(gfx_region_area(&rg), 10000);
	gfx_region_add(&rg, &(gfx_rect){ 200, 200, 5, 5 }, &bounds); /* outside: nothing */
	assert_int_equal(rg.n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clip_table),
		cmocka_unit_test(test_region_bounded_and_covering),
		cmocka_unit_test(test_region_containment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
