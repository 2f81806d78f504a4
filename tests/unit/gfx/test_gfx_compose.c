/* test_gfx_compose.c: the blend stage, border ownership, stacking and
 * damage tracking of the compositor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gfx.h"

static const struct {
	const char *name;
	uint32_t dst, src, blend, key, want;
} blend_cases[] = {
	{ "opaque ignores alpha byte", 0xFF000000, 0x00123456, 0, 0, 0xFF123456 },
	{ "alpha 255 replaces", 0xFF000000, 0xFFABCDEF, GFX_BLEND_ALPHA, 0, 0xFFABCDEF },
	{ "alpha 0 keeps", 0xFF112233, 0x00FFFFFF, GFX_BLEND_ALPHA, 0, 0xFF112233 },
	{ "alpha 128 white on black", 0xFF000000, 0x80FFFFFF, GFX_BLEND_ALPHA, 0, 0xFF808080 },
	{ "alpha 51 red on blue", 0xFF0000FF, 0x33FF0000, GFX_BLEND_ALPHA, 0, 0xFF3300CC },
	{ "key match transparent", 0xFF112233, 0xFFFF00FF, GFX_BLEND_KEY, 0xFF00FF, 0xFF112233 },
	{ "key ignores alpha byte", 0xFF112233, 0x00FF00FF, GFX_BLEND_KEY, 0xFF00FF, 0xFF112233 },
	{ "key miss opaque", 0xFF112233, 0x00FF00FE, GFX_BLEND_KEY, 0xFF00FF, 0xFFFF00FE },
	{ "key then alpha", 0xFF000000, 0x80FFFFFF, GFX_BLEND_KEY | GFX_BLEND_ALPHA, 0xFF00FF, 0xFF808080 },
};

static void test_blend_table(void **state)
{
	for (size_t i = 0; i < sizeof(blend_cases) / sizeof(blend_cases[0]); i++) {
		uint32_t got = gfx_blend_pixel(blend_cases[i].dst, blend_cases[i].src, blend_cases[i].blend,
					       blend_cases[i].key);
		if (got != blend_cases[i].want)
			fail_msg("%s: got %08x want %08x", blend_cases[i].name, got, blend_cases[i].want);
	}
}

static uint32_t px(const gfx_compositor *c, int x, int y)
{
	return c->fb[(size_t)y * c->width + x];
}

static void fill_surface(gfx_surface *s, uint32_t v)
{
	for (size_t i = 0; i < (size_t)s->width * s->height; i++)
		s->pixels[i] = v;
}

static void test_border_owned_by_compositor(void **state)
{
	gfx_compositor *c;
	gfx_surface *s;
	uint32_t id;
	const uint32_t border = 0xE53935;
	assert_int_equal(gfx_comp_new(100, 80, 0x202020, 3, &c), 0);
	assert_int_equal(gfx_surface_new(20, 10, &s), 0);
	/* Fully transparent content shows the background, and the frame. */
	fill_surface(s, 0x0000FF00);
	assert_int_equal(gfx_comp_add(c, s, 10, 10, border, GFX_BLEND_ALPHA, 0, &id), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 10, 10), 0xFF202020);
	assert_int_equal(px(c, 7, 7), 0xFF000000 | border);
	/* The client paints everything it can reach, opaque, and damages far
	 * more than its surface: only its content changes. */
	fill_surface(s, 0xFF00FF00);
	gfx_comp_damage_surface(c, id, &(gfx_rect){ -100, -100, 1000, 1000 }, 1);
	gfx_comp_render(c, NULL);
	for (int y = 7; y < 23; y++)
		for (int x = 7; x < 33; x++) {
			bool inside = x >= 10 && x < 30 && y >= 10 && y < 20;
			assert_int_equal(px(c, x, y), inside ? 0xFF00FF00 : 0xFF000000 | border);
		}
	assert_int_equal(px(c, 6, 6), 0xFF202020);
	assert_int_equal(px(c, 33, 23), 0xFF202020);
	gfx_comp_free(c);
	gfx_surface_free(s);
}

static void test_stacking_and_hit(void **state)
{
	gfx_compositor *c;
	gfx_surface *a, *b;
	uint32_t ia, ib, id;
	int32_t lx, ly;
	assert_int_equal(gfx_comp_new(100, 100, 0, 2, &c), 0);
	assert_int_equal(gfx_surface_new(40, 40, &a), 0);
	assert_int_equal(gfx_surface_new(40, 40, &b), 0);
	fill_surface(a, 0xAA0000);
	fill_surface(b, 0x0000BB);
	assert_int_equal(gfx_comp_add(c, a, 10, 10, 0x111111, 0, 0, &ia), 0);
	assert_int_equal(gfx_comp_add(c, b, 30, 30, 0x222222, 0, 0, &ib), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 35, 35), 0xFF0000BB); /* b is on top */
	assert_int_equal(px(c, 29, 35), 0xFF222222); /* b's border covers a */
	assert_true(gfx_comp_hit(c, 35, 35, &id, &lx, &ly));
	assert_int_equal(id, ib);
	assert_int_equal(lx, 5);
	assert_false(gfx_comp_hit(c, 29, 35, &id, &lx, &ly)); /* border: nobody */
	assert_int_equal(gfx_comp_raise(c, ia), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 35, 35), 0xFFAA0000);
	assert_true(gfx_comp_hit(c, 35, 35, &id, &lx, &ly));
	assert_int_equal(id, ia);
	assert_int_equal(gfx_comp_remove(c, ia), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 15, 15), 0xFF000000);
	assert_int_equal(gfx_comp_remove(c, ia), GFX_E_NO_CLIENT);
	gfx_comp_free(c);
	gfx_surface_free(a);
	gfx_surface_free(b);
}

static void test_damage_only(void **state)
{
	gfx_compositor *c;
	gfx_surface *s;
	uint32_t id;
	gfx_region out;
	assert_int_equal(gfx_comp_new(200, 100, 0, 1, &c), 0);
	assert_int_equal(gfx_surface_new(50, 50, &s), 0);
	fill_surface(s, 0x101010);
	assert_int_equal(gfx_comp_add(c, s, 10, 10, 0xFF0000, 0, 0, &id), 0);
	gfx_comp_render(c, &out);
	uint64_t renders = c->renders, pixels = c->pixels_composited;
	/* Nothing damaged: nothing done, nothing reported. */
	gfx_comp_render(c, &out);
	assert_true(gfx_region_empty(&out));
	assert_int_equal(c->renders, renders);
	assert_int_equal(c->pixels_composited, pixels);
	/* A client changes pixels it does not present: they stay unseen. */
	s->pixels[0] = 0xFFFFFF;
	s->pixels[49] = 0x00FF00;
	gfx_comp_damage_surface(c, id, &(gfx_rect){ 0, 0, 4, 3 }, 1);
	gfx_comp_render(c, &out);
	assert_int_equal(c->pixels_composited - pixels, 12);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.r[0].x, 10);
	assert_int_equal(out.r[0].y, 10);
	assert_int_equal(px(c, 10, 10), 0xFFFFFFFF);
	assert_int_equal(px(c, 59, 10), 0xFF101010);
	/* Damage entirely outside the surface is dropped. */
	gfx_comp_damage_surface(c, id, &(gfx_rect){ 50, 0, 10, 10 }, 1);
	gfx_comp_render(c, &out);
	assert_true(gfx_region_empty(&out));
	gfx_comp_free(c);
	gfx_surface_free(s);
}

static void test_offscreen_overlay(void **state)
{
	gfx_compositor *c;
	gfx_surface *s;
	uint32_t id;
	assert_int_equal(gfx_comp_new(64, 64, 0, 4, &c), 0);
	assert_int_equal(gfx_surface_new(100, 100, &s), 0);
	fill_surface(s, 0x00FF00);
	/* Partly off the desktop on every side: clipped, not a crash. */
	assert_int_equal(gfx_comp_add(c, s, -20, -20, 0xFF, 0, 0, &id), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 0, 0), 0xFF00FF00);
	assert_int_equal(px(c, 63, 63), 0xFF00FF00);
	assert_int_equal(gfx_comp_move(c, id, 1 << 30, 0), GFX_E_INVALID);
	assert_int_equal(gfx_comp_move(c, id, 70, 70), 0);
	gfx_comp_render(c, NULL);
	assert_int_equal(px(c, 63, 63), 0xFF000000);
	assert_int_equal(px(c, 0, 0), 0xFF000000);
	gfx_comp_free(c);
	gfx_surface_free(s);
}

/* The compositor's row loops (alpha without branches) must give exactly
 * what the one-pixel blend gives, for every alpha. */
/* A new desktop size: a new fb, all of it redrawn, overlays in place and
 * clipped; sizes the compositor refuses leave it as it was. */
static void test_resize(void **state)
{
	gfx_compositor *c;
	gfx_surface *s;
	uint32_t id;
	gfx_region out;
	assert_int_equal(gfx_comp_new(100, 80, 0x202020, 2, &c), 0);
	assert_int_equal(gfx_surface_new(40, 30, &s), 0);
	fill_surface(s, 0x00FF00);
	assert_int_equal(gfx_comp_add(c, s, 70, 10, 0xFF0000, 0, 0, &id), 0);
	gfx_comp_render(c, &out);
	assert_int_equal(gfx_comp_resize(c, 0, 10), GFX_E_INVALID);
	assert_int_equal(gfx_comp_resize(c, 8193, 10), GFX_E_INVALID);
	assert_int_equal(c->width, 100);
	assert_int_equal(gfx_comp_resize(c, 80, 120), 0);
	assert_int_equal(c->width, 80);
	assert_int_equal(c->height, 120);
	gfx_comp_render(c, &out);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.r[0].w, 80);
	assert_int_equal(out.r[0].h, 120);
	assert_int_equal(px(c, 79, 10), 0xFF00FF00); /* the window, cut at the edge */
	assert_int_equal(px(c, 69, 10), 0xFFFF0000); /* its frame */
	assert_int_equal(px(c, 10, 119), 0xFF202020); /* new desktop */
	gfx_comp_free(c);
	gfx_surface_free(s);
}

static void test_alpha_rows_match_pixel_blend(void **state)
{
	gfx_compositor *c;
	gfx_surface *s;
	uint32_t id;
	const uint32_t bg = 0x3377BB;
	assert_int_equal(gfx_comp_new(256, 64, bg, 0, &c), 0);
	assert_int_equal(gfx_surface_new(256, 64, &s), 0);
	for (uint32_t y = 0; y < 64; y++)
		for (uint32_t x = 0; x < 256; x++)
			s->pixels[y * 256 + x] = x << 24 | (y * 4) << 16 | (255 - x) << 8 | (x ^ y);
	assert_int_equal(gfx_comp_add(c, s, 0, 0, 0, GFX_BLEND_ALPHA, 0, &id), 0);
	gfx_comp_render(c, NULL);
	for (uint32_t i = 0; i < 256 * 64; i++)
		assert_int_equal(c->fb[i], gfx_blend_pixel(0xFF000000 | bg, s->pixels[i], GFX_BLEND_ALPHA, 0));
	gfx_comp_free(c);
	gfx_surface_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blend_table),
		cmocka_unit_test(test_border_owned_by_compositor),
		cmocka_unit_test(test_stacking_and_hit),
		cmocka_unit_test(test_damage_only),
		cmocka_unit_test(test_offscreen_overlay),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_alpha_rows_match_pixel_blend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
