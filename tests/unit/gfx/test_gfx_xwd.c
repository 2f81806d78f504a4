/* test_gfx_xwd.c: the desktop agent's view of Xvfb's XWD file (a header
 * from inside an app container, checked field by field) and the row diff
 * that turns screen changes into damage without ever losing any. Also the
 * desktop session spec parser, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spec.h"
#include "xwd.h"
#include "scm/macro.h"

/* The failure's message ("" when none); err is reset before each call. */
#define MSG(e) ((e) && (e)->message ? (e)->message : "")
#define FRESH(e) (scm_error_free(e), (e) = NULL, &(e))

#define W 40
#define H 30

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An XWD file as Xvfb writes it: 100-byte header + name, 256 colours. */
static size_t make_xwd(uint8_t *buf, size_t cap, int field, uint32_t value)
{
	uint32_t f[25] = { 0 };
	f[0] = 160, f[1] = 7, f[2] = 2, f[3] = 24, f[4] = W, f[5] = H, f[7] = 0, f[8] = 32, f[9] = 0,
	f[10] = 32, f[11] = 32, f[12] = W * 4, f[13] = 4, f[14] = 0xFF0000, f[15] = 0xFF00, f[16] = 0xFF,
	f[17] = 8, f[18] = 256, f[19] = 256;
	if (field >= 0)
		f[field] = value;
	memset(buf, 0, cap);
	for (int i = 0; i < 25; i++)
		put32(buf + 4 * i, f[i]);
	return 160 + 256 * 12 + (size_t)W * 4 * H;
}

static const struct {
	const char *name;
	int field;
	uint32_t value;
	const char *err;
} xwd_cases[] = {
	{ "valid", -1, 0, NULL },
	{ "version", 1, 6, "xwd/file_version" },
	{ "header too small", 0, 12, "xwd/header_size" },
	{ "header huge", 0, 1u << 30, "xwd/header_size" },
	{ "xy pixmap", 2, 1, "xwd/pixmap_format" },
	{ "24 bpp", 11, 24, "xwd/bits_per_pixel" },
	{ "bgr masks", 14, 0xFF, "xwd/red_mask" },
	{ "big endian", 7, 1, "xwd/byte_order" },
	{ "zero width", 4, 0, "xwd/pixmap_width" },
	{ "huge height", 5, 100000, "xwd/pixmap_width" },
	{ "short lines", 12, W * 4 - 4, "xwd/bytes_per_line" },
	{ "lines past the file", 12, W * 4 * 100, "xwd: pixels" },
	{ "lines absurdly long", 12, 1u << 20, "xwd/bytes_per_line" },
	{ "colours past the file", 19, 60000, "xwd: pixels" },
	{ "too many colours", 19, 1u << 31, "xwd/ncolors" },
};

static void test_xwd_header_table(void **state)
{
	static uint8_t buf[160 + 256 * 12 + W * 4 * H];
	for (size_t i = 0; i < sizeof(xwd_cases) / sizeof(xwd_cases[0]); i++) {
		size_t size = make_xwd(buf, sizeof(buf), xwd_cases[i].field, xwd_cases[i].value);
		xwd_info info = { 0 };
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		int r = xwd_parse(buf, size, &info, FRESH(err));
		if (!xwd_cases[i].err) {
			if (r)
				fail_msg("%s: refused: %s", xwd_cases[i].name, MSG(err));
			assert_int_equal(info.pixel_offset, 3232);
			assert_int_equal(info.width, W);
			continue;
		}
		if (r != GFX_E_INVALID || strncmp(MSG(err), xwd_cases[i].err, strlen(xwd_cases[i].err)))
			fail_msg("%s: got %d \"%s\", want refusal naming %s", xwd_cases[i].name, r, MSG(err),
				 xwd_cases[i].err);
	}
	/* A file cut short anywhere is refused, never read past. */
	size_t size = make_xwd(buf, sizeof(buf), -1, 0);
	xwd_info info;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	for (size_t cut = 0; cut < size; cut += 97)
		assert_int_equal(xwd_parse(buf, cut, &info, FRESH(err)), GFX_E_INVALID);
}

static void test_diff(void **state)
{
	static uint32_t screen[W * H], shadow[W * H], surf[W * H];
	gfx_rect r[4];
	memset(screen, 0, sizeof(screen));
	memset(shadow, 0, sizeof(shadow));
	memset(surf, 0, sizeof(surf));
	assert_int_equal(xwd_diff((uint8_t *)screen, W * 4, W, H, shadow, surf, r, 4), 0);
	screen[5 * W + 7] = 0xABCDEF;
	assert_int_equal(xwd_diff((uint8_t *)screen, W * 4, W, H, shadow, surf, r, 4), 1);
	assert_int_equal(r[0].x, 7);
	assert_int_equal(r[0].y, 5);
	assert_int_equal(r[0].w, 1);
	assert_int_equal(r[0].h, 1);
	assert_int_equal(surf[5 * W + 7], 0xABCDEF);
	/* Seen once, then no more damage. */
	assert_int_equal(xwd_diff((uint8_t *)screen, W * 4, W, H, shadow, surf, r, 4), 0);
	/* Two bands of rows; the first spans the union of its columns. */
	screen[1 * W + 3] = 1;
	screen[2 * W + 10] = 2;
	screen[20 * W + 39] = 3;
	assert_int_equal(xwd_diff((uint8_t *)screen, W * 4, W, H, shadow, surf, r, 4), 2);
	assert_memory_equal(&r[0], (&(gfx_rect){ 3, 1, 8, 2 }), sizeof(gfx_rect));
	assert_memory_equal(&r[1], (&(gfx_rect){ 39, 20, 1, 1 }), sizeof(gfx_rect));
	/* Out of rects: the last one stretches over every later change. */
	for (int y = 0; y < H; y += 3)
		screen[y * W + y % W] = 0x10101 * (uint32_t)y + 5;
	size_t n = xwd_diff((uint8_t *)screen, W * 4, W, H, shadow, surf, r, 2);
	assert_int_equal(n, 2);
	assert_int_equal(r[1].y + r[1].h, 28); /* the last changed row is 27 */
	assert_memory_equal(surf, screen, sizeof(screen));
	assert_memory_equal(shadow, screen, sizeof(screen));
}

static const struct {
	const char *json;
	const char *err; /* NULL: valid */
} spec_cases[] = {
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"xclock\"],\"size\":\"100x100\"}]}", NULL },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"resize\":true,\"apps\":[{\"name\":\"a\",\"command\":[\"xclock\"],\"size\":\"100x100\"}]}", NULL },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"resize\":1,\"apps\":[{\"name\":\"a\",\"command\":[\"xclock\"],\"size\":\"100x100\"}]}", "/resize:" },
	{ "[]", "/:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[],\"x\":1}", "/x:" },
	{ "{\"name\":\"D!\",\"size\":\"800x600\",\"apps\":[]}", "/name:" },
	{ "{\"name\":\"d\",\"size\":\"800\",\"apps\":[]}", "/size:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[]}", "/apps:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[],\"size\":\"100x100\"}]}", "/apps/0/command:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"\"],\"size\":\"100x100\"}]}", "/apps/0/command:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"900x100\"}]}", "/apps/0/size:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\",\"weight\":0}]}", "/apps/0/weight:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\",\"weight\":10001}]}", "/apps/0/weight:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\",\"profiles\":[7]}]}", "/apps/0/profiles:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\"},{\"name\":\"a\",\"command\":[\"y\"],\"size\":\"100x100\"}]}", "/apps/1/name:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\",\"gpu\":true}]}", "/apps/0/gpu:" },
	{ "{\"name\":\"d\",\"size\":\"800x600\",\"apps\":[{\"name\":\"a\",\"command\":[\"x\"],\"size\":\"100x100\"", "/:" },
};

static void test_spec_table(void **state)
{
	for (size_t i = 0; i < sizeof(spec_cases) / sizeof(spec_cases[0]); i++) {
		desktop_spec *s = NULL;
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		int r = desktop_spec_parse(spec_cases[i].json, strlen(spec_cases[i].json), &s, FRESH(err));
		if (!spec_cases[i].err) {
			if (r)
				fail_msg("case %zu refused: %s", i, MSG(err));
			assert_int_equal(s->n_apps, 1);
			assert_string_equal(s->apps[0].command[0], "xclock");
			assert_int_equal(s->apps[0].weight, 1);
			assert_null(s->apps[0].profiles[0]);
			desktop_spec_free(s);
			continue;
		}
		if (r != 100 || strncmp(MSG(err), spec_cases[i].err, strlen(spec_cases[i].err)))
			fail_msg("case %zu: got %d \"%s\", want refusal naming %s", i, r, MSG(err), spec_cases[i].err);
		assert_null(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xwd_header_table),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_spec_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
